"""The challenge UA with real peers: ``spitwall challenge`` as a subprocess, SIPp callers
sending RFC 4733 DTMF from sip-tester's pcaps (or SIP INFO), pjsua2 callers and callees in
subprocesses, outcomes POSTed to a real aiohttp server.

The proxy is not in the path yet: the UA's bridged leg goes straight to the callee
(``outbound_proxy = ""``, ``callee_domain`` = the callee's port); the composition root puts
the proxy in between.

Codes: sip-tester's dtmf_2833_<d>.pcap files carry fixed RTP sequence numbers and
timestamps that grow with the digit (1 < 2 < ... < 9 < 0); a receiver rightly drops a
digit whose sequence number goes backwards by less than a misorder window. So SIPp callers
send digits in that order: the test code is "47" and the wrong entry "25".
"""

from __future__ import annotations

import json
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from challenge.passtoken import PassClaims, verify

from .support import (
    SIPP_DIR,
    TOKEN,
    UA,
    ReportServer,
    Sipp,
    UdpSink,
    free_port,
    peer_result,
    render_uac,
    start_code_caller,
    start_peer,
    start_tone_callee,
    start_ua,
    wait_until,
)

pytestmark = [pytest.mark.sipp, pytest.mark.timeout(120)]

CALLER = "+15551230000"
CALLEE = "+15557654321"


@pytest.fixture(scope="module")
def reports() -> Iterator[ReportServer]:
    server = ReportServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def callee_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def ua(
    tmp_path_factory: pytest.TempPathFactory, reports: ReportServer, callee_port: int
) -> Iterator[UA]:
    agent = start_ua(
        tmp_path_factory.mktemp("ua"),
        {
            "report_url": reports.url,
            "report_token": TOKEN,
            "voice": "tones",
            "test_code": "47",
            "tries": 1,
            "digit_timeout": 1.5,
            "outbound_proxy": "",
            "callee_domain": f"127.0.0.1:{callee_port}",
            "ring_timeout": 5.0,
            "max_record_seconds": 4.0,
            "silence_seconds": 1.5,
            "min_message_seconds": 1.0,
            "max_calls": 30,
            "max_voicemail_calls": 10,
            "workers": 10,
        },
    )
    yield agent
    out = agent.stop()
    assert "Traceback" not in out, out[-4000:]


def secret_of(ua: UA) -> bytes:
    return (ua.data_dir / "challenge.secret").read_text().strip().encode()


def target(
    ua: UA, decision: str, mode: str = "challenge", vm: int = 0, callee: str = "15557654321"
) -> str:
    return (
        f"sip:challenge@{ua.addr};sw-callee=%2B{callee};sw-decision={decision};"
        f"sw-mode={mode};sw-vm={vm}"
    )


@pytest.mark.parametrize("method", ["rfc2833", "info"])
def test_right_code_bridges_to_the_callee_with_a_valid_pass_token(
    ua: UA, reports: ReportServer, callee_port: int, method: str
) -> None:
    callee = Sipp.start(
        SIPP_DIR / "challenge_uas_callee.xml", extra=("-p", str(callee_port), "-rtp_echo")
    )
    time.sleep(0.2)
    decision = f"right-{method}"
    caller = Sipp.start(
        render_uac("47", method=method, decision=decision, hold_ms=2500), target=ua.addr
    )
    rc, why = caller.wait(30)
    assert rc == 0, why
    rc, why = callee.wait(10)  # got INVITE, answered, then the UA's BYE after the caller's
    assert rc == 0, why
    (post,) = reports.wait(decision)
    assert post["outcome"] == "passed" and post["kind"] == "challenge"
    assert post["caller"] == "15551230000" and post["callee"] == "15557654321"
    assert post["tries"] == 1 and post["digits_entered"] == 2
    assert post["remember_until"] > post["time"] + 3600
    log = callee.log()
    header = next(line for line in log.splitlines() if "X-Spitwall-Pass:" in line)
    token = header.split("X-Spitwall-Pass:", 1)[1].strip()
    claims = verify(secret_of(ua), token, time.time(), caller=CALLER, callee=CALLEE)
    assert isinstance(claims, PassClaims), claims
    assert "INVITE sip:+15557654321@" in log
    assert "From: sip:+15551230000@" in log


