"""A subscriber only ever sees and changes their own data: every /me route with another
user's token, and every id-based route with another user's ids (404, never 403)."""

from __future__ import annotations

import time
import wave
from pathlib import Path

from reputation.records import NewVoicemail

from .conftest import ALICE_TN, Env


def write_wav(path: Path, seconds: float = 0.5, rate: int = 8000) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x01\x00" * int(rate * seconds))
    return path.stat().st_size


async def alice_data(env: Env) -> dict[str, int]:
    """Give alice one of everything; return the ids."""
    b = await env.json(
        "POST", "/api/v1/me/blocklist", "alice", 201, json={"number": "+15559990001"}
    )
    a = await env.json(
        "POST", "/api/v1/me/allowlist", "alice", 201, json={"number": "+15559990002"}
    )
    env.record_call("alice", "15559990003")
    await env.flush()
    calls = await env.json("GET", "/api/v1/me/calls", "alice")
    rel = f"voicemail/{ALICE_TN}/msg-1.wav"
    size = write_wav(env.data_dir / rel)
    vm = await env.store.add_voicemail(
        NewVoicemail(env.users["alice"].id, "15559990003", time.time(), 0.5, rel, size)
    )
    assert not hasattr(vm, "field")
    await env.json("PUT", "/api/v1/me/settings", "alice", json={"strictness": "strict"})
    return {"block": b["id"], "allow": a["id"], "call": calls["calls"][0]["id"], "vm": vm.id}  # type: ignore[union-attr]


async def test_bob_sees_none_of_alices_data(env: Env) -> None:
    await alice_data(env)
    assert (await env.json("GET", "/api/v1/me", "bob"))["name"] == "bob"
    assert (await env.json("GET", "/api/v1/me/blocklist", "bob"))["entries"] == []
    assert (await env.json("GET", "/api/v1/me/allowlist", "bob"))["entries"] == []
    r = await env.call("GET", "/api/v1/me/blocklist?format=csv", "bob")
    assert len((await r.text()).strip().splitlines()) == 1  # the header only
    assert (await env.json("GET", "/api/v1/me/calls", "bob"))["calls"] == []
    assert (await env.json("GET", "/api/v1/me/voicemails", "bob"))["voicemails"] == []
    assert (await env.json("GET", "/api/v1/me/settings", "bob"))["settings"] == {}
    r = await env.call("GET", "/api/v1/me/greeting", "bob")
    assert r.status == 404


async def test_bob_cannot_touch_alices_ids(env: Env) -> None:
    ids = await alice_data(env)
    attempts = [
        ("DELETE", f"/api/v1/me/blocklist/{ids['block']}", None),
        ("DELETE", f"/api/v1/me/allowlist/{ids['allow']}", None),
        ("GET", f"/api/v1/me/calls/{ids['call']}", None),
        ("POST", f"/api/v1/me/calls/{ids['call']}/report", {"spam": True}),
        ("GET", f"/api/v1/me/voicemails/{ids['vm']}/audio", None),
        ("DELETE", f"/api/v1/me/voicemails/{ids['vm']}", None),
        # the right id on the wrong list is not found either
        ("DELETE", f"/api/v1/me/allowlist/{ids['block']}", None),
    ]
    for method, path, body in attempts:
        r = await env.call(method, path, "bob", json=body)
        out = await r.json()
        assert r.status == 404, (method, path, r.status, out)
        assert out["error"] == "not_found"
    # A missing id answers exactly the same.
    r = await env.call("GET", "/api/v1/me/calls/999999", "bob")
    assert r.status == 404
    # Alice still has everything, untouched.
    assert len((await env.json("GET", "/api/v1/me/blocklist", "alice"))["entries"]) == 1
    assert len((await env.json("GET", "/api/v1/me/allowlist", "alice"))["entries"]) == 1
    call = await env.json("GET", f"/api/v1/me/calls/{ids['call']}", "alice")
    assert call["report"] is None
    vms = (await env.json("GET", "/api/v1/me/voicemails", "alice"))["voicemails"]
    assert [v["id"] for v in vms] == [ids["vm"]] and vms[0]["heard"] is False
    # The global (admin) list routes do not reach user entries either.
    r = await env.call("DELETE", f"/api/v1/admin/lists/block/{ids['block']}", "root")
    assert r.status == 404


async def test_no_body_field_can_name_another_owner(env: Env) -> None:
    bob = env.users["bob"]
    r = await env.call(
        "POST", "/api/v1/me/blocklist", "alice", json={"number": "+15550001", "user_id": bob.id}
    )
    assert r.status == 400 and (await r.json())["error"] == "unknown_field"
    assert env.store.lists_for_user(bob.id) == []
