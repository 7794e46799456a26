"""The slow evaluator: the model's calls through a real ``spitwall serve`` over SIP.

Theory of operation. A test STI PKI is served over HTTPS on 127.0.0.1 (one signing
certificate per originating carrier); the subscribers are created as users in a fresh
data directory; ``spitwall serve`` is started as a subprocess on ephemeral ports with the
default config plus three attestation keys that trust the test PKI, its default next hop
pointing at our UAS. A window of the scenario (the busiest ``duration`` seconds around its
first campaign, optionally sped up) is then played in real time: the UAC signs each call at
send time and sends it to the proxy; the UAS answers as the model says. Nothing is fed to
spitwall by hand — it sees finals, CANCELs and BYEs on the wire, like in production.

Afterwards spitwall's own call records (``calls`` table of its reputation store) give the
score and action of every call; the policy decision is the band of the score (the proxy
forwards challenge/voicemail calls when no challenge UA runs, so its action alone would
hide them). Latency is measured on the wire: INVITE sent → INVITE at the callee (forwarded)
or → final response at the caller (rejected).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from reputation.config import PolicyConfig, ReputationConfig
from reputation.policy import band_of, thresholds
from reputation.store import Store

from .agents import Seen, Uac, Uas
from .carriers import CarrierPki, start_pki
from .metrics import CallResult, Metrics, compute
from .model import CallSpec, Traffic

MAX_TALK = 20.0
"""Seconds of talk at most over SIP (a two-minute run cannot wait for 10-minute calls)."""


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str | Path):
        return json.dumps(str(v))
    if isinstance(v, list | tuple):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def write_config(path: Path, tables: dict[str, dict[str, Any]], top: dict[str, Any]) -> Path:
    """A small TOML file: top-level keys, then ``[table]`` sections (dotted names)."""
    lines = [f"{k} = {toml_value(v)}" for k, v in top.items()]
    for name, keys in tables.items():
        lines.append(f"\n[{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in keys.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Server:
    """A running ``spitwall serve`` subprocess."""

    proc: asyncio.subprocess.Process
    udp: tuple[str, int]
    http: tuple[str, int] | None
    data_dir: Path
    log: Path
    drain: asyncio.Future[None] | None = None

    async def stop(self) -> int:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        return self.proc.returncode or 0


async def start_server(
    data_dir: Path, config: Path, next_hop: tuple[str, int], log: Path, timeout: float = 30.0
) -> Server:
    """``spitwall serve`` on ephemeral ports; returns once it printed ``ready``."""
    cmd = [
        sys.executable,
        "-m",
        "spitwall",
        "serve",
        "--config",
        str(config),
        "--listen",
        "udp:127.0.0.1:0",
        "--next-hop",
        f"sip:{next_hop[0]}:{next_hop[1]}",
        "--http",
        "127.0.0.1:0",
        "--data-dir",
        str(data_dir),
    ]
    errf = log.open("ab")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=errf, env=env, preexec_fn=_die_with_parent
    )
    errf.close()
    udp: tuple[str, int] | None = None
    http: tuple[str, int] | None = None
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), deadline - time.monotonic())
        except TimeoutError:
            proc.kill()
            raise RuntimeError(
                f"spitwall serve did not get ready in {timeout:g} s; see {log}"
            ) from None
        if not line:
            raise RuntimeError(f"spitwall serve exited ({await proc.wait()}); see {log}")
        text = line.decode().strip()
        if text.startswith("listening udp "):
            host, _, port = text.split()[2].rpartition(":")
            udp = (host, int(port))
        elif text.startswith("http "):
            host, _, port = text.split()[1].rpartition(":")
            http = (host, int(port))
        elif text.startswith("ready"):
            break
    assert udp is not None
    server = Server(proc, udp, http, data_dir, log)
    server.drain = asyncio.ensure_future(_drain(proc))
    return server


def _die_with_parent() -> None:
    """Linux: the server gets SIGTERM when the benchmark or demo process dies, however."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


