"""Subscriber endpoints (``/api/v1/me…``): profile, lists, settings, greeting, calls, reports.

Every query here is keyed by the authenticated user's id, taken from the request's identity
and never from the URL or the body; an id that belongs to somebody else is answered exactly
like an id that does not exist (404), so the API does not reveal what others have.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from aiohttp import web

from reputation.lists import Invalid, ListKind
from reputation.model import ActionKind
from reputation.policy import BANDS
from reputation.users import UserSettings

from . import lists
from .auth import ALL_ROLES, SUBSCRIBERS, current_user, roles
from .errors import ApiError, bad_request, invalid, not_found
from .payload import (
    field_bool,
    media_type,
    page,
    page_params,
    path_id,
    read_body,
    read_json,
)
from .state import ApiState, state
from .wav import check_wav

SETTINGS_FIELDS = (
    "monitor",
    "strictness",
    "anonymous",
    "band_actions",
    "reject_code",
    "learn_allow",
    "greeting",
    "voicemail_on_fail",
)
WAV_TYPES = ("audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave")


@roles(*ALL_ROLES)
async def profile(request: web.Request) -> web.Response:
    user = current_user(request)
    st = state(request)
    out = user.to_json()
    out["tokens"] = [
        {"id": t.id, "label": t.label, "created": t.created, "expires": t.expires}
        for t in st.store.tokens_of(user.id)
    ]
    return web.json_response(out)


# ---------------------------------------------------------------------------- lists


def _list_handlers(kind: ListKind) -> tuple[Any, Any, Any]:
    @roles(*SUBSCRIBERS)
    async def get(request: web.Request) -> web.StreamResponse:
        return await lists.list_entries(request, current_user(request).id, kind)

    @roles(*SUBSCRIBERS)
    async def post(request: web.Request) -> web.Response:
        return await lists.add_entries(request, current_user(request).id, kind)

    @roles(*SUBSCRIBERS)
    async def delete(request: web.Request) -> web.Response:
        return await lists.delete_entry(request, current_user(request).id, kind)

    return get, post, delete


block_get, block_post, block_delete = _list_handlers(ListKind.BLOCK)
allow_get, allow_post, allow_delete = _list_handlers(ListKind.ALLOW)


# ---------------------------------------------------------------------------- settings


def _settings_json(request: web.Request, s: UserSettings) -> dict[str, Any]:
    st = state(request)
    policy = st.reputation.policy if st.reputation is not None else None
    defaults: dict[str, Any] = {}
    if policy is not None:
        defaults = {
            "monitor": policy.monitor,
            "strictness": "normal",
            "anonymous": policy.anonymous,
            "reject_code": policy.reject_code,
            "band_actions": {
                "ok": policy.action_ok,
                "suspicious": policy.action_suspicious,
                "likely": policy.action_likely,
                "spam": policy.action_spam,
                "certain": policy.action_certain,
            },
            "thresholds": {
                "suspicious": policy.tag_at,
                "likely": policy.challenge_at,
                "spam": policy.voicemail_at,
                "certain": policy.reject_at,
            },
        }
    return {
        "settings": s.to_json(),
        "defaults": defaults,
        "bands": list(BANDS),
        "actions": [a.value for a in ActionKind],
    }


@roles(*SUBSCRIBERS)
async def settings_get(request: web.Request) -> web.Response:
    user = current_user(request)
    return web.json_response(_settings_json(request, state(request).store.settings(user.id)))


@roles(*SUBSCRIBERS)
async def settings_put(request: web.Request) -> web.Response:
    """Replace the settings (absent keys go back to the deployment default). The greeting
    is managed by uploading it; sending the current value back is accepted."""
    user = current_user(request)
    st = state(request)
    data = await read_json(request, st.config.max_json_bytes, allowed=SETTINGS_FIELDS)
    current = st.store.settings(user.id)
    if "greeting" in data and data["greeting"] != current.greeting:
        raise bad_request(
            "greeting: upload a WAV to PUT /api/v1/me/greeting instead", field="greeting"
        )
    patch: dict[str, Any] = {k: None for k in SETTINGS_FIELDS if k != "greeting"}
    patch.update({k: v for k, v in data.items() if k != "greeting"})
    result = await st.store.update_settings(user.id, patch, now=st.clock())
    if isinstance(result, Invalid):
        raise invalid(result)
    return web.json_response(_settings_json(request, result))


# ---------------------------------------------------------------------------- greeting


def greeting_files(st: ApiState, user_id: int, tns: tuple[str, ...]) -> list[Path]:
    """Where the challenge UA looks for a callee's own greeting: ``<tn>.wav`` for every owned
    number, plus the user's master copy ``user-<id>.wav`` (first)."""
    d = st.greetings_dir
    return [d / f"user-{user_id}.wav", *(d / f"{tn}.wav" for tn in tns)]


