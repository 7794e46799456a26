"""Subscriber endpoints besides the lists: profile, settings, greeting, calls and reports,
voicemails."""

from __future__ import annotations

import io
import time
import wave

from reputation.records import NewVoicemail

from .conftest import ALICE_TN, Env
from .test_isolation import write_wav


def wav_bytes(seconds: float = 0.5, rate: int = 8000, channels: int = 1, width: int = 2) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(b"\x00" * width * channels * int(rate * seconds))
    return buf.getvalue()


async def test_profile(env: Env) -> None:
    me = await env.json("GET", "/api/v1/me", "alice")
    assert me["name"] == "alice" and me["role"] == "user" and me["tns"] == [f"+{ALICE_TN}"]
    assert [t["label"] for t in me["tokens"]] == ["initial"]
    assert all("hash" not in str(t) and "swt_" not in str(t) for t in me["tokens"])


async def test_settings_get_put_replace_semantics(env: Env) -> None:
    s = await env.json("GET", "/api/v1/me/settings", "alice")
    assert s["settings"] == {} and s["bands"][0] == "ok" and "reject" in s["actions"]
    assert s["defaults"]["band_actions"]["certain"] == "reject"
    body = {
        "strictness": "strict",
        "monitor": True,
        "anonymous": "challenge",
        "band_actions": {"likely": "voicemail", "spam": "reject"},
        "reject_code": 607,
    }
    out = await env.json("PUT", "/api/v1/me/settings", "alice", json=body)
    assert out["settings"] == body
    st = env.store.settings(env.users["alice"].id)
    assert st.strictness == "strict" and st.band_action("likely") == "voicemail"
    # PUT replaces: keys left out go back to the default.
    out = await env.json("PUT", "/api/v1/me/settings", "alice", json={"monitor": False})
    assert out["settings"] == {"monitor": False}


async def test_settings_errors_name_the_field(env: Env) -> None:
    cases = [
        ({"strictness": "paranoid"}, "settings.strictness"),
        ({"band_actions": {"awful": "reject"}}, "settings.band_actions.awful"),
        ({"band_actions": {"spam": "explode"}}, "settings.band_actions.spam"),
        ({"reject_code": 486}, "settings.reject_code"),
        ({"monitor": "yes"}, "settings.monitor"),
        ({"greeting": "../../etc/passwd"}, "greeting"),
    ]
    for body, field in cases:
        r = await env.call("PUT", "/api/v1/me/settings", "alice", json=body)
        out = await r.json()
        assert r.status == 400 and out["field"] == field, (body, out)
    r = await env.call("PUT", "/api/v1/me/settings", "alice", json={"colour": "red"})
    out = await r.json()
    assert r.status == 400 and out["error"] == "unknown_field" and "colour" in out["message"]


async def test_greeting_upload_validate_download_delete(env: Env) -> None:
    alice = env.users["alice"]
    good = wav_bytes(1.0)
    r = await env.call(
        "PUT", "/api/v1/me/greeting", "alice", data=good, headers={"Content-Type": "audio/wav"}
    )
    out = await r.json()
    assert r.status == 201 and out["seconds"] == 1.0 and out["rate"] == 8000
    assert (env.data_dir / "greetings" / f"{ALICE_TN}.wav").read_bytes() == good
    assert env.store.settings(alice.id).greeting == f"user-{alice.id}.wav"
    r = await env.call("GET", "/api/v1/me/greeting", "alice")
    assert r.status == 200 and await r.read() == good
    # Settings PUT keeps the greeting when it is sent back unchanged.
    s = await env.json("GET", "/api/v1/me/settings", "alice")
    await env.json("PUT", "/api/v1/me/settings", "alice", json=s["settings"])
    assert env.store.settings(alice.id).greeting == f"user-{alice.id}.wav"
    r = await env.call("DELETE", "/api/v1/me/greeting", "alice")
    assert r.status == 204
    assert not (env.data_dir / "greetings" / f"{ALICE_TN}.wav").exists()
    assert (await env.call("GET", "/api/v1/me/greeting", "alice")).status == 404


async def test_greeting_rejections(env: Env) -> None:
    cases = [
        (b"RIFF....WAVEfmt not really", "audio/wav", 400, "not a WAV"),
        (b"hello" * 20, "audio/wav", 400, "no RIFF/WAVE header"),
        (wav_bytes(0.5, rate=44100), "audio/wav", 400, "44100 Hz"),
        (wav_bytes(0.5, channels=2), "audio/wav", 400, "2 channels"),
        (wav_bytes(0.5, width=1), "audio/wav", 400, "8-bit"),
        (wav_bytes(3.5), "audio/wav", 400, "at most 3 s"),
        (wav_bytes(0.0), "audio/wav", 400, "no audio"),
        (wav_bytes(1.0)[:2000], "audio/wav", 400, "truncated"),
        (b"\x00" * 70_000, "audio/wav", 413, "limit"),
        (wav_bytes(0.5), "application/octet-stream", 415, "audio/wav"),
    ]
    for data, ctype, status, text in cases:
        r = await env.call(
            "PUT", "/api/v1/me/greeting", "alice", data=data, headers={"Content-Type": ctype}
        )
        out = await r.json()
        assert r.status == status and text in out["message"], (text, r.status, out)
    assert env.store.settings(env.users["alice"].id).greeting is None


