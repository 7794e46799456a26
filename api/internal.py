"""``POST /api/v1/internal/challenge-outcome``: the challenge UA's reports (see
``challenge/outcome.py`` for the JSON), authenticated with the shared-secret bearer token.

Each report becomes reputation evidence through the store's feedback API (a pass lowers the
caller's score, a failure raises it, a left message counts as a wanted call) and, for a
recorded message, a voicemail row for the callee's account. ``event_id`` makes a retry after
a lost response harmless: a repeated id is answered 200 ``duplicate`` without counting again.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from aiohttp import web

from reputation.feedback import OutcomeKind, UnknownCall
from reputation.lists import Invalid
from reputation.records import NewVoicemail, latest_call

from .auth import internal
from .errors import bad_request
from .payload import read_json
from .state import ApiState, state
from .voicemail import stored_path

log = logging.getLogger("spitwall.api.internal")

OUTCOMES: dict[str, OutcomeKind | None] = {
    "passed": OutcomeKind.CHALLENGE_PASSED,
    "failed": OutcomeKind.CHALLENGE_FAILED,
    "timed_out": OutcomeKind.CHALLENGE_TIMEOUT,
    "hung_up": OutcomeKind.CHALLENGE_HANGUP,
    "voicemail": OutcomeKind.VOICEMAIL_LEFT,
    "no_message": OutcomeKind.VOICEMAIL_NONE,
    "mailbox_full": None,
    "rejected_busy": None,
}
FIELDS = (
    "version",
    "event_id",
    "kind",
    "outcome",
    "decision_id",
    "mode",
    "caller",
    "callee",
    "call_id",
    "time",
    "call_started",
    "tries",
    "digits_entered",
    "remember_until",
    "recording",
)
REQUIRED = ("event_id", "kind", "outcome", "callee", "call_id", "time")
MAX_SEEN = 100_000


def _str(data: dict[str, Any], name: str, max_len: int = 256) -> str:
    v = data.get(name, "")
    if v is None:
        return ""
    if not isinstance(v, str) or len(v) > max_len:
        raise bad_request(f"{name}: expected a string of at most {max_len} characters", field=name)
    return v


def _num(data: dict[str, Any], name: str) -> float | None:
    v = data.get(name)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise bad_request(f"{name}: expected a number", field=name)
    return float(v)


@internal
async def challenge_outcome(request: web.Request) -> web.Response:
    st = state(request)
    data = await read_json(request, st.config.max_json_bytes, allowed=FIELDS, required=REQUIRED)
    if data.get("version", 1) != 1:
        raise bad_request(f"version: only 1 is understood, got {data.get('version')!r}")
    event_id = _str(data, "event_id", 64)
    outcome = _str(data, "outcome", 32)
    if outcome not in OUTCOMES:
        raise bad_request(
            f"outcome: unknown {outcome!r} (known: {', '.join(OUTCOMES)})", field="outcome"
        )
    call_id = _str(data, "call_id", 1024)
    caller = _str(data, "caller", 64)
    callee = _str(data, "callee", 64).removeprefix("+")
    when = _num(data, "time") or st.clock()
    remember_until = _num(data, "remember_until")
    recording = data.get("recording")
    if recording is not None and not isinstance(recording, dict):
        raise bad_request("recording: expected an object or null", field="recording")
    seen = st.seen_events
    if event_id in seen:
        return web.json_response({"status": "duplicate", "event_id": event_id})

    kind = OUTCOMES[outcome]
    applied: str = "ignored"
    if kind is not None and call_id:
        r = await st.store.record_outcome(call_id, kind, None, now=when)
        applied = "unknown_call" if isinstance(r, UnknownCall) else "recorded"
    voicemail_id = None
    if outcome == "voicemail" and recording is not None:
        voicemail_id = await _add_voicemail(st, data, recording, caller, callee, when)
    if outcome == "passed" and remember_until is not None and st.on_challenge_pass is not None:
        st.on_challenge_pass(caller, callee, remember_until)
    seen[event_id] = None
    while len(seen) > MAX_SEEN:
        seen.popitem(last=False)
    return web.json_response(
        {"status": applied, "event_id": event_id, "voicemail_id": voicemail_id}
    )


async def _add_voicemail(
    st: ApiState,
    data: dict[str, Any],
    recording: dict[str, Any],
    caller: str,
    callee: str,
    when: float,
) -> int | None:
    path = recording.get("path")
    if not isinstance(path, str) or not path or len(path) > 4096:
        raise bad_request("recording.path: expected a file path", field="recording.path")
    rel = stored_path(st, path)
    if rel is None:
        raise bad_request(
            "recording.path: not a .wav file inside the voicemail directory",
            field="recording.path",
        )
    user = st.store.user_for_tn(callee)
    if user is None:
        log.warning("voicemail for %s, which no account owns: kept on disk only", callee)
        return None
    duration = _num(recording, "duration") or 0.0
    size = recording.get("bytes", 0)
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise bad_request("recording.bytes: expected a byte count", field="recording.bytes")
    started = _num(recording, "started") or when
    call_id = _str(data, "call_id", 1024) or None
    # the message keeps the score and reasons of the call that was sent to voicemail, so
    # the subscriber sees why without looking the call up (issue 5)
    call = None
    if call_id is not None:
        call = await st.store.read(lambda db: latest_call(db, call_id))
    if call is not None and call.user_id != user.id:
        call = None
    vm = await st.store.add_voicemail(
        NewVoicemail(
            user_id=user.id,
            caller=caller or None,
            time=started,
            duration=duration,
            path=rel,
            size=size,
            call_id=call_id,
            score=None if call is None else call.score,
            reasons=() if call is None else call.reasons,
        )
    )
    if isinstance(vm, Invalid):
        log.warning("voicemail not stored: %s", vm)
        return None
    return vm.id