def sync_greeting(st: ApiState, user_id: int, old_tns: tuple[str, ...]) -> None:
    """After a user's numbers changed: copy their greeting to new numbers, drop old ones."""
    user = st.store.get_user(user_id)
    master = st.greetings_dir / f"user-{user_id}.wav"
    for tn in old_tns:
        if user is None or tn not in user.tns:
            with contextlib.suppress(FileNotFoundError):
                (st.greetings_dir / f"{tn}.wav").unlink()
    if user is None:
        with contextlib.suppress(FileNotFoundError):
            master.unlink()
        return
    if st.store.settings(user_id).greeting and master.is_file():
        data = master.read_bytes()
        for f in greeting_files(st, user_id, user.tns)[1:]:
            _write(f, data)


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@roles(*SUBSCRIBERS)
async def greeting_get(request: web.Request) -> web.StreamResponse:
    user = current_user(request)
    st = state(request)
    name = st.store.settings(user.id).greeting
    path = st.greetings_dir / name if name else None
    if path is None or not path.is_file():
        raise not_found("no greeting uploaded")
    return web.FileResponse(path, headers={"Content-Type": "audio/wav"})


@roles(*SUBSCRIBERS)
async def greeting_put(request: web.Request) -> web.Response:
    user = current_user(request)
    st = state(request)
    if media_type(request) not in WAV_TYPES:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"expected Content-Type: audio/wav, got {request.content_type or 'none'}",
        )
    data = await read_body(request, st.config.max_greeting_bytes, "greeting upload")
    info = check_wav(data, st.config.max_greeting_seconds)
    if isinstance(info, str):
        raise bad_request(f"greeting: {info}", "bad_wav", field="greeting")
    files = greeting_files(st, user.id, user.tns)
    files[0].parent.mkdir(parents=True, exist_ok=True)
    for f in files:
        _write(f, data)
    result = await st.store.update_settings(user.id, {"greeting": files[0].name}, now=st.clock())
    if isinstance(result, Invalid):
        raise invalid(result)
    return web.json_response(
        {"greeting": files[0].name, "seconds": round(info.seconds, 3), "rate": info.rate},
        status=201,
    )


@roles(*SUBSCRIBERS)
async def greeting_delete(request: web.Request) -> web.Response:
    user = current_user(request)
    st = state(request)
    if not st.store.settings(user.id).greeting:
        raise not_found("no greeting uploaded")
    for f in greeting_files(st, user.id, user.tns):
        with contextlib.suppress(FileNotFoundError):
            f.unlink()
    await st.store.update_settings(user.id, {"greeting": None}, now=st.clock())
    return web.Response(status=204)


# ---------------------------------------------------------------------------- calls


@roles(*SUBSCRIBERS)
async def calls(request: web.Request) -> web.Response:
    """Newest first; ``before`` = the ``next`` value of the previous page."""
    user = current_user(request)
    st = state(request)
    limit, before = page_params(request.query, st.config.page_size)
    return page("calls", await st.store.calls_for_user(user.id, limit, before), limit)


@roles(*SUBSCRIBERS)
async def call_get(request: web.Request) -> web.Response:
    user = current_user(request)
    call_id = path_id(request)
    row = await state(request).store.get_call(call_id, user_id=user.id)
    if row is None:
        raise not_found(f"no call {call_id}")
    return web.json_response(row.to_json())


@roles(*SUBSCRIBERS)
async def call_report(request: web.Request) -> web.Response:
    """``{"spam": true|false}``: the subscriber's verdict, fed back into reputation."""
    user = current_user(request)
    st = state(request)
    call_id = path_id(request)
    data = await read_json(request, st.config.max_json_bytes, allowed=("spam",), required=("spam",))
    spam = field_bool(data, "spam")
    if await st.store.get_call(call_id, user_id=user.id) is None:
        raise not_found(f"no call {call_id}")
    result = await st.store.report_call(user.id, call_id, spam, now=st.clock())
    if isinstance(result, Invalid):
        raise not_found(f"no call {call_id}")
    return web.json_response(
        {
            "call": call_id,
            "report": "spam" if spam else "not_spam",
            "duplicate": result.duplicate,
            "counted": list(result.counters),
        }
    )
