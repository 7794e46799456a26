"""`spitwall challenge`: run the challenge/voicemail user agent (front + pjsua2 workers).

Reads ``[challenge]`` (and ``data_dir``) from ``--config``; ``--listen HOST:PORT``
overrides ``[challenge] listen`` (port 0 picks a free port). Prints one line
``challenge UA listening on udp:HOST:PORT`` when ready (the front and all ``workers``
pjsua2 processes are up), then serves until SIGTERM/SIGINT.
``spitwall serve`` starts it as a child process when ``[challenge] enabled`` is true.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "challenge",
        help="run the challenge/voicemail user agent",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("--config", metavar="FILE", help="TOML config (default: built-in defaults)")
    p.add_argument("--listen", metavar="HOST:PORT", help="override [challenge] listen")
    p.add_argument("--data-dir", metavar="DIR", help="override data_dir")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from challenge.runner import run_front
    from spitwall.config import load_config

    overrides: dict[str, Any] = {}
    if args.listen:
        overrides["challenge.listen"] = args.listen
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    cfg = load_config(args.config, overrides)
    logging.basicConfig(
        level=getattr(logging, cfg.log.level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    stop = {"flag": False}

    def _stop(signum: int, frame: Any) -> None:
        stop["flag"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    def ready(port: int) -> None:
        print(f"challenge UA listening on udp:{cfg.challenge.host}:{port}", flush=True)

    try:
        return run_front(cfg.challenge, cfg.data_dir, lambda: stop["flag"], ready)
    except OSError as exc:
        print(f"spitwall challenge: {exc}", file=sys.stderr)
        return 2
