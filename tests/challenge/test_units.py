"""Prompts, the outcome reporter, the front relay and the config checks, without pjsua2."""

from __future__ import annotations

import shutil
import time
import wave
from pathlib import Path

import pytest

from challenge.config import ChallengeConfig, resolve_paths
from challenge.front import Relay, call_id_of
from challenge.outcome import Delivery, OutcomeReport, OutcomeReporter
from challenge.prompts import ALL_PROMPTS, ensure_prompts
from spitwall.config import load_config
from spitwall.settings import ConfigError

from .support import TOKEN, ReportServer, free_port


def _fmt(path: Path) -> tuple[int, int, int]:
    with wave.open(str(path), "rb") as w:
        return w.getnchannels(), w.getsampwidth(), w.getframerate()


def test_espeak_prompts_are_8khz_mono_16bit(tmp_path: Path) -> None:
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is missing: install the Debian package 'espeak-ng'")
    ps = ensure_prompts(tmp_path, "en-us")
    assert ps.spoken
    for name in ALL_PROMPTS:
        assert _fmt(ps.path(name)) == (1, 2, 8000), name
        assert ps.durations[name] > 0.2
    assert ps.durations["intro"] > 3.0  # a sentence, not a tone


def test_tone_fallback_and_regeneration_on_voice_change(tmp_path: Path) -> None:
    tones = ensure_prompts(tmp_path, "tones")
    assert not tones.spoken and set(tones.durations) == set(ALL_PROMPTS)
    assert tones.durations["digit_3"] < tones.durations["digit_9"]  # 3 pips < 9 pips
    assert all(_fmt(tones.path(n)) == (1, 2, 8000) for n in ALL_PROMPTS)
    assert (tmp_path / ".voice").read_text().strip() == "tones"
    again = ensure_prompts(tmp_path, "tones")
    assert again.durations == tones.durations


def _report(decision: str) -> OutcomeReport:
    return OutcomeReport(
        kind="challenge",
        outcome="passed",
        decision_id=decision,
        mode="challenge",
        caller="1555",
        callee="1666",
        call_id="c",
        time=time.time(),
        call_started=time.time(),
    )


def test_reporter_posts_json_with_the_bearer_token() -> None:
    server = ReportServer()
    delivered: list[Delivery] = []
    try:
        rep = OutcomeReporter(server.url, TOKEN, on_delivery=delivered.append)
        rep.submit(_report("u-ok"))
        (post,) = server.wait("u-ok")
        assert post["version"] == 1 and post["outcome"] == "passed"
        assert len(post["event_id"]) == 24 and server.auth[-1] == f"Bearer {TOKEN}"
        bad = OutcomeReporter(
            server.url, "wrong", retries=3, backoff=0.01, on_delivery=delivered.append
        )
        bad.submit(_report("u-bad"))
        bad.close()
        rep.close()
        assert [d.ok for d in delivered] == [True, False]
        assert delivered[1].status == 401 and bad.failed == 1  # 401 is not retried
    finally:
        server.stop()


def test_reporter_retries_then_gives_up_without_blocking() -> None:
    url = f"http://127.0.0.1:{free_port(1)}/nothing-listens"
    rep = OutcomeReporter(url, TOKEN, retries=2, backoff=0.01, timeout=0.5)
    t0 = time.monotonic()
    rep.submit(_report("u-down"))
    assert time.monotonic() - t0 < 0.05
    rep.close(timeout=5)
    assert rep.failed == 1 and rep.delivered == 0


INVITE = (
    b"INVITE sip:challenge@h;sw-callee=1;sw-decision=d;sw-mode=challenge SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\nCall-ID: %s\r\n"
    b"CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
)
W1, W2, PEER = ("127.0.0.1", 7001), ("127.0.0.1", 7002), ("127.0.0.1", 5060)


def test_relay_spreads_new_calls_and_keeps_a_call_on_its_worker() -> None:
    relay = Relay([W1, W2], slots=4)
    assert relay.datagram(b"SWLOAD 4", W1, 0.0) == []
    assert relay.datagram(b"SWLOAD 4", W2, 0.0) == []
    a = relay.datagram(INVITE % b"a", PEER, 0.1)
    b = relay.datagram(INVITE % b"b", PEER, 0.2)
    assert {a[0][1], b[0][1]} == {W1, W2}
    # a retransmission (or CANCEL) of call a goes where a went
    assert relay.datagram(INVITE % b"a", PEER, 0.3)[0][1] == a[0][1]
    # a response from the worker goes back to the peer
    resp = b"SIP/2.0 200 OK\r\nCall-ID: a\r\nCSeq: 1 INVITE\r\n\r\n"
    assert relay.datagram(resp, a[0][1], 0.4) == [(resp, PEER)]
    # a worker reporting no room gets no new calls
    relay.datagram(b"SWLOAD 0", W1, 0.5)
    relay.datagram(b"SWLOAD 3", W2, 0.5)
    assert relay.datagram(INVITE % b"c", PEER, 0.6)[0][1] == W2


def test_relay_drops_what_it_cannot_place() -> None:
    relay = Relay([W1], slots=4, idle_timeout=10.0)
    assert relay.datagram(b"\r\n\r\n", PEER, 0.0) == []
    assert relay.datagram(b"SIP/2.0 200 OK\r\nCall-ID: zz\r\n\r\n", PEER, 0.0) == []
    assert relay.datagram(b"garbage", PEER, 0.0) == []
    assert relay.datagram(b"SIP/2.0 200 OK\r\nCall-ID: zz\r\n\r\n", W1, 0.0) == []
    assert relay.datagram(b"SWLOAD x", W1, 0.0) == []
    relay.datagram(INVITE % b"old", PEER, 0.0)
    relay.datagram(INVITE % b"new", PEER, 20.0)  # expiry runs on the way
    assert set(relay.calls) == {b"new"}
    assert call_id_of(b"INVITE x SIP/2.0\r\ni: compact\r\n\r\n") == b"compact"


def test_relay_answers_403_to_untrusted_sources() -> None:
    relay = Relay([W1], allowed_sources=frozenset({"10.0.0.5"}))
    ((resp, dst),) = relay.datagram(INVITE % b"x", ("192.0.2.9", 5060), 0.0)
    assert dst == ("192.0.2.9", 5060)
    assert resp.startswith(b"SIP/2.0 403 ")
    assert b"Call-ID: x\r\n" in resp and b"CSeq: 1 INVITE\r\n" in resp
    assert b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n" in resp
    assert relay.calls == {} and relay.refused == 1
    ack = b"ACK sip:x SIP/2.0\r\nCall-ID: x\r\n\r\n"
    assert relay.datagram(ack, ("192.0.2.9", 5060), 0.0) == []
    assert relay.datagram(INVITE % b"y", ("10.0.0.5", 5060), 0.0)[0][1] == W1


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    for bad, key in [
        ({"challenge.listen": "nope"}, "listen"),
        ({"challenge.code_max_digits": 0}, "code_min_digits"),
        ({"challenge.test_code": "12a"}, "test_code"),
        ({"challenge.over_limit": "drop"}, "challenge.over_limit"),
        ({"challenge.workers": 0}, "workers"),
    ]:
        with pytest.raises(ConfigError, match=key):
            load_config(None, bad)
    cfg = ChallengeConfig()
    paths = resolve_paths(cfg, tmp_path)
    assert paths.secret_file == tmp_path / "challenge.secret"
    assert paths.voicemail_dir == tmp_path / "voicemail"
    assert (cfg.host, cfg.port) == ("127.0.0.1", 5070)
