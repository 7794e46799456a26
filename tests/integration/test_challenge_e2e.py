"""Challenge and voicemail through the whole of spitwall, as production runs it.

``spitwall serve --config <toml>`` is a subprocess with explicit free ports; it starts the
challenge UA child itself (``python -m spitwall challenge --config … --data-dir …``), so the
divert, the UA, the pass token on the bridged leg, the outcome report over HTTP and the
remembered pass all run exactly as deployed. Peers: a SIPp caller sending RFC 4733 DTMF
from sip-tester's pcaps (digits in increasing order: the code is "47", the wrong entry
"25"), a pjsua2 caller playing a tone into voicemail, a SIPp callee (or a UDP sink standing
in for a callee that must never ring). Everything is read back over the real HTTP API with
bearer tokens: the subscriber's call history and voicemails, the auditor's log search.

Each subscriber sends every score band to one action (``PUT /api/v1/me/settings``), so the
test does not depend on how a fresh caller happens to score.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from challenge.passtoken import load_or_create_secret, mint
from reputation.policy import BANDS
from tests.challenge.support import (
    DTMF_RTP,
    END_BYE,
    END_WAIT,
    PCAP_DIR,
    SIPP_DIR,
    Sipp,
    UdpSink,
    free_port,
    peer_result,
    sipp_binary,
    start_code_caller,
    start_peer,
    start_tone_callee,
    stop_process,
)

pytestmark = [pytest.mark.sipp, pytest.mark.timeout(150)]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CALLER = "+15551230000"  # the SIPp scenario's and the pjsua2 peer's From
PASS_TN = "+15557654321"  # a subscriber who challenges every call
FAIL_TN = "+15557654322"  # another one, for the calls that fail the challenge
VM_TN = "+15557654323"  # a subscriber who sends every call to voicemail
MEDIA_TN = "+15557654324"  # challenges every call; reached by pjsua2 peers


# ---------------------------------------------------------------- spitwall serve + HTTP


@dataclass
class Serve:
    proc: subprocess.Popen[str]
    data_dir: Path
    proxy: str
    http: str
    callee_port: int
    tokens: dict[str, str]
    lines: list[str] = field(default_factory=list)

    def wait_line(self, pred: Callable[[str], bool], timeout: float, what: str) -> str:
        end = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < end:
            for line in self.lines[seen:]:
                if pred(line):
                    return line
            seen = len(self.lines)
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"spitwall serve: no {what}:\n{''.join(self.lines)[-4000:]}")

    def api(self, method: str, path: str, user: str, body: Any = None) -> tuple[int, Any, bytes]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.http}{path}", data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.tokens[user]}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                raw, status, ctype = r.read(), r.status, r.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            raw, status, ctype = e.read(), e.code, e.headers.get("Content-Type", "")
        parsed = json.loads(raw) if "json" in ctype and raw else None
        return status, parsed, raw

    def calls(self, user: str) -> list[dict[str, Any]]:
        status, body, raw = self.api("GET", "/api/v1/me/calls", user)
        assert status == 200, raw
        return list(body["calls"])

    def descendants(self) -> list[int]:
        """The UA front and its pjsua2 workers (children and grandchildren of serve)."""
        parents, found = {self.proc.pid}, []
        for _ in range(3):
            for stat in Path("/proc").glob("[0-9]*/stat"):
                try:
                    ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
                pid = int(stat.parent.name)
                if ppid in parents and pid not in found:
                    found.append(pid)
            parents |= set(found)
        return found

    def stop(self) -> str:
        return stop_process(self.proc, self.lines, 15)


def _add_user(data_dir: Path, name: str, role: str, *tns: str) -> str:
    args = [sys.executable, "-m", "spitwall", "users", "add", name, "--role", role]
    for tn in tns:
        args += ["--tn", tn]
    out = subprocess.run(
        [*args, "--data-dir", str(data_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout.strip().splitlines()[-1]


def _toml(values: dict[str, dict[str, Any]], data_dir: Path) -> str:
    def val(v: Any) -> str:
        return str(v).lower() if isinstance(v, bool) else json.dumps(v)

    out = [f"data_dir = {json.dumps(str(data_dir))}"]
    for table, keys in values.items():
        out.append(f"[{table}]")
        out += [f"{k} = {val(v)}" for k, v in keys.items()]
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    sipp_binary()  # fails naming sip-tester when SIPp or its DTMF pcaps are missing
    tmp = tmp_path_factory.mktemp("challenge-e2e")
    data_dir = tmp / "data"
    proxy_port, http_port, ua_port, callee_port = (free_port() for _ in range(4))
    http = f"127.0.0.1:{http_port}"
    cfg = tmp / "spitwall.toml"
    cfg.write_text(
        _toml(
            {
                "log": {"level": "info"},
                "proxy": {
                    "listen": [f"udp:127.0.0.1:{proxy_port}"],
                    "default_next_hop": f"sip:127.0.0.1:{callee_port}",
                },
                "proxy.timers": {"t1": 0.1, "t2": 0.4, "t4": 0.5},
                "attestation": {"dev_pki": False},
                "http": {"listen": http},
                "challenge": {
                    "enabled": True,
                    "listen": f"127.0.0.1:{ua_port}",
                    "divert_sources": ["127.0.0.1"],
                    "outbound_proxy": f"sip:127.0.0.1:{proxy_port};lr",
                    "callee_domain": f"127.0.0.1:{proxy_port}",
                    "report_url": f"http://{http}/api/v1/internal/challenge-outcome",
                    "voice": "tones",
                    "test_code": "47",
                    "tries": 1,
                    "digit_timeout": 1.5,
                    "ring_timeout": 5.0,
                    "pass_remember": 3600.0,
                    "max_record_seconds": 3.0,
                    "silence_seconds": 1.5,
                    "min_message_seconds": 1.0,
                    "workers": 2,
                },
            },
            data_dir,
        )
    )
    tokens = {
        "pass": _add_user(data_dir, "pat", "user", PASS_TN),
        "fail": _add_user(data_dir, "fay", "user", FAIL_TN),
        "vm": _add_user(data_dir, "vic", "user", VM_TN),
        "media": _add_user(data_dir, "meg", "user", MEDIA_TN),
        "auditor": _add_user(data_dir, "aud", "auditor"),
    }
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "spitwall", "serve", "--config", str(cfg)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    sw = Serve(proc, data_dir, f"127.0.0.1:{proxy_port}", f"http://{http}", callee_port, tokens)

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            sw.lines.append(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        sw.wait_line(lambda s: s.startswith("ready"), 30, "ready line")
        # the child UA logs through the inherited stdout
        sw.wait_line(lambda s: "challenge UA listening on udp:" in s, 30, "challenge UA")
        for user, action in (
            ("pass", "challenge"),
            ("fail", "challenge"),
            ("media", "challenge"),
            ("vm", "voicemail"),
        ):
            status, _, raw = sw.api(
                "PUT",
                "/api/v1/me/settings",
                user,
                {"band_actions": dict.fromkeys(BANDS, action)},
            )
            assert status == 200, raw
        assert not [x for x in sw.lines if "challenge UA misconfigured" in x], sw.lines
        children = sw.descendants()
        assert len(children) >= 3, children  # the UA front and its two workers
        yield sw
    finally:
        out = sw.stop()
    assert "Traceback" not in out, out[-4000:]
    # SIGTERM to serve ends the UA and its workers too: nothing keeps the SIP port
    end = time.monotonic() + 10
    while time.monotonic() < end and any(Path(f"/proc/{p}").exists() for p in children):
        time.sleep(0.1)
    left = [p for p in children if Path(f"/proc/{p}").exists()]
    assert not left, f"still running after serve stopped: {left}"


# ---------------------------------------------------------------- peers


def _caller(digits: str, *, end: str, hold_ms: int, header: str = "") -> Path:
    """The SIPp caller of e2e_challenge_uac.xml: dials through the proxy, presses digits."""
    blocks = [DTMF_RTP.format(pcap=PCAP_DIR / f"dtmf_2833_{d}.pcap", gap=300) for d in digits]
    text = (HERE / "e2e_challenge_uac.xml").read_text()
    if not header:  # an empty line would end SIPp's header block
        text = text.replace("      @HEADER@\n", "")
    for k, v in {
        "@DTMF@": "\n".join(blocks),
        "@END@": (END_BYE if end == "bye" else END_WAIT).format(hold=hold_ms),
        "@CALLER@": CALLER,
        "@PAUSE@": "800",
        "@HEADER@": header,
    }.items():
        text = text.replace(k, v)
    fd, path = tempfile.mkstemp(prefix="e2e-challenge-uac-", suffix=".xml")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return Path(path)


def _direct_caller(trace_dir: Path) -> Path:
    """A plain SIPp caller expecting 200 (no challenge): uac_expect.xml with ACK/BYE."""
    from tests.integration.test_screening_e2e import ACK_BYE

    src = (HERE / "uac_expect.xml").read_text()
    text = (
        src.replace("@AFTER@", ACK_BYE)
        .replace("@CALLER@", CALLER)
        .replace("@CODE@", "200")
        .replace("@IDENTITY_HEADER@", "")
    )
    path = trace_dir / "direct-uac.xml"
    path.write_text(text)
    return path


def _poll(fn: Callable[[], Any], timeout: float, what: str) -> Any:
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        last = fn()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def _digits(tn: str) -> str:
    return tn.lstrip("+")


def _audit(serve: Serve, **query: str) -> list[dict[str, Any]]:
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    status, body, raw = serve.api("GET", f"/api/v1/audit/records?{qs}", "auditor")
    assert status == 200, raw
    return list(body["records"])


@pytest.fixture
def reap() -> Iterator[Callable[[Sipp], Sipp]]:
    """Register a SIPp peer to be killed after the test (a failed test must not leave a
    callee holding the port the next test needs)."""
    peers: list[Sipp] = []

    def keep(peer: Sipp) -> Sipp:
        peers.append(peer)
        return peer

    yield keep
    for peer in peers:
        peer.kill()


# ---------------------------------------------------------------- tests


def test_right_code_rings_the_callee_and_the_pass_is_remembered(
    serve: Serve, tmp_path: Path, reap: Callable[[Sipp], Sipp]
) -> None:
    callee = reap(
        Sipp.start(
            SIPP_DIR / "challenge_uas_proxied_callee.xml",  # fails on an X-Spitwall-Pass
            extra=("-p", str(serve.callee_port), "-rtp_echo"),
        )
    )
    time.sleep(0.2)
    caller = reap(
        Sipp.start(
            _caller("47", end="bye", hold_ms=2500),
            target=serve.proxy,
            extra=("-s", _digits(PASS_TN)),
        )
    )
    rc, why = caller.wait(40)
    assert rc == 0, why
    rc, why = callee.wait(15)  # it rang (the pass token consumed), answered, got the BYE
    assert rc == 0, why
    log = callee.log()
    assert f"INVITE sip:{PASS_TN}@" in log

    # the outcome came back over HTTP: the diverted call's record says challenge_passed
    def diverted() -> list[dict[str, Any]]:
        return [
            c
            for c in serve.calls("pass")
            if c["action"] == "challenge" and c["outcome"] == "challenge_passed"
        ]

    (first,) = _poll(diverted, 15, "the challenge_passed outcome in the call history")
    assert first["caller"].lstrip("+") == _digits(CALLER)
    # the bridged leg carried the token: forwarded without screening
    legs = [c for c in serve.calls("pass") if c["call_id"] != first["call_id"]]
    assert [c["action"] for c in legs] == ["forward"], legs
    # the auditor sees the decision to challenge for that call
    records = _audit(serve, call_id=first["call_id"])
    assert [r["action"] for r in records] == ["challenge"], records

    # a second call within pass_remember goes straight to the callee
    trace = tmp_path / "callee2.log"
    callee2 = reap(
        Sipp.start(
            HERE / "uas_trace.xml",
            extra=("-p", str(serve.callee_port), "-trace_msg", "-message_file", str(trace)),
        )
    )
    time.sleep(0.2)
    again = reap(
        Sipp.start(_direct_caller(tmp_path), target=serve.proxy, extra=("-s", _digits(PASS_TN)))
    )
    rc, why = again.wait(30)
    assert rc == 0, why
    rc, why = callee2.wait(15)
    assert rc == 0, why
    invite = trace.read_text(errors="replace").split("INVITE sip:", 1)[1].split("\n\n", 1)[0]
    assert "label=challenge-remembered" in invite
    newest = _poll(lambda: serve.calls("pass")[:1], 5, "the second call's record")[0]
    assert newest["action"] == "forward" and newest["call_id"] not in (first["call_id"],)

    # a pass token opens only the call it names: one minted with the UA's own secret for
    # CALLER → PASS_TN, sent towards another subscriber, is screened (challenged) like any
    # call, and that callee never rings
    secret = load_or_create_secret(serve.data_dir / "challenge.secret")  # exists: read
    token = mint(secret, CALLER, PASS_TN, time.time(), 30.0)
    sink = UdpSink(serve.callee_port)
    try:
        replay = reap(
            Sipp.start(
                _caller("", end="bye", hold_ms=300, header=f"X-Spitwall-Pass: {token}"),
                target=serve.proxy,
                extra=("-s", _digits(FAIL_TN)),
            )
        )
        rc, why = replay.wait(30)
        assert rc == 0, why
        hung_up = _poll(
            lambda: [c for c in serve.calls("fail") if c["outcome"] == "challenge_hangup"],
            10,
            "the replayed call's challenge",
        )
        assert [c["action"] for c in hung_up] == ["challenge"]
        assert sink.invites() == []
    finally:
        sink.close()


@pytest.mark.parametrize(
    ("digits", "end", "hold", "outcome"),
    [
        ("25", "wait", 15000, "challenge_failed"),
        ("", "wait", 15000, "challenge_timeout"),
        ("", "bye", 300, "challenge_hangup"),
    ],
)
def test_no_pass_never_rings_the_callee(
    serve: Serve, digits: str, end: str, hold: int, outcome: str, reap: Callable[[Sipp], Sipp]
) -> None:
    sink = UdpSink(serve.callee_port)
    try:
        before = {c["call_id"] for c in serve.calls("fail")}
        caller = reap(
            Sipp.start(
                _caller(digits, end=end, hold_ms=hold),
                target=serve.proxy,
                extra=("-s", _digits(FAIL_TN)),
            )
        )
        rc, why = caller.wait(40)
        assert rc == 0, why  # the UA said goodbye and hung up

        def recorded() -> list[dict[str, Any]]:
            return [
                c
                for c in serve.calls("fail")
                if c["call_id"] not in before and c["outcome"] is not None
            ]

        (call,) = _poll(recorded, 15, f"the {outcome} outcome")
        assert call["action"] == "challenge" and call["outcome"] == outcome, call
        records = _audit(serve, call_id=call["call_id"])
        assert [(r["action"], r["dest_tn"]) for r in records] == [
            ("challenge", _digits(FAIL_TN))
        ], records
        time.sleep(0.3)
        assert sink.invites() == []
    finally:
        sink.close()


def _wav_seconds(data: bytes) -> float:
    import io

    with wave.open(io.BytesIO(data), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
        return w.getnframes() / 8000.0


def test_voicemail_is_stored_and_played_over_http(serve: Serve) -> None:
    caller = start_peer(
        "--role",
        "caller",
        "--target",
        f"sip:{VM_TN}@{serve.proxy}",
        "--tone",
        "440",
        "--duration",
        "20",
    )
    res = peer_result(caller)
    assert res["connected"] and res["ended_by"] == "remote", res

    def listed() -> list[dict[str, Any]]:
        status, body, _ = serve.api("GET", "/api/v1/me/voicemails", "vm")
        return list(body["voicemails"]) if status == 200 else []

    (vm,) = _poll(listed, 15, "the voicemail in GET /api/v1/me/voicemails")
    assert vm["caller"].lstrip("+") == _digits(CALLER)
    assert vm["duration"] == pytest.approx(3.0, abs=0.3)
    wavs = list((serve.data_dir / "voicemail" / _digits(VM_TN)).glob("*.wav"))
    assert len(wavs) == 1, wavs
    status, _, audio = serve.api("GET", f"/api/v1/me/voicemails/{vm['id']}/audio", "vm")
    assert status == 200
    assert audio == wavs[0].read_bytes()
    assert _wav_seconds(audio) == pytest.approx(3.0, abs=0.3)
    # another subscriber cannot play it
    status, _, _ = serve.api("GET", f"/api/v1/me/voicemails/{vm['id']}/audio", "pass")
    assert status == 404
    (call,) = [c for c in serve.calls("vm") if c["action"] == "voicemail"]
    assert call["outcome"] == "voicemail_left", json.dumps(serve.calls("vm"))
    # the message carries the score and reasons of the call that was sent to voicemail
    assert vm["call_id"] == call["call_id"]
    assert vm["score"] == call["score"] and vm["reasons"] == call["reasons"], (vm, call)
    assert vm["reasons"], vm
    records = _audit(serve, call_id=call["call_id"])
    assert [r["action"] for r in records] == ["voicemail"], records


def test_pjsua2_caller_and_callee_hear_each_other_through_the_proxy(
    serve: Serve, tmp_path: Path
) -> None:
    """Issue 5: after a pass, media flows both ways through the UA's bridge."""
    ready = tmp_path / "callee.port"
    callee = start_tone_callee(serve.callee_port, ready)
    _poll(ready.exists, 10, "the pjsua2 callee")
    caller = start_code_caller(f"sip:{MEDIA_TN}@{serve.proxy}")
    a, b = peer_result(caller), peer_result(callee)
    assert a["connected"] and a["ended_by"] == "local", a
    assert b["connected"] and b["ended_by"] == "remote", b
    assert "x-spitwall-pass" not in b["headers"], b["headers"]  # consumed by the proxy
    assert b["rx_active"] > 0.8 and b["rx_max"] > 20, b  # the caller's 440 Hz arrived
    assert a["rx_active"] > 0.8 and a["rx_max"] > 20, a  # and the callee's 1 kHz
    _poll(
        lambda: [
            c
            for c in serve.calls("media")
            if c["action"] == "challenge" and c["outcome"] == "challenge_passed"
        ],
        10,
        "the challenged call's challenge_passed outcome",
    )


def test_wiring_problems_are_named_at_start() -> None:
    """The UA child reads only the config file: when the proxy or the API listen elsewhere
    (command-line overrides, port 0), ``spitwall serve`` says so at start."""
    from proxy.server import Bound
    from spitwall.compose import challenge_wiring_problems
    from spitwall.config import load_config

    cfg = load_config(
        None,
        {
            "challenge.outbound_proxy": "sip:127.0.0.1:5062;lr",
            "challenge.report_url": "http://127.0.0.1:8081/api/v1/internal/challenge-outcome",
        },
    )
    udp = [Bound("udp", "127.0.0.1", 5062)]
    assert challenge_wiring_problems(cfg, udp, ("127.0.0.1", 8081)) == []
    moved = challenge_wiring_problems(cfg, [Bound("udp", "127.0.0.1", 40000)], ("h", 9090))
    assert len(moved) == 2
    assert "outbound_proxy" in moved[0] and "[40000]" in moved[0]
    assert "report_url" in moved[1] and "9090" in moved[1]
    (off,) = challenge_wiring_problems(cfg, udp, None)
    assert "HTTP API is off" in off
