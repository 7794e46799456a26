"""Test bed: the real proxy (as ``spitwall serve`` or in-process) between SIPp peers.

Everything binds 127.0.0.1 on ephemeral ports. SIPp runs as an asyncio subprocess so an
in-process proxy keeps serving on the same event loop while SIPp talks to it.

    uas = await Sipp.start("uas_call.xml", port=uas_port, calls=1)
    async with in_process_proxy({"proxy.default_next_hop": f"sip:127.0.0.1:{uas_port}"}) as p:
        res = await run_sipp("uac_call.xml", target=p.udp, calls=1)
        assert res.ok, res.why
    assert (await uas.wait()).ok
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from proxy.screen import OutcomeObserver, Screener
from proxy.server import ProxyServer
from spitwall.config import load_config

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def sipp_binary() -> str:
    path = shutil.which("sipp")
    if path is None:
        pytest.fail(
            "sipp is not installed: install the Debian package 'sip-tester' (make test does)"
        )
    return path


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port that is free for both UDP and TCP right now (good enough on loopback)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        other = socket.SOCK_STREAM if kind == socket.SOCK_DGRAM else socket.SOCK_DGRAM
        with socket.socket(socket.AF_INET, other) as s2:
            try:
                s2.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port")


def scenario(name: str, **subst: Any) -> Path:
    """Path of tests/sipp/NAME, rendered into a temp file when ``@KEY@`` placeholders are given."""
    src = HERE / name
    if not subst:
        return src
    text = src.read_text()
    for k, v in subst.items():
        text = text.replace(f"@{k.upper()}@", str(v))
    fd, path = tempfile.mkstemp(prefix=src.stem + "-", suffix=".xml")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return Path(path)


@dataclass
class SippResult:
    rc: int
    stderr: str
    errors: str = ""

    @property
    def ok(self) -> bool:
        return self.rc == 0

    @property
    def why(self) -> str:
        return f"sipp exit {self.rc}: {self.stderr[-1500:]}\n{self.errors[-3000:]}"


@dataclass
class Sipp:
    proc: asyncio.subprocess.Process
    workdir: Path
    args: list[str] = field(default_factory=list)

    @classmethod
    async def start(
        cls,
        scen: str | Path,
        *,
        port: int,
        target: str | None = None,
        calls: int = 1,
        rate: float | None = None,
        service: str = "12155550123",
        transport: str = "u1",
        extra: tuple[str, ...] = (),
        timeout: float = 30.0,
        limit: int | None = None,
    ) -> Sipp:
        path = scen if isinstance(scen, Path) else scenario(scen)
        workdir = Path(tempfile.mkdtemp(prefix="sipp-"))
        args = [
            sipp_binary(),
            "-sf",
            str(path),
            "-i",
            "127.0.0.1",
            "-p",
            str(port),
            "-m",
            str(calls),
            "-s",
            service,
            "-t",
            transport,
            "-nostdin",
            "-timeout",
            f"{int(timeout)}s",
            "-timeout_error",
            "-trace_err",
            "-error_file",
            str(workdir / "errors.log"),
            "-d",
            "100",
        ]
        if rate is not None:
            args += ["-r", str(rate), "-rp", "1000"]
        if limit is not None:
            args += ["-l", str(limit)]
        args += list(extra)
        if target is not None:
            args.append(target)
        proc = await asyncio.create_subprocess_exec(
            *args,
            cwd=workdir,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(proc, workdir, args)

    async def wait(self, timeout: float = 60.0) -> SippResult:
        try:
            _, err = await asyncio.wait_for(self.proc.communicate(), timeout)
        except TimeoutError:
            self.kill()
            _, err = await self.proc.communicate()
        errors = ""
        with contextlib.suppress(OSError):
            errors = (self.workdir / "errors.log").read_text(errors="replace")
        rc = self.proc.returncode if self.proc.returncode is not None else -9
        return SippResult(rc, err.decode(errors="replace"), errors)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()


async def run_sipp(
    scen: str | Path, *, target: str, port: int | None = None, wait: float = 60.0, **kw: Any
) -> SippResult:
    s = await Sipp.start(scen, port=port or free_port(), target=target, **kw)
    return await s.wait(wait)


@dataclass
class RunningProxy:
    server: ProxyServer

    def addr(self, transport: str = "udp") -> str:
        for b in self.server.bound:
            if b.transport == transport:
                return f"127.0.0.1:{b.port}"
        raise KeyError(transport)

    @property
    def udp(self) -> str:
        return self.addr("udp")


@contextlib.asynccontextmanager
async def in_process_proxy(
    overrides: dict[str, Any] | None = None,
    *,
    screener: Screener | None = None,
    observer: OutcomeObserver | None = None,
) -> AsyncIterator[RunningProxy]:
    """A ProxyServer on ephemeral ports in this event loop (fast; stub screeners welcome)."""
    o: dict[str, Any] = {
        "proxy.listen": ["udp:127.0.0.1:0", "tcp:127.0.0.1:0"],
        "proxy.timers.t1": 0.1,
        "proxy.timers.t2": 0.4,
        "proxy.timers.t4": 0.5,
    }
    o.update(overrides or {})
    cfg = load_config(None, o)
    server = ProxyServer(cfg.proxy, screener=screener, observer=observer)
    await server.start()
    try:
        yield RunningProxy(server)
    finally:
        await server.stop(0.2)


@dataclass
class ServeProcess:
    """``spitwall serve`` as a subprocess; ``ports`` maps transport → bound port."""

    proc: asyncio.subprocess.Process
    ports: dict[str, int]
    http: tuple[str, int] | None
    lines: list[str]

    @classmethod
    async def start(cls, *args: str, timeout: float = 20.0) -> ServeProcess:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "spitwall",
            "serve",
            *args,
            cwd=ROOT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        ports: dict[str, int] = {}
        http = None
        lines: list[str] = []
        assert proc.stdout is not None

        async def read() -> None:
            nonlocal http
            while True:
                raw = await proc.stdout.readline()  # type: ignore[union-attr]
                if not raw:
                    raise RuntimeError("spitwall serve exited:\n" + "".join(lines))
                line = raw.decode(errors="replace")
                lines.append(line)
                parts = line.split()
                if parts[:1] == ["listening"]:
                    ports.setdefault(parts[1], int(parts[2].rsplit(":", 1)[1]))
                elif parts[:1] == ["http"]:
                    h, _, p = parts[1].rpartition(":")
                    http = (h, int(p))
                elif parts[:1] == ["ready"]:
                    return

        try:
            await asyncio.wait_for(read(), timeout)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        sp = cls(proc, ports, http, lines)
        asyncio.get_running_loop().create_task(sp._drain())
        return sp

    async def _drain(self) -> None:
        assert self.proc.stdout is not None
        while True:
            raw = await self.proc.stdout.readline()
            if not raw:
                return
            self.lines.append(raw.decode(errors="replace"))

    def addr(self, transport: str = "udp") -> str:
        return f"127.0.0.1:{self.ports[transport]}"

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        return self.proc.returncode if self.proc.returncode is not None else -9

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0