def test_pjsua2_caller_and_callee_hear_each_other(
    ua: UA, reports: ReportServer, callee_port: int, tmp_path: Path
) -> None:
    ready = tmp_path / "callee.port"
    callee = start_tone_callee(callee_port, ready)
    wait_until(lambda: ready.exists(), 10, "pjsua2 callee")
    caller = start_code_caller(target(ua, "pj-bridge"))
    a, b = peer_result(caller), peer_result(callee)
    assert a["connected"] and a["ended_by"] == "local"
    assert b["connected"] and b["ended_by"] == "remote"  # the UA tore the bridge down
    # caller's 440 Hz reached the callee and the callee's 1 kHz reached the caller
    assert b["rx_active"] > 0.8 and b["rx_max"] > 20, b
    assert a["rx_active"] > 0.8 and a["rx_max"] > 20, a
    assert isinstance(
        verify(
            secret_of(ua),
            b["headers"]["x-spitwall-pass"],
            time.time(),
            caller=CALLER,
            callee=CALLEE,
        ),
        PassClaims,
    )
    assert reports.wait("pj-bridge")[0]["outcome"] == "passed"


@pytest.mark.parametrize(
    ("name", "digits", "end", "hold", "outcome", "entered"),
    [
        ("wrong", "25", "wait", 15000, "failed", 2),
        ("silent", "", "wait", 15000, "timed_out", 0),
        ("hangup", "", "bye", 300, "hung_up", 0),
    ],
)
def test_no_pass_means_the_callee_never_rings(
    ua: UA,
    reports: ReportServer,
    callee_port: int,
    name: str,
    digits: str,
    end: str,
    hold: int,
    outcome: str,
    entered: int,
) -> None:
    sink = UdpSink(callee_port)
    try:
        caller = Sipp.start(
            render_uac(digits, end=end, hold_ms=hold, decision=f"neg-{name}"), target=ua.addr
        )
        rc, why = caller.wait(30)
        assert rc == 0, why  # "wait": the UA hung up after its goodbye; "bye": ours worked
        (post,) = reports.wait(f"neg-{name}")
        assert post["outcome"] == outcome and post["digits_entered"] == entered
        assert post["remember_until"] is None
        time.sleep(0.3)
        assert sink.invites() == []
    finally:
        sink.close()


def _wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
        return w.getnframes() / 8000.0


def test_voicemail_records_to_the_length_limit(ua: UA, reports: ReportServer) -> None:
    caller = start_peer(
        "--role",
        "caller",
        "--target",
        target(ua, "vm-max", "voicemail"),
        "--tone",
        "440",
        "--duration",
        "20",
    )
    res = peer_result(caller)
    assert res["connected"] and res["ended_by"] == "remote"  # goodbye, then the UA hangs up
    (post,) = reports.wait("vm-max")
    assert post["outcome"] == "voicemail" and post["kind"] == "voicemail"
    rec = post["recording"]
    assert rec["duration"] == pytest.approx(4.0, abs=0.15)
    path = Path(rec["path"])
    assert path.parent == ua.data_dir / "voicemail" / "15557654321"
    assert _wav_seconds(path) == pytest.approx(4.0, abs=0.15)
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["decision_id"] == "vm-max" and side["caller"] == "15551230000"


