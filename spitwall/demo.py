"""``spitwall demo``: a self-contained tour of spitwall screening simulated traffic.

What happens: a fresh data directory; a test STI PKI whose certificates are served over
HTTPS on 127.0.0.1 (one per simulated carrier); the simulated subscribers as users, plus an
admin account for the web page; ``spitwall serve`` on its default config (ephemeral ports;
only the test PKI is trusted in addition); then a window of the traffic model
(``bench/traffic``: people calling their friends, pharmacy and school alerts, robocall
campaigns) is played over SIP by a Python UAC, answered by a Python UAS that behaves like
the subscribers. Every ``--every`` seconds a line says what spitwall did so far (from its
own call records); at the end a table shows it per kind of caller, and where to look next.

The traffic model lives in the source tree (``bench/traffic``), so the demo runs from a
checkout (``make demo``); an installed wheel without ``bench/`` says so and exits 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parents[1]
ACTION_NAMES = (
    ("forward", "forwarded"),
    ("forward_tagged", "tagged"),
    ("challenge", "challenged"),
    ("voicemail", "to voicemail"),
    ("reject", "rejected"),
)
KIND_NAMES = {"human": "people", "wanted": "wanted alerts", "robocall": "robocalls"}


class DemoUnavailable(Exception):
    """The traffic model (bench/traffic) is not importable: not a source checkout."""


def load_bench() -> Any:
    try:
        import bench.traffic.oversip as oversip
    except ImportError:
        if (ROOT / "bench" / "traffic" / "model.py").exists():
            sys.path.insert(0, str(ROOT))
            import bench.traffic.oversip as oversip
        else:
            raise DemoUnavailable(
                "the demo needs the traffic model in bench/traffic: run it from a spitwall"
                " source checkout (make demo)"
            ) from None
    return oversip


@dataclass
class DemoOptions:
    duration: float = 120.0
    subscribers: int = 2000
    speed: float = 1.0
    seed: int = 1
    every: float = 10.0
    data_dir: Path | None = None
    linger: bool = False
    out: TextIO = field(default_factory=lambda: sys.stdout)


@dataclass
class Demo:
    opts: DemoOptions
    started: float = 0.0
    admin: tuple[str, str] = ("demo", "")
    lines: int = 0

    def say(self, text: str = "") -> None:
        self.opts.out.write(text + "\n")
        self.opts.out.flush()

    async def run(self) -> int:
        oversip = load_bench()
        from bench.traffic.model import Scenario, generate

        o = self.opts
        day = 86400.0
        traffic = generate(
            Scenario(
                seed=o.seed, subscribers=o.subscribers, days=1.0, start=time.time() // day * day
            )
        )
        self.admin = ("demo", "demo-" + secrets.token_urlsafe(9))
        work = o.data_dir or Path("var") / "demo" / time.strftime("%Y%m%d-%H%M%S")
        work = work.resolve()
        work.mkdir(parents=True, exist_ok=True)
        run = oversip.SipRun(
            traffic,
            o.duration,
            o.speed,
            workdir=work,
            progress=self.progress,
            every=o.every,
            focus="busiest",
            admin=self.admin,
            on_ready=self.ready,
            before_stop=self.finish,
        )
        self.say(
            f"spitwall demo: {o.subscribers} subscribers, {o.duration:g} s of simulated"
            f" traffic at {o.speed:g}x (seed {o.seed}); starting spitwall in {work} …"
        )
        await run.run()
        return 0

    # -- callbacks from the SIP run ----------------------------------------------------------

    def ready(self, run: Any) -> None:
        self.started = time.time()
        srv = run.server
        http = f"http://{srv.http[0]}:{srv.http[1]}/" if srv.http else "(HTTP off)"
        self.say(f"spitwall is listening on udp {srv.udp[0]}:{srv.udp[1]}; web page {http}")
        self.say(f"{len(run.specs)} calls to play; a line every {self.opts.every:g} s:\n")
        self.say(
            f"{'time':>5}  {'calls':>5}  "
            + "  ".join(f"{n:>12}" for _, n in ACTION_NAMES)
            + "  top reasons"
        )

    def progress(self, run: Any) -> None:
        recs = run.records()
        actions = Counter(a for _, a, _ in recs.values())
        reasons = Counter(r for _, _, rs in recs.values() for r in rs[:2])
        t = time.time() - self.started
        top = ", ".join(f"{k} {v}" for k, v in reasons.most_common(3)) or "-"
        cols = "  ".join(f"{actions.get(a, 0):>12}" for a, _ in ACTION_NAMES)
        self.say(f"{int(t) // 60:>2}:{int(t) % 60:02d}  {len(recs):>5}  {cols}  {top}")

    async def finish(self, run: Any) -> None:
        from bench.traffic.oversip import decision_for
        from reputation.config import ReputationConfig

        policy = ReputationConfig().policy
        recs = run.records()
        table: dict[str, Counter[str]] = {}
        would = Counter[str]()
        for spec in run.specs:
            rec = recs.get(spec.call_id)
            if rec is None:
                continue
            score, action, _ = rec
            table.setdefault(spec.kind, Counter())[action] += 1
            decided = decision_for(score, action, policy)
            if decided != action and decided in ("challenge", "voicemail"):
                would[decided] += 1
        self.say("\nwhat spitwall did, by who was really calling:")
        self.say(f"  {'':14}" + "".join(f"{n:>14}" for _, n in ACTION_NAMES))
        for kind in ("human", "wanted", "robocall"):
            row = table.get(kind, Counter())
            self.say(
                f"  {KIND_NAMES[kind]:14}"
                + "".join(f"{row.get(a, 0):>14}" for a, _ in ACTION_NAMES)
            )
        if would:
            self.say(
                "  (the policy chose "
                + ", ".join(f"{k} for {v}" for k, v in would.items())
                + " call(s); with no challenge UA running (challenge.enabled = false) those"
                " were forwarded)"
            )
        srv = run.server
        data = srv.data_dir
        http = f"http://{srv.http[0]}:{srv.http[1]}/" if srv.http else None
        self.say("\nwhere to look next:")
        if http:
            note = "" if self.opts.linger else "; stops with the demo, --linger keeps it"
            self.say(f"  web page   {http}  (log in as {self.admin[0]} / {self.admin[1]}{note})")
        self.say(f"  the log    {srv.log}")
        self.say(f"  call log   sqlite3 {data / 'reputation.sqlite3'} 'select * from calls'")
        self.say(f"  audit log  spitwall audit verify --data-dir {data}")
        self.say("  a capture  spitwall replay CAPTURE.pcap   (what spitwall would do with yours)")
        if self.opts.linger:
            self.say("\nspitwall keeps running; press Ctrl-C to stop it.")
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()


def run_demo(opts: DemoOptions) -> int:
    try:
        return asyncio.run(Demo(opts).run())
    except DemoUnavailable as exc:
        print(f"spitwall demo: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