async def _drain(proc: asyncio.subprocess.Process) -> None:
    assert proc.stdout is not None
    while await proc.stdout.readline():
        pass


def window(
    traffic: Traffic, seconds: float, speed: float = 1.0, focus: str = "first"
) -> list[CallSpec]:
    """The calls of the ``seconds * speed`` virtual seconds starting shortly (up to a minute)
    before a campaign: the first one, or (``focus="busiest"``) the one that places the most
    calls in that span — so the window holds people, alerts and a campaign's start."""
    span = seconds * speed
    robo = [c for c in traffic.calls if c.kind == "robocall"]
    if not robo:
        start = traffic.calls[0].time
    elif focus == "busiest":
        firsts = {c.campaign: c.time for c in reversed(robo)}
        counts = {
            k: sum(1 for c in robo if c.campaign == k and c.time < t + span)
            for k, t in firsts.items()
        }
        start = firsts[max(counts, key=lambda k: counts[k])]
    else:
        start = min(c.time for c in robo)
    t0 = start - min(60.0, span / 4)
    t1 = t0 + span
    return [c for c in traffic.calls if t0 <= c.time < t1]


def read_records(db: Path) -> dict[str, tuple[float, str, list[str]]]:
    """Call-ID → (score, action, positive reasons) from spitwall's call records."""
    out: dict[str, tuple[float, str, list[str]]] = {}
    if not db.exists():
        return out
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        for cid, score, action, reasons in conn.execute(
            "SELECT call_id, score, action, reasons FROM calls"
        ):
            rs = [r[0] for r in json.loads(reasons or "[]") if r[1] > 0]
            out[cid] = (float(score or 0.0), str(action), rs)
    finally:
        conn.close()
    return out


def decision_for(score: float, action: str, policy: PolicyConfig) -> str:
    if action == "reject":
        return "reject"
    band = band_of(score, thresholds(policy))
    return str(getattr(policy, f"action_{band}"))