def test_voicemail_ends_on_silence(ua: UA, reports: ReportServer) -> None:
    # greeting (1.1 s of tones) + beep (0.4 s), then ~1.5 s of tone, then silence (1.5 s)
    caller = start_peer(
        "--role",
        "caller",
        "--target",
        target(ua, "vm-silence", "voicemail"),
        "--tone",
        "440",
        "--tone-for",
        "3.0",
        "--duration",
        "20",
    )
    res = peer_result(caller)
    assert res["ended_by"] == "remote"
    (post,) = reports.wait("vm-silence")
    rec = post["recording"]
    assert post["outcome"] == "voicemail"
    assert 1.0 <= rec["speech"] <= 2.2, rec
    assert rec["duration"] == pytest.approx(rec["speech"] + 1.5, abs=0.4)
    assert _wav_seconds(Path(rec["path"])) == pytest.approx(rec["duration"], abs=0.05)


def test_failed_challenge_offers_voicemail(ua: UA, reports: ReportServer) -> None:
    caller = Sipp.start(
        render_uac("25", end="wait", hold_ms=15000, decision="fail-vm", vm=1), target=ua.addr
    )
    rc, why = caller.wait(30)
    assert rc == 0, why
    posts = reports.wait("fail-vm", 2)
    assert [p["outcome"] for p in posts] == ["failed", "no_message"]
    assert [p["kind"] for p in posts] == ["challenge", "voicemail"]
    assert not list((ua.data_dir / "voicemail" / "15557654321").glob("*-15551230000-*.tmp"))


def test_not_a_divert_is_refused(ua: UA) -> None:
    caller = start_peer("--role", "caller", "--target", f"sip:someone@{ua.addr}", "--duration", "5")
    res = peer_result(caller)
    assert not res["connected"] and res["last_code"] == 404


def test_twenty_simultaneous_challenges(
    ua: UA, reports: ReportServer, callee_port: int, record_property: Any
) -> None:
    n = 20
    callee = Sipp.start(
        SIPP_DIR / "challenge_uas_callee.xml", extra=("-p", str(callee_port), "-rtp_echo"), calls=n
    )
    time.sleep(0.2)
    cpu0, t0 = ua.cpu_seconds(), time.monotonic()
    caller = Sipp.start(
        render_uac("47", decision="load", hold_ms=4000), target=ua.addr, calls=n, rate=n
    )
    rc, why = caller.wait(60)
    assert rc == 0, why
    rc, why = callee.wait(20)
    assert rc == 0, why
    posts = reports.wait("load-", n)
    wall = time.monotonic() - t0
    cpu = ua.cpu_seconds() - cpu0
    assert sorted(p["outcome"] for p in posts) == ["passed"] * n
    assert len({p["decision_id"] for p in posts}) == n
    # idle baseline of the polling loop over the same wall time
    idle0 = ua.cpu_seconds()
    time.sleep(2.0)
    idle = (ua.cpu_seconds() - idle0) / 2.0 * wall
    record_property("cpu_seconds", cpu)
    record_property("idle_cpu_seconds", idle)
    record_property("wall_seconds", wall)
    print(
        f"\nchallenge UA: {n} calls in {wall:.1f}s wall, {cpu:.2f}s CPU "
        f"({cpu / n * 1000:.0f} ms/call; idle loop {idle:.2f}s of it)"
    )
    assert cpu / n < 0.5, "more than half a CPU second per challenge call"