async def test_calls_pagination_and_report(env: Env) -> None:
    for i in range(7):
        env.record_call("alice", f"1555000100{i}", action=("reject", "forward")[i % 2])
    env.record_call("bob", "15550009999")
    await env.flush()
    page1 = await env.json("GET", "/api/v1/me/calls", "alice")
    assert len(page1["calls"]) == 5 and page1["next"] is not None  # page_size 5
    c = page1["calls"][0]
    assert c["caller"] == "15550001006" and c["verstat"] == "TN-Validation-Failed"
    assert c["attest"] == "C" and c["score"] == 95.0 and c["action"] == "reject"
    assert c["reasons"][0]["signal"] == "list.user_block" and "outcome" in c
    page2 = await env.json("GET", f"/api/v1/me/calls?before={page1['next']}", "alice")
    assert len(page2["calls"]) == 2 and page2["next"] is None
    ids = [x["id"] for x in page1["calls"] + page2["calls"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 7
    two = await env.json("GET", "/api/v1/me/calls?limit=2", "alice")
    assert len(two["calls"]) == 2
    cid = c["id"]
    out = await env.json("POST", f"/api/v1/me/calls/{cid}/report", "alice", json={"spam": True})
    assert out["report"] == "spam" and out["duplicate"] is False and out["counted"]
    again = await env.json("POST", f"/api/v1/me/calls/{cid}/report", "alice", json={"spam": True})
    assert again["duplicate"] is True
    await env.flush()
    one = await env.json("GET", f"/api/v1/me/calls/{cid}", "alice")
    assert one["report"] == "spam"
    out = await env.json("POST", f"/api/v1/me/calls/{cid}/report", "alice", json={"spam": False})
    assert out["report"] == "not_spam"


async def test_voicemails_list_play_delete(env: Env) -> None:
    alice = env.users["alice"]
    rel = f"voicemail/{ALICE_TN}/20260101T000000Z-15550001-ab.wav"
    size = write_wav(env.data_dir / rel, 0.25)
    (env.data_dir / rel).with_suffix(".json").write_text("{}")
    vm = await env.store.add_voicemail(
        NewVoicemail(alice.id, "15550001", time.time(), 0.25, rel, size, call_id="c1")
    )
    # A row pointing outside the voicemail directory is never opened.
    evil = await env.store.add_voicemail(
        NewVoicemail(alice.id, "1", time.time(), 1.0, "../reputation.sqlite3", 10)
    )
    listing = await env.json("GET", "/api/v1/me/voicemails", "alice")
    assert [v["id"] for v in listing["voicemails"]] == [evil.id, vm.id]  # type: ignore[union-attr]
    assert "path" not in listing["voicemails"][0]
    r = await env.call("GET", f"/api/v1/me/voicemails/{evil.id}/audio", "alice")  # type: ignore[union-attr]
    assert r.status == 404
    r = await env.call("GET", f"/api/v1/me/voicemails/{vm.id}/audio", "alice")  # type: ignore[union-attr]
    assert r.status == 200 and r.content_type == "audio/wav"
    assert await r.read() == (env.data_dir / rel).read_bytes()
    r = await env.call(
        "GET",
        f"/api/v1/me/voicemails/{vm.id}/audio",  # type: ignore[union-attr]
        "alice",
        headers={"Range": "bytes=0-43"},
    )
    assert r.status == 206 and len(await r.read()) == 44
    listing = await env.json("GET", "/api/v1/me/voicemails", "alice")
    assert listing["voicemails"][1]["heard"] is True
    r = await env.call("DELETE", f"/api/v1/me/voicemails/{vm.id}", "alice")  # type: ignore[union-attr]
    assert r.status == 204
    assert (
        not (env.data_dir / rel).exists() and not (env.data_dir / rel).with_suffix(".json").exists()
    )
    assert (env.data_dir / "reputation.sqlite3").exists()
    r = await env.call("DELETE", f"/api/v1/me/voicemails/{evil.id}", "alice")  # type: ignore[union-attr]
    assert r.status == 204 and (env.data_dir / "reputation.sqlite3").exists()


async def test_greeting_follows_number_changes(env: Env) -> None:
    alice = env.users["alice"]
    good = wav_bytes(0.5)
    r = await env.call(
        "PUT", "/api/v1/me/greeting", "alice", data=good, headers={"Content-Type": "audio/wav"}
    )
    assert r.status == 201
    g = env.data_dir / "greetings"
    await env.json(
        "PUT", f"/api/v1/admin/users/{alice.id}/tns", "root", json={"tns": ["+15550007777"]}
    )
    assert (g / "15550007777.wav").read_bytes() == good
    assert not (g / f"{ALICE_TN}.wav").exists()
    await env.json("DELETE", f"/api/v1/admin/users/{alice.id}", "root", 204)
    assert sorted(p.name for p in g.iterdir()) == []
