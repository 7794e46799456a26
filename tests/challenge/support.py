"""Test bed for the challenge UA: the UA as a real subprocess (``spitwall challenge``),
SIPp callers/callees, pjsua2 peers (tests/challenge/peer.py), a real aiohttp server that
records outcome POSTs, and a UDP sink standing in for a callee that must never ring.

Everything binds 127.0.0.1 on ephemeral ports.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SIPP_DIR = ROOT / "tests" / "sipp"
PCAP_DIR = Path("/usr/share/sip-tester")
TOKEN = "test-report-token"


def sipp_binary() -> str:
    path = shutil.which("sipp")
    if path is None:
        pytest.fail("sipp is not installed: install the Debian package 'sip-tester'")
    if not (PCAP_DIR / "dtmf_2833_1.pcap").exists():
        pytest.fail(f"{PCAP_DIR}/dtmf_2833_*.pcap missing: install the Debian package 'sip-tester'")
    return path


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_rtp_port() -> int:
    """An even port with the next one free too (SIPp uses port and port+2/+1 for RTP)."""
    for _ in range(100):
        p = free_port()
        if p % 2 or p > 65000:
            continue
        ok = True
        for q in (p + 1, p + 2, p + 3):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:
                    s.bind(("127.0.0.1", q))
                except OSError:
                    ok = False
        if ok:
            return p
    raise RuntimeError("no free RTP port pair")


# ---- the outcome collector (a real aiohttp server in its own thread) ----


class ReportServer:
    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.auth: list[str] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.port = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("report server did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1/internal/challenge-outcome"

    async def _handle(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        if auth != f"Bearer {TOKEN}":
            return web.json_response({"error": "bad token"}, status=401)
        body = await request.json()
        with self._lock:
            self.posts.append(body)
            self.auth.append(auth)
        return web.json_response({"ok": True})

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        app = web.Application()
        app.router.add_post("/api/v1/internal/challenge-outcome", self._handle)
        runner = web.AppRunner(app)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def for_decision(self, decision: str) -> list[dict[str, Any]]:
        with self._lock:
            return [p for p in self.posts if p["decision_id"].startswith(decision)]

    def wait(self, decision: str, count: int = 1, timeout: float = 15.0) -> list[dict[str, Any]]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = self.for_decision(decision)
            if len(got) >= count:
                return got
            time.sleep(0.05)
        raise AssertionError(
            f"{count} report(s) for {decision} not posted in {timeout}s; "
            f"got {self.for_decision(decision)}"
        )


# ---- a UDP sink: the callee that must never ring ----


class UdpSink:
    def __init__(self, port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.packets: list[bytes] = []
        self._stop = False
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                data, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            self.packets.append(data)

    def invites(self) -> list[bytes]:
        return [p for p in self.packets if p.startswith(b"INVITE ")]

    def close(self) -> None:
        self._stop = True
        self._t.join(1)
        self.sock.close()


# ---- the UA under test ----


@dataclass
class UA:
    proc: subprocess.Popen[str]
    port: int
    data_dir: Path
    lines: list[str] = field(default_factory=list)

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        """The front and its worker processes."""
        out = [self.proc.pid]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid:
                out.append(int(stat.parent.name))
        return out

    def cpu_seconds(self) -> float:
        """User + system CPU of the front and its live workers."""
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self) -> str:
        return stop_process(self.proc, self.lines, 10)


def stop_process(proc: subprocess.Popen[str], lines: list[str], grace: float) -> str:
    """Terminate ``proc`` (kill it after ``grace`` seconds); everything it printed."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return "".join(lines)


def write_config(path: Path, data_dir: Path, challenge: dict[str, Any]) -> None:
    def val(v: Any) -> str:
        return json.dumps(v) if not isinstance(v, bool) else str(v).lower()

    lines = [f"data_dir = {json.dumps(str(data_dir))}", "[log]", 'level = "info"', "[challenge]"]
    lines += [f"{k} = {val(v)}" for k, v in challenge.items()]
    path.write_text("\n".join(lines) + "\n")


def start_ua(tmp: Path, challenge: dict[str, Any], timeout: float = 20.0) -> UA:
    data_dir = tmp / "data"
    cfg = tmp / "ua.toml"
    write_config(cfg, data_dir, challenge)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "spitwall",
            "challenge",
            "--config",
            str(cfg),
            "--listen",
            "127.0.0.1:0",
        ],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    ua = UA(proc, 0, data_dir)
    ready = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            ua.lines.append(line)
            if "challenge UA listening on udp:" in line:
                ua.port = int(line.strip().rpartition(":")[2])
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(timeout):
        out = ua.stop()
        raise AssertionError(f"UA did not start:\n{out[-3000:]}")
    return ua


# ---- SIPp ----

DTMF_RTP = """  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>
  <pause milliseconds="{gap}"/>"""