def test_over_limit_goes_to_voicemail_then_busy(
    tmp_path: Path, reports: ReportServer, callee_port: int
) -> None:
    agent = start_ua(
        tmp_path,
        {
            "report_url": reports.url,
            "report_token": TOKEN,
            "voice": "tones",
            "test_code": "47",
            "digit_timeout": 5.0,
            "outbound_proxy": "",
            "callee_domain": f"127.0.0.1:{callee_port}",
            "max_calls": 1,
            "max_voicemail_calls": 1,
            "over_limit": "voicemail",
            "workers": 1,
        },
    )
    try:
        first = Sipp.start(
            render_uac("", end="bye", hold_ms=3500, decision="lim-a"), target=agent.addr
        )
        time.sleep(0.5)
        second = start_peer(
            "--role",
            "caller",
            "--target",
            target(agent, "lim-b"),
            "--hangup-after",
            "2.5",
            "--duration",
            "10",
        )
        time.sleep(0.8)
        third = start_peer(
            "--role", "caller", "--target", target(agent, "lim-c"), "--duration", "5"
        )
        assert first.wait(20)[0] == 0
        b, c = peer_result(second), peer_result(third)
        assert b["connected"]
        assert not c["connected"] and c["last_code"] == 486
        assert reports.wait("lim-a")[0]["outcome"] == "hung_up"
        # the second challenge became a voicemail call (greeting, beep, then hang-up)
        assert reports.wait("lim-b")[0]["kind"] == "voicemail"
        assert reports.wait("lim-c")[0]["outcome"] == "rejected_busy"
    finally:
        agent.stop()


def test_only_the_proxy_may_divert(ua: UA) -> None:
    """[challenge] divert_sources: a caller reaching the UA port directly from another
    address cannot name a callee to be bridged to."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.2", 0))
        s.settimeout(3.0)
        port = s.getsockname()[1]
        invite = (
            f"INVITE {target(ua, 'forged')} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.2:{port};branch=z9hG4bKforged\r\n"
            f"From: <sip:+15550000000@127.0.0.2>;tag=f\r\nTo: <sip:+15557654321@x>\r\n"
            f"Call-ID: forged-1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
            f"Content-Length: 0\r\n\r\n"
        )
        s.sendto(invite.encode(), ("127.0.0.1", ua.port))
        data, _ = s.recvfrom(65535)
    assert data.startswith(b"SIP/2.0 403 ")
    assert b"Call-ID: forged-1" in data


def test_a_dead_worker_is_replaced(tmp_path: Path, reports: ReportServer) -> None:
    import os
    import signal

    agent = start_ua(
        tmp_path,
        {
            "report_url": reports.url,
            "report_token": TOKEN,
            "voice": "tones",
            "test_code": "47",
            "workers": 2,
        },
    )
    try:
        workers = [p for p in agent.pids() if p != agent.proc.pid]
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        wait_until(
            lambda: len([p for p in agent.pids() if p != agent.proc.pid and p not in workers]) == 1,
            15,
            "a new worker",
        )
        time.sleep(0.3)  # its first load report
        for i in range(2):  # both workers take calls again
            caller = Sipp.start(
                render_uac("", end="bye", hold_ms=300, decision=f"respawn{i}"), target=agent.addr
            )
            assert caller.wait(20)[0] == 0
        assert [p["outcome"] for p in reports.wait("respawn", 2)] == ["hung_up"] * 2
    finally:
        out = agent.stop()
    assert "exited (-9): restarting" in out


def test_a_callees_own_greeting_is_played(ua: UA, reports: ReportServer) -> None:
    """<data_dir>/greetings/<callee>.wav replaces the default greeting (1.1 s of tones)."""
    from challenge.prompts import tone, write_pcm

    greetings = ua.data_dir / "greetings"
    greetings.mkdir(exist_ok=True)
    write_pcm(greetings / "15550001111.wav", tone([(700.0, 0.2)]))
    caller = start_peer(
        "--role",
        "caller",
        "--target",
        target(ua, "own-greeting", "voicemail", callee="15550001111"),
        "--tone",
        "440",
        "--hangup-after",
        "2.5",
        "--duration",
        "10",
    )
    assert peer_result(caller)["ended_by"] == "local"
    (post,) = reports.wait("own-greeting")
    rec = post["recording"]
    assert post["outcome"] == "voicemail" and post["callee"] == "15550001111"
    # answered, then 0.2 s greeting + 0.4 s beep before the recording starts
    assert rec["started"] - post["call_started"] < 1.2, rec
    assert Path(rec["path"]).parent == ua.data_dir / "voicemail" / "15550001111"