@dataclass
class SipRun:
    traffic: Traffic
    duration: float = 120.0
    speed: float = 1.0
    workdir: Path | None = None
    reputation: dict[str, Any] = field(default_factory=dict)
    """Extra ``[reputation.*]`` keys for the server's config (tables by dotted name)."""
    progress: Callable[[SipRun], Awaitable[None] | None] | None = None
    every: float = 10.0
    focus: str = "first"
    """Which campaign the window starts at: ``first`` or ``busiest``."""
    admin: tuple[str, str] | None = None
    """(name, password) of an admin account created before the start (the demo's login)."""
    on_ready: Callable[[SipRun], None] | None = None
    before_stop: Callable[[SipRun], Awaitable[None]] | None = None
    """Awaited after the traffic, before the server stops (the demo lingers here)."""
    seen: dict[str, Seen] = field(default_factory=dict)
    server: Server | None = None
    specs: list[CallSpec] = field(default_factory=list)
    results: list[CallResult] = field(default_factory=list)

    async def run(self) -> tuple[Metrics, dict[str, Any]]:
        with contextlib.ExitStack() as stack:
            work = self.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
            return await self._run(work)

    async def _run(self, work: Path) -> tuple[Metrics, dict[str, Any]]:
        tr = self.traffic
        self.specs = window(tr, self.duration, self.speed, self.focus)
        t_first = self.specs[0].time if self.specs else 0.0
        pki = start_pki(tr.carriers, work / "pki", now=time.time() - 3600)
        data = work / "data"
        await _make_users(data, tr, self.admin)
        by_id = {s.call_id: s for s in self.specs}
        uas = Uas(by_id.get, self.seen, self.speed)
        await uas.start()
        cfg = write_config(
            work / "spitwall.toml",
            {
                "log": {"level": "warning"},
                "attestation": {
                    "trust_anchors": [pki.trust_anchors],
                    "x5u_allow_hosts": ["127.0.0.1"],
                    "x5u_ca_file": pki.tls_cert,
                    "crl_fetch": False,
                },
                **self.reputation,
            },
            {},
        )
        self.server = await start_server(data, cfg, uas.addr, work / "spitwall.log")
        uac = Uac(self.server.udp, self.speed)
        await uac.start({c.source_ip for c in self.specs})
        if self.on_ready is not None:
            self.on_ready(self)
        started = time.time()
        ticker = asyncio.ensure_future(self._tick())
        try:
            for spec in self.specs:
                spec = capped(spec)
                delay = started + (spec.time - t_first) / self.speed - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                s = self.seen.setdefault(spec.call_id, Seen())
                uac.invite(spec, _identity(pki, spec), s)
            await self._settle()
            if self.progress is not None:
                r = self.progress(self)
                if r is not None:
                    await r
            if self.before_stop is not None:
                await self.before_stop(self)
        finally:
            ticker.cancel()
            code = await self.server.stop()
            uac.close()
            uas.close()
            pki.close()
        return self._metrics(data, code)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            if self.progress is not None:
                r = self.progress(self)
                if r is not None:
                    await r

    async def _settle(self, limit: float = 40.0) -> None:
        """Wait until every call ended (or ``limit`` seconds)."""
        end = time.time() + limit
        while time.time() < end:
            pending = [
                s
                for s in self.seen.values()
                if s.final is None or (s.answered and not s.ended and (s.final or 0) < 300)
            ]
            if not pending:
                return
            await asyncio.sleep(0.25)

    def records(self) -> dict[str, tuple[float, str, list[str]]]:
        assert self.server is not None
        return read_records(self.server.data_dir / "reputation.sqlite3")

    def _metrics(self, data: Path, code: int) -> tuple[Metrics, dict[str, Any]]:
        recs = read_records(data / "reputation.sqlite3")
        policy = ReputationConfig().policy
        results: list[CallResult] = []
        reached = Counter[str]()
        for spec in self.specs:
            s = self.seen.get(spec.call_id)
            rec = recs.get(spec.call_id)
            if s is None or rec is None:
                reached["not screened"] += 1
                continue
            score, action, reasons = rec
            if s.reached_callee is not None:
                lat = (s.reached_callee - s.sent) * 1000.0
                reached["reached callee"] += 1
            elif s.final_at is not None:
                lat = (s.final_at - s.sent) * 1000.0
                reached[f"final {s.final} at caller"] += 1
            else:
                lat = 0.0
                reached["no answer at all"] += 1
            results.append(
                CallResult(
                    spec.id,
                    spec.kind,
                    decision_for(score, action, policy),
                    score,
                    lat,
                    spec.campaign,
                    spec.seq,
                    spec.cli_policy,
                    spec.level,
                    action,
                    tuple(reasons[:3]),
                )
            )
        info = {
            "calls_sent": len(self.specs),
            "screened": len(results),
            "server_exit": code,
            "wire": dict(reached),
            "actions": dict(Counter(r.action for r in results)),
            "log": str(self.server.log if self.server else ""),
        }
        self.results = results
        return compute(results), info


def capped(spec: CallSpec) -> CallSpec:
    b = spec.behaviour
    if b.talk <= MAX_TALK:
        return spec
    return replace(spec, behaviour=replace(b, talk=MAX_TALK))


def _identity(pki: CarrierPki, spec: CallSpec) -> str | None:
    return pki.identity(replace(spec, time=time.time()))  # signed at send time


async def _make_users(data: Path, traffic: Traffic, admin: tuple[str, str] | None) -> None:
    """One user per subscriber in the store ``spitwall serve`` will open."""
    data.mkdir(parents=True, exist_ok=True)
    store = Store.open(data / "reputation.sqlite3")
    try:
        if admin is not None:
            await store.add_user(admin[0], "admin", password=admin[1])
        for i, tn in enumerate(traffic.subscribers):
            await store.add_user(f"sub{i}", tns=[f"+{tn}"])
    finally:
        await store.aclose()


async def run_over_sip(
    traffic: Traffic, duration: float = 120.0, *, speed: float = 1.0
) -> tuple[Metrics, dict[str, Any]]:
    return await SipRun(traffic, duration, speed).run()