DTMF_INFO = """  <send retrans="500">
    <![CDATA[
      INFO [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: "Caller" <sip:+15551230000@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: {cseq} INFO
      Contact: <sip:caller@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Type: application/dtmf-relay
      Content-Length: [len]

      Signal={digit}
      Duration=160
    ]]>
  </send>
  <recv response="200"/>
  <pause milliseconds="{gap}"/>"""
END_BYE = """  <pause milliseconds="{hold}"/>
  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: "Caller" <sip:+15551230000@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 90 BYE
      Contact: <sip:caller@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true"/>"""
END_WAIT = """  <recv request="BYE" timeout="{hold}"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>"""


def render_uac(
    digits: str,
    *,
    method: str = "rfc2833",
    end: str = "bye",
    hold_ms: int = 3000,
    pause_ms: int = 800,
    gap_ms: int = 300,
    callee: str = "%2B15557654321",
    decision: str = "d",
    mode: str = "challenge",
    vm: int = 0,
) -> Path:
    blocks = []
    for i, d in enumerate(digits):
        if method == "rfc2833":
            name = {"*": "star", "#": "pound"}.get(d, d)
            blocks.append(DTMF_RTP.format(pcap=PCAP_DIR / f"dtmf_2833_{name}.pcap", gap=gap_ms))
        else:
            blocks.append(DTMF_INFO.format(digit=d, cseq=10 + i, gap=gap_ms))
    tail = (END_BYE if end == "bye" else END_WAIT).format(hold=hold_ms)
    text = (SIPP_DIR / "challenge_uac_dtmf.xml").read_text()
    for k, v in {
        "@DTMF@": "\n".join(blocks),
        "@END@": tail,
        "@CALLEE@": callee,
        "@DECISION@": decision,
        "@MODE@": mode,
        "@VM@": str(vm),
        "@PAUSE@": str(pause_ms),
    }.items():
        text = text.replace(k, v)
    fd, path = tempfile.mkstemp(prefix="challenge-uac-", suffix=".xml")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return Path(path)


@dataclass
class Sipp:
    proc: subprocess.Popen[bytes]
    workdir: Path

    @classmethod
    def start(
        cls,
        scenario: Path,
        *,
        target: str | None = None,
        calls: int = 1,
        rate: float | None = None,
        extra: tuple[str, ...] = (),
        timeout: float = 40.0,
    ) -> Sipp:
        workdir = Path(tempfile.mkdtemp(prefix="sipp-ch-"))
        args = [
            sipp_binary(),
            "-sf",
            str(scenario),
            "-i",
            "127.0.0.1",
            "-p",
            str(free_port()),
            "-mp",
            str(free_rtp_port()),
            "-m",
            str(calls),
            "-nostdin",
            "-timeout",
            f"{int(timeout)}s",
            "-timeout_error",
            "-trace_err",
            "-error_file",
            str(workdir / "errors.log"),
            "-trace_logs",
            "-log_file",
            str(workdir / "log.txt"),
            *extra,
        ]
        if rate is not None:
            args += ["-r", str(rate), "-l", str(calls)]
        if target is not None:
            args.append(target)
        proc = subprocess.Popen(
            args,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        return cls(proc, workdir)

    def wait(self, timeout: float = 60.0) -> tuple[int, str]:
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        errors = ""
        if (self.workdir / "errors.log").exists():
            errors = (self.workdir / "errors.log").read_text(errors="replace")
        return self.proc.returncode, err.decode(errors="replace")[-1500:] + errors[-3000:]

    def log(self) -> str:
        p = self.workdir / "log.txt"
        return p.read_text(errors="replace") if p.exists() else ""

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


# ---- pjsua2 peers ----


def start_peer(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(HERE / "peer.py"), *args],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def start_tone_callee(port: int, ready: Path) -> subprocess.Popen[str]:
    """A pjsua2 callee on ``port`` that answers with a 1 kHz tone and measures what it hears;
    it writes ``ready`` once listening."""
    return start_peer(
        "--role", "callee", "--port", str(port), "--tone", "1000",
        "--measure-from", "0.5", "--ready-file", str(ready), "--duration", "20",
    )  # fmt: skip


def start_code_caller(target: str) -> subprocess.Popen[str]:
    """A pjsua2 caller that enters the code "47" (RFC 4733) at 0.5 s, then plays 440 Hz,
    measures what it hears from 3.5 s and hangs up at 6 s."""
    return start_peer(
        "--role", "caller", "--target", target, "--dtmf", "47", "--dtmf-at", "0.5",
        "--tone", "440", "--measure-from", "3.5", "--hangup-after", "6", "--duration", "20",
    )  # fmt: skip


def peer_result(proc: subprocess.Popen[str], timeout: float = 40.0) -> dict[str, Any]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line))
    raise AssertionError(
        f"peer printed no result (rc {proc.returncode}):\n{out[-2000:]}\n{err[-3000:]}"
    )


def wait_until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
