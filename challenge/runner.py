"""The UA process: wire config, prompts, secret, reporter and agent, then loop.

Kept apart from the agent so that the command line (``spitwall challenge``) and tests share
one start-up path; the loop is the only place that reads the clock.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from pathlib import Path

from .agent import Agent
from .config import ChallengeConfig, resolve_paths
from .outcome import Delivery, OutcomeReporter
from .passtoken import derive, load_or_create_secret
from .prompts import ensure_prompts

log = logging.getLogger("spitwall.challenge")

REPORT_TOKEN_LABEL = "challenge-report"
"""``derive(secret, REPORT_TOKEN_LABEL)`` is the default bearer token of outcome reports."""


def report_token(cfg: ChallengeConfig, secret: bytes) -> str:
    return cfg.report_token or derive(secret, REPORT_TOKEN_LABEL)


def run_agent(
    cfg: ChallengeConfig,
    data_dir: Path,
    should_stop: Callable[[], bool],
    on_ready: Callable[[int], None] | None = None,
) -> int:
    paths = resolve_paths(cfg, data_dir)
    prompts = ensure_prompts(paths.prompts_dir, cfg.voice)
    if not prompts.spoken:
        log.info("prompts are tones (voice=%s or espeak-ng missing)", cfg.voice)
    secret = load_or_create_secret(paths.secret_file)
    paths.voicemail_dir.mkdir(parents=True, exist_ok=True)

    def delivered(d: Delivery) -> None:
        if d.ok:
            log.debug("reported %s %s", d.report.outcome, d.report.decision_id)

    reporter = OutcomeReporter(
        cfg.report_url,
        report_token(cfg, secret),
        timeout=cfg.report_timeout,
        retries=cfg.report_retries,
        on_delivery=delivered,
    )
    rng = random.Random(0) if cfg.test_code else random.SystemRandom()
    agent = Agent(cfg, paths, prompts, secret, reporter, rng=rng, log_level=1)
    try:
        port = agent.start()
        if on_ready is not None:
            on_ready(port)
        while not should_stop():
            agent.poll(10)
    finally:
        t0 = time.monotonic()
        agent.shutdown()
        reporter.close(timeout=max(0.5, 5.0 - (time.monotonic() - t0)))
        log.info("challenge UA stopped: %s", dict(agent.stats))
    return 0
