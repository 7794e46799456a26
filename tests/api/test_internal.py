"""The challenge UA's outcome reports, sent by the real ``challenge.outcome.OutcomeReporter``
(its thread and urllib) to the live test server."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from api.state import STATE
from challenge.outcome import Delivery, OutcomeReport, OutcomeReporter

from .conftest import ALICE_TN, CHALLENGE_TOKEN, Env
from .test_isolation import write_wav


def report(call_id: str, outcome: str, **kw: Any) -> OutcomeReport:
    now = time.time()
    return OutcomeReport(
        kind=kw.pop("kind", "challenge"),
        outcome=outcome,
        decision_id="d1",
        mode="challenge",
        caller="15559990003",
        callee=ALICE_TN,
        call_id=call_id,
        time=now,
        call_started=now - 10,
        **kw,
    )


async def submit(env: Env, r: OutcomeReport, token: str = CHALLENGE_TOKEN) -> Delivery:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Delivery] = loop.create_future()
    reporter = OutcomeReporter(
        env.url("/api/v1/internal/challenge-outcome"),
        token,
        retries=0,
        on_delivery=lambda d: loop.call_soon_threadsafe(done.set_result, d),
    )
    reporter.submit(r)
    try:
        return await asyncio.wait_for(done, 10)
    finally:
        await asyncio.to_thread(reporter.close, 2.0)


async def test_challenge_pass_is_recorded_once(env: Env) -> None:
    passes: list[tuple[str, str, float]] = []
    sub = next(iter(env.client.server.app._subapps))
    sub[STATE].on_challenge_pass = lambda *a: passes.append(a)
    cid = env.record_call("alice", "15559990003", action="challenge", score=60.0)
    await env.flush()
    r = report(cid, "passed", remember_until=time.time() + 86400)
    d = await submit(env, r)
    assert d.ok and d.status == 200, d
    assert passes and passes[0][:2] == ("15559990003", ALICE_TN)
    await env.flush()
    call = (await env.json("GET", "/api/v1/me/calls", "alice"))["calls"][0]
    assert call["outcome"] == "challenge_passed"
    events = await env.store.read(
        lambda db: [tuple(x) for x in db.execute("SELECT kind, call_id FROM feedback_events")]
    )
    assert events == [("challenge_passed", cid)]
    # The same event again (a retry after a lost response) is not counted twice.
    d = await submit(env, r)
    assert d.ok
    await env.flush()
    events = await env.store.read(
        lambda db: [tuple(x) for x in db.execute("SELECT kind FROM feedback_events")]
    )
    assert events == [("challenge_passed",)]


async def test_voicemail_report_creates_a_playable_voicemail(env: Env) -> None:
    cid = env.record_call("alice", "15559990003", action="voicemail", score=80.0)
    wav = env.data_dir / "voicemail" / ALICE_TN / "20260101T000000Z-15559990003-aa.wav"
    size = write_wav(wav, 1.0)
    rec = {
        "path": str(wav),
        "caller": "15559990003",
        "callee": ALICE_TN,
        "decision_id": "d1",
        "started": time.time() - 5,
        "duration": 1.0,
        "speech": 0.9,
        "bytes": size,
    }
    d = await submit(env, report(cid, "voicemail", kind="voicemail", recording=rec))
    assert d.ok, d
    vms = (await env.json("GET", "/api/v1/me/voicemails", "alice"))["voicemails"]
    assert len(vms) == 1 and vms[0]["caller"] == "15559990003" and vms[0]["duration"] == 1.0
    r = await env.call("GET", f"/api/v1/me/voicemails/{vms[0]['id']}/audio", "alice")
    assert r.status == 200 and await r.read() == wav.read_bytes()
    assert (await env.json("GET", "/api/v1/me/voicemails", "bob"))["voicemails"] == []


async def test_bad_reports(env: Env) -> None:
    d = await submit(env, report("x", "passed"), token="wrong")
    assert not d.ok and d.status == 401
    outside = env.data_dir / "reputation.sqlite3"
    rec = {"path": str(outside), "duration": 1.0, "bytes": 1}
    d = await submit(env, report("x", "voicemail", kind="voicemail", recording=rec))
    assert not d.ok and d.status == 400
    r = await env.call(
        "POST",
        "/api/v1/internal/challenge-outcome",
        headers={"Authorization": f"Bearer {CHALLENGE_TOKEN}"},
        json={**report("x", "passed").to_json(), "outcome": "exploded"},
    )
    assert r.status == 400 and (await r.json())["field"] == "outcome"
    # An unknown call is accepted (200) but says so: the UA must not retry forever.
    d = await submit(env, report("never-seen@x", "failed"))
    assert d.ok
