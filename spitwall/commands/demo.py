"""`spitwall demo`: a self-contained tour — spitwall on its default config screening a
few minutes of simulated traffic over SIP, with a running table of what it did.

Starts everything on 127.0.0.1 ephemeral ports in a fresh data directory (``var/demo/<time>``
or ``--data-dir``), plays the traffic model (``bench/traffic``) through ``spitwall serve``,
prints a line every ``--every`` seconds and, at the end, where to look next (web page, log,
``spitwall audit verify``). ``--linger`` keeps spitwall running afterwards (default when
run from a terminal). Exit codes: 0 done, 2 usage error or not a source checkout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="a self-contained tour: simulated callers and subscribers through spitwall",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("--duration", type=float, default=120.0, help="seconds of traffic (120)")
    p.add_argument("--subscribers", type=int, default=2000, help="simulated lines (2000)")
    p.add_argument("--speed", type=float, default=2.0, help="simulated seconds per real second (2)")
    p.add_argument("--seed", type=int, default=1, help="traffic model seed (1)")
    p.add_argument("--every", type=float, default=10.0, help="seconds between table lines")
    p.add_argument(
        "--data-dir", metavar="DIR", help="where everything goes (default: var/demo/<time>)"
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument("--linger", dest="linger", action="store_true", default=None)
    g.add_argument("--no-linger", dest="linger", action="store_false")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..demo import DemoOptions, run_demo

    if args.duration <= 0 or args.subscribers < 10 or args.speed <= 0 or args.every <= 0:
        print(
            "spitwall demo: --duration, --speed and --every must be > 0, --subscribers >= 10",
            file=sys.stderr,
        )
        return 2
    linger = sys.stdin.isatty() if args.linger is None else args.linger
    opts = DemoOptions(
        duration=args.duration,
        subscribers=args.subscribers,
        speed=args.speed,
        seed=args.seed,
        every=args.every,
        data_dir=Path(args.data_dir) if args.data_dir else None,
        linger=linger,
    )
    return run_demo(opts)
