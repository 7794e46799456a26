"""``python -m bench.traffic``: run the detection benchmark and print its tables.

    python -m bench.traffic                         # every scenario, default + tuned config
    python -m bench.traffic -s published -c default --days 1 --subscribers 500
    python -m bench.traffic --over-sip -s published --duration 120   # via `spitwall serve`

In-process runs (virtual time) produce the numbers; ``--over-sip`` replays a scenario's
first minutes through a real ``spitwall serve`` with Python UAC/UAS on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # `python bench/traffic/__main__.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.traffic.inprocess import evaluate
from bench.traffic.metrics import Metrics, compute
from bench.traffic.model import generate
from bench.traffic.report import reasons, table
from bench.traffic.scenarios import CONFIGS, SCENARIOS, reputation_config, scenario, trunks_for

DAY = 86400.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.traffic", description=__doc__)
    p.add_argument("-s", "--scenario", action="append", choices=sorted(SCENARIOS))
    p.add_argument("-c", "--config", action="append", choices=sorted(CONFIGS))
    p.add_argument("--days", type=float)
    p.add_argument("--subscribers", type=int)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", metavar="FILE", help="write all metrics as JSON")
    p.add_argument("--over-sip", action="store_true", help="run through `spitwall serve`")
    p.add_argument("--duration", type=float, default=120.0, help="seconds of SIP traffic")
    p.add_argument("--speed", type=float, default=1.0, help="virtual seconds per real second")
    args = p.parse_args(argv)
    start = time.time() // DAY * DAY
    changes: dict[str, object] = {"seed": args.seed, "start": start}
    if args.days:
        changes["days"] = args.days
    if args.subscribers:
        changes["subscribers"] = args.subscribers
    if args.over_sip:
        return over_sip(args, changes)
    rows: list[tuple[str, str, Metrics]] = []
    for name in args.scenario or list(SCENARIOS):
        sc = scenario(name, **changes)
        traffic = generate(sc)
        for cfg in args.config or list(CONFIGS):
            t = time.time()
            results = asyncio.run(
                evaluate(traffic, reputation_config(cfg), trunks=trunks_for(cfg, traffic))
            )
            m = compute(results)
            rows.append((name, cfg, m))
            print(
                f"# {name} / {cfg}: {len(results)} calls in {time.time() - t:.1f} s",
                file=sys.stderr,
            )
    print(table(rows))
    print(reasons(rows))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                [{"scenario": s, "config": c, **m.to_json()} for s, c, m in rows],
                indent=1,
                default=str,
            )
        )
    return 0


def over_sip(args: argparse.Namespace, changes: dict[str, object]) -> int:
    """The scenario's window through `spitwall serve`, then the same calls in process:
    the decisions should agree (same config, same calls, same order)."""
    import dataclasses

    from bench.traffic.oversip import SipRun, capped

    name = (args.scenario or ["published"])[0]
    traffic = generate(scenario(name, **changes))
    run = SipRun(traffic, args.duration, args.speed)
    m, info = asyncio.run(run.run())
    calls = tuple(capped(c) for c in run.specs)  # the window the SIP run played
    # spitwall serve gets no outbound calls either (nothing feeds them over SIP)
    alone = asyncio.run(evaluate(dataclasses.replace(traffic, calls=calls, outbound=())))
    mine = {r.id: r.decision for r in alone}
    same = sum(mine.get(r.id) == r.decision for r in run.results)
    info["agreement_with_in_process"] = f"{same} of {len(run.results)} decisions"
    info["differing"] = [
        (r.id, r.kind, r.decision, mine.get(r.id))
        for r in run.results
        if mine.get(r.id) != r.decision
    ]
    print(
        table(
            [
                (name, "default (over SIP)", m),
                (name, "default (same calls, in process)", compute(alone)),
            ]
        )
    )
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
