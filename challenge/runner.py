"""The UA processes: the front (one public port, :mod:`challenge.front`) supervising
``workers`` pjsua2 worker processes (``python -m challenge.worker``).

Start-up order: the front binds ``[challenge] listen``, generates prompts and the shared
secret once (so workers never race on them), starts the workers with their share of the
limits and waits until each has written its SIP port to a ready file; then it relays.
A worker that dies is restarted on a new port (calls it held are lost). Clean-up of old
recordings runs here, once for all workers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from .config import ChallengeConfig, resolve_paths
from .front import Relay
from .passtoken import derive, load_or_create_secret
from .prompts import ensure_prompts
from .recorder import cleanup

log = logging.getLogger("spitwall.challenge")

REPORT_TOKEN_LABEL = "challenge-report"
"""``derive(secret, REPORT_TOKEN_LABEL)`` is the default bearer token of outcome reports."""
WORKER_START_TIMEOUT = 20.0


def report_token(cfg: ChallengeConfig, secret: bytes) -> str:
    return cfg.report_token or derive(secret, REPORT_TOKEN_LABEL)


def worker_config(cfg: ChallengeConfig) -> ChallengeConfig:
    """One worker's share of the limits, on an ephemeral SIP port of its own (the front
    holds ``listen``; a worker binding the configured port too would fail to start)."""
    n = cfg.workers
    return dataclasses.replace(
        cfg,
        listen=f"{cfg.host}:0",
        max_calls=max(1, math.ceil(cfg.max_calls / n)),
        max_voicemail_calls=math.ceil(cfg.max_voicemail_calls / n),
    )


class _Worker:
    def __init__(
        self, index: int, conf_file: Path, data_dir: Path, front: tuple[str, int], tmp: Path
    ) -> None:
        self.index = index
        self.conf_file = conf_file
        self.data_dir = data_dir
        self.front = front
        self.tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_file = tmp / f"worker{index}.port"

    def spawn(self) -> None:
        self.ready_file.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "challenge.worker",
                "--config-json",
                str(self.conf_file),
                "--data-dir",
                str(self.data_dir),
                "--front",
                f"{self.front[0]}:{self.front[1]}",
                "--ready-file",
                str(self.ready_file),
                "--index",
                str(self.index),
            ],
            stdin=subprocess.DEVNULL,
            start_new_session=False,
        )

    def port(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            text = self.ready_file.read_text().strip()
            if text:
                return int(text)
        return None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def _wait_ready(workers: list[_Worker], timeout: float) -> list[int]:
    end = time.monotonic() + timeout
    while True:
        ports = [w.port() for w in workers]
        if all(p is not None for p in ports):
            return [p for p in ports if p is not None]
        for w in workers:
            if w.proc is not None and w.proc.poll() is not None:
                raise OSError(f"challenge worker {w.index} exited with {w.proc.returncode}")
        if time.monotonic() > end:
            raise OSError("challenge workers did not start in time")
        time.sleep(0.05)


def run_front(
    cfg: ChallengeConfig,
    data_dir: Path,
    should_stop: Callable[[], bool],
    on_ready: Callable[[int], None] | None = None,
) -> int:
    paths = resolve_paths(cfg, data_dir)
    prompts = ensure_prompts(paths.prompts_dir, cfg.voice)
    if not prompts.spoken:
        log.info("prompts are tones (voice=%s or espeak-ng missing)", cfg.voice)
    load_or_create_secret(paths.secret_file)
    paths.voicemail_dir.mkdir(parents=True, exist_ok=True)

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.bind((cfg.host, cfg.port))
    sock.setblocking(False)
    front = (cfg.host, sock.getsockname()[1])

    tmp = Path(tempfile.mkdtemp(prefix="spitwall-challenge-"))
    conf_file = tmp / "worker.json"
    conf_file.write_text(json.dumps(dataclasses.asdict(worker_config(cfg))))
    workers = [_Worker(i, conf_file, data_dir, front, tmp) for i in range(cfg.workers)]
    try:
        for w in workers:
            w.spawn()
        ports = _wait_ready(workers, WORKER_START_TIMEOUT)
        relay = Relay(
            [(cfg.host, p) for p in ports],
            slots=cfg.worker_call_slots,
            allowed_sources=frozenset(cfg.divert_sources) if cfg.divert_sources else None,
        )
        if on_ready is not None:
            on_ready(front[1])
        next_check = 0.0
        next_cleanup = 0.0
        while not should_stop():
            ready, _, _ = select.select([sock], [], [], 0.1)
            now = time.monotonic()
            if ready:
                for _ in range(256):
                    try:
                        data, src = sock.recvfrom(65535)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError as exc:  # ICMP port unreachable and friends
                        log.debug("front recv: %s", exc)
                        continue
                    for out, dst in relay.datagram(data, src, now):
                        with contextlib.suppress(OSError):
                            sock.sendto(out, dst)
            if now >= next_check:
                next_check = now + 0.5
                for w in workers:
                    if w.proc is not None and w.proc.poll() is not None and not should_stop():
                        log.error(
                            "challenge worker %d exited (%s): restarting",
                            w.index,
                            w.proc.returncode,
                        )
                        w.spawn()
                        (port,) = _wait_ready([w], WORKER_START_TIMEOUT)
                        relay.set_worker(w.index, (cfg.host, port))
            if now >= next_cleanup:
                next_cleanup = now + cfg.cleanup_interval
                removed = cleanup(paths.voicemail_dir, time.time(), cfg.retention_days)
                if removed:
                    log.info(
                        "removed %d recordings older than %s days", removed, cfg.retention_days
                    )
    finally:
        for w in workers:
            w.stop()
        for w in workers:
            w.wait(8.0)
        sock.close()
        with contextlib.suppress(OSError):
            for f in tmp.iterdir():
                f.unlink()
            tmp.rmdir()
    return 0


def run_worker(
    cfg: ChallengeConfig,
    data_dir: Path,
    front: tuple[str, int] | None,
    should_stop: Callable[[], bool],
    on_ready: Callable[[int], None] | None = None,
) -> int:
    """One pjsua2 process: its own SIP port (ephemeral), polled on the main thread."""
    from .agent import Agent
    from .outcome import OutcomeReporter

    paths = resolve_paths(cfg, data_dir)
    prompts = ensure_prompts(paths.prompts_dir, cfg.voice)
    secret = load_or_create_secret(paths.secret_file)
    reporter = OutcomeReporter(
        cfg.report_url,
        report_token(cfg, secret),
        timeout=cfg.report_timeout,
        retries=cfg.report_retries,
    )
    agent = Agent(cfg, paths, prompts, secret, reporter, log_level=1, front=front, cleanup=False)
    try:
        port = agent.start()
        if on_ready is not None:
            on_ready(port)
        while not should_stop():
            # 10 ms while calls run (prompt ends, digit timers); idle workers poll less
            agent.poll(10 if agent.sessions else 40)
    finally:
        agent.shutdown()
        reporter.close(timeout=5.0)
        log.info("challenge worker %d stopped: %s", os.getpid(), dict(agent.stats))
    return 0
