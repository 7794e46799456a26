"""``python -m bench.traffic.diagnose``: why were calls of one class stopped?

Runs one scenario and config in process and digs into the per-call records: for the calls
of a class that were stopped (diverted or blocked) it counts which signals fired, which
were infrastructure evidence, the caller's relation to the callee (contact or stranger),
the originating network and attestation level, and which single signal, removed, would
have let the call through (the *deciding* evidence). This is how the detection rules in
docs/detection.md were found: read the records first, then change a rule with a reason.

    python -m bench.traffic.diagnose -s published -c trunks --kind human
    python -m bench.traffic.diagnose -s published -c default --kind wanted --decision reject
"""

from __future__ import annotations

import argparse
import asyncio
import math
import pickle
import sys
import time
from collections import Counter
from pathlib import Path

from bench.traffic.inprocess import evaluate
from bench.traffic.metrics import STOP, CallResult, compute
from bench.traffic.model import CallSpec, generate
from bench.traffic.report import table
from bench.traffic.scenarios import CONFIGS, SCENARIOS, reputation_config, scenario, trunks_for
from reputation.config import PolicyConfig

DAY = 86400.0


def _logit(score: float) -> float:
    p = min(max(score / 100.0, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def deciding(r: CallResult, limit: float) -> list[str]:
    """Signals each of which, removed alone, brings the score under ``limit`` (log-odds)."""
    total = _logit(r.score)
    return [s for s, w, _, _ in r.explain if w > 0 and total - w < limit]


def summary(
    results: list[CallResult],
    specs: dict[int, CallSpec],
    kind: str,
    decisions: frozenset[str],
    policy: PolicyConfig | None = None,
) -> str:
    sel = [r for r in results if r.kind == kind and r.decision in decisions]
    every = [r for r in results if r.kind == kind]
    out = [f"{len(sel)} of {len(every)} {kind} calls {'/'.join(sorted(decisions))}"]
    limit = _logit((policy or PolicyConfig()).challenge_at)
    fired: Counter[str] = Counter()
    infra: Counter[str] = Counter()
    dec: Counter[str] = Counter()
    combos: Counter[str] = Counter()
    who: Counter[str] = Counter()
    for r in sel:
        spec = specs[r.id]
        who[f"{'contact' if spec.known else 'stranger'} {spec.carrier} {spec.level}"] += 1
        pos = [(s, w, i) for s, w, i, _ in r.explain if w > 0]
        for s, _, i in pos:
            fired[s] += 1
            infra[s] += i
        dec.update(deciding(r, limit))
        combos[" + ".join(sorted(s for s, w, _ in pos if w >= 0.5))] += 1
    out.append("signals fired (infra share):")
    out += [f"  {n:5d} {s} ({infra[s] / n:.0%})" for s, n in fired.most_common(20)]
    out.append("deciding (removed alone, the call goes through):")
    out += [f"  {n:5d} {s}" for s, n in dec.most_common(12)]
    out.append("combinations of signals >= 0.5:")
    out += [f"  {n:5d} {c}" for c, n in combos.most_common(15)]
    out.append("caller (contact/stranger, network, level):")
    out += [f"  {n:5d} {c}" for c, n in who.most_common(15)]
    return "\n".join(out)


def examples(results: list[CallResult], specs: dict[int, CallSpec], kind: str,
             decisions: frozenset[str], n: int) -> str:  # fmt: skip
    out = []
    sel = [r for r in results if r.kind == kind and r.decision in decisions]
    for r in sel[:: max(1, len(sel) // n)][:n]:
        spec = specs[r.id]
        out.append(
            f"- #{r.id} t+{(spec.time % DAY) / 3600:.1f}h {spec.caller}→{spec.callee} "
            f"{spec.carrier} {spec.level} {'contact' if spec.known else 'stranger'} "
            f"org={spec.org} → {r.decision} {r.score:.0f}"
        )
        out += [f"    {w:+.2f}{' I' if i else '  '} {s}: {d}" for s, w, i, d in r.explain if w != 0]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.traffic.diagnose", description=__doc__)
    p.add_argument("-s", "--scenario", default="published", choices=sorted(SCENARIOS))
    p.add_argument("-c", "--config", default="trunks", choices=sorted(CONFIGS))
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--days", type=float)
    p.add_argument("--subscribers", type=int)
    p.add_argument("--kind", default="human", choices=("human", "wanted", "robocall"))
    p.add_argument("--decision", action="append", help="decisions to look at (default: stop)")
    p.add_argument("--examples", type=int, default=8)
    p.add_argument("--save", metavar="FILE", help="pickle (traffic, results) for later")
    args = p.parse_args(argv)
    changes: dict[str, object] = {"seed": args.seed, "start": time.time() // DAY * DAY}
    if args.days:
        changes["days"] = args.days
    if args.subscribers:
        changes["subscribers"] = args.subscribers
    traffic = generate(scenario(args.scenario, **changes))
    cfg = reputation_config(args.config)
    results = asyncio.run(evaluate(traffic, cfg, trunks=trunks_for(args.config, traffic)))
    if args.save:
        Path(args.save).write_bytes(pickle.dumps((traffic, results)))
    specs = {c.id: c for c in traffic.calls}
    decisions = frozenset(args.decision) if args.decision else STOP
    print(table([(args.scenario, args.config, compute(results))]))
    print(summary(results, specs, args.kind, decisions, cfg.policy))
    print(examples(results, specs, args.kind, decisions, args.examples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
