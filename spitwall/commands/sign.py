"""`spitwall sign`: not implemented yet."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("sign", help="(not implemented yet)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print("spitwall sign: not implemented yet", file=sys.stderr)
    return 2
