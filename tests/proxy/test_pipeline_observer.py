"""Outcomes of diverted calls: the caller's talk with our own challenge UA is not a call.

Why: a challenged caller answers our IVR, presses digits and hangs up after a few seconds.
Counted as the caller's call, that would be an "answered short call" — the very pattern of
a robocaller — so every challenged human would lose reputation for being challenged. The
UA's own report (passed, failed, voicemail) is the outcome; only failures and CANCEL of
the caller's leg count.
"""

from __future__ import annotations

import time

from proxy.pipeline import CallScreener, DivertTargets, PipelineObserver
from proxy.screen import Divert, Forward, InviteFacts, Outcome
from reputation.config import ReputationConfig
from reputation.engine import ScoringEngine
from reputation.patterns import PatternKeys
from spitwall.settings import build

CALLER, CALLEE = "+12156781234", "+12159876543"
CALLS = 6  # more than patterns.min_outcomes, so the short-call ratio is computed


def _facts(call_id: str, now: float) -> InviteFacts:
    return InviteFacts(
        call_id=call_id,
        request_uri=f"sip:{CALLEE}@127.0.0.1",
        from_uri=f"sip:{CALLER}@192.0.2.10",
        to_uri=f"sip:{CALLEE}@127.0.0.1",
        time=now,
        source_ip="192.0.2.10",
        source_port=5060,
        transport="udp",
        caller_user=CALLER,
        callee_user=CALLEE,
    )


def _screener(action: str) -> CallScreener:
    bands = ("ok", "suspicious", "likely", "spam", "certain")
    cfg = build(ReputationConfig, {"policy": {f"action_{b}": action for b in bands}})
    return CallScreener(
        engine=ScoringEngine(cfg),
        targets=DivertTargets(challenge="sip:challenge@127.0.0.1:5070"),
    )


def _caller_stats(screener: CallScreener, now: float) -> tuple[float, float | None]:
    keys = PatternKeys(caller=CALLER.lstrip("+"), source_ip="192.0.2.10")
    stats = screener.engine.patterns.features(keys, now).get("tn")
    assert stats is not None
    return stats.outcomes, stats.short_ratio


async def _call(screener: CallScreener, call_id: str, now: float) -> object:
    action = await screener.screen(_facts(call_id, now))
    observer = PipelineObserver(screener)
    observer.observe(Outcome("final", call_id, now + 2, code=200))
    observer.observe(Outcome("bye", call_id, now + 6, duration=4.0, by="caller"))
    return action


async def test_talking_to_the_challenge_ua_is_not_a_short_call() -> None:
    screener, now = _screener("challenge"), time.time()
    for i in range(CALLS):
        assert isinstance(await _call(screener, f"c{i}", now + 10 * i), Divert)
    outcomes, short = _caller_stats(screener, now + 10 * CALLS)
    assert outcomes == 0 and short is None


async def test_a_forwarded_short_call_still_counts() -> None:
    screener, now = _screener("forward"), time.time()
    for i in range(CALLS):
        assert isinstance(await _call(screener, f"f{i}", now + 10 * i), Forward)
    outcomes, short = _caller_stats(screener, now + 10 * CALLS)
    assert outcomes > CALLS - 1 and short is not None and short > 0.9


def test_diverted_verstat_without_a_store_expires_like_the_stores() -> None:
    """The bridged leg of a later pass must not inherit a verstat older than
    ``DIVERT_REMEMBER`` (the store path already expires it)."""
    from proxy.pipeline import DIVERT_REMEMBER

    screener = _screener("challenge")
    a, b, t = CALLER.lstrip("+"), CALLEE.lstrip("+"), 1000.0
    screener._remember_divert(a, b, "TN-Validation-Passed", t)
    assert screener._diverted(a, b, t + 1) == "TN-Validation-Passed"
    assert screener._diverted(a, b, t + DIVERT_REMEMBER + 1) is None
