"""``python -m challenge.worker``: one pjsua2 worker process, started by the front
(:func:`challenge.runner.run_front`); not meant to be run by hand.

Writes its SIP port to ``--ready-file`` once listening; stops on SIGTERM/SIGINT and when
its parent (the front) has gone away.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import signal
import sys
from pathlib import Path
from typing import Any

from .config import ChallengeConfig
from .runner import run_worker


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="challenge.worker")
    ap.add_argument("--config-json", required=True, type=Path)
    ap.add_argument("--data-dir", required=True, type=Path)
    ap.add_argument("--front", default="")
    ap.add_argument("--ready-file", required=True, type=Path)
    ap.add_argument("--index", type=int, default=0)
    args = ap.parse_args(argv)
    raw: dict[str, Any] = json.loads(args.config_json.read_text())
    raw["codecs"] = tuple(raw.get("codecs", ()))
    cfg = ChallengeConfig(**raw)
    if cfg.test_code:
        random.seed(args.index)
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s %(levelname)s %(name)s[w{args.index}]: %(message)s"
    )
    front = None
    if args.front:
        host, _, port = args.front.rpartition(":")
        front = (host, int(port))
    stop = {"flag": False}

    def _stop(signum: int, frame: Any) -> None:
        stop["flag"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    def ready(port: int) -> None:
        tmp = args.ready_file.with_suffix(".tmp")
        tmp.write_text(str(port))
        tmp.replace(args.ready_file)

    parent = os.getppid()

    def should_stop() -> bool:
        # also stop when the front is gone (killed), instead of holding the port forever
        return stop["flag"] or os.getppid() != parent

    return run_worker(cfg, args.data_dir, front, should_stop, ready)


if __name__ == "__main__":
    sys.exit(main())
