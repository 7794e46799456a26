"""Score: overrides first, then logistic of a log-odds sum; bounded, monotone, explained."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reputation.config import PolicyConfig, ReputationConfig
from reputation.model import Reason
from reputation.score import combine, evaluate, logistic_score, override_for

from .builders import Counters, hits, signal_input

CFG = ReputationConfig()


def test_prior_alone() -> None:
    s = combine(-2.5, ())
    assert s.value == pytest.approx(7.59, abs=0.01)
    assert s.log_odds == -2.5 and s.reasons == () and s.override is None


def test_even_odds_is_fifty() -> None:
    assert combine(-1.0, [Reason("x", 1.0)]).value == 50.0


def test_reasons_ordered_by_absolute_weight() -> None:
    s = combine(0.0, [Reason("a", 0.5), Reason("b", -3.0), Reason("c", 1.0)])
    assert [r.signal for r in s.reasons] == ["b", "c", "a"]


@pytest.mark.parametrize("x", [-1e308, -800.0, 0.0, 800.0, 1e308, float("inf"), float("-inf")])
def test_logistic_is_safe(x: float) -> None:
    assert 0.0 <= logistic_score(x) <= 100.0


def test_logistic_nan() -> None:
    assert logistic_score(float("nan")) == 50.0


@pytest.mark.parametrize(
    ("kw", "found", "override", "value"),
    [
        ({"callee": "911"}, [("block", "user")], "emergency", 0.0),
        ({"callee": "sip:112@x"}, [("dno", "global")], "emergency", 0.0),
        ({}, [("allow", "user")], "allow_list", 0.0),
        ({"caller": "+12124115555"}, [("allow", "user")], "allow_list", 0.0),
        ({}, [("dno", "global")], "dno", 100.0),
        ({"caller": "+12124115555"}, [], "invalid_number", 100.0),
        ({"caller": "+4412"}, [], "invalid_number", 100.0),
        ({"caller": "+15551230001"}, [], None, None),  # unallocated-looking: scored, not forced
        ({}, [("block", "user")], None, None),
    ],
)
def test_overrides(
    kw: dict[str, str], found: list[tuple[str, str]], override: str | None, value: float | None
) -> None:
    s = evaluate(signal_input(**kw), hits=hits(*found))
    assert s.override == override
    if value is not None:
        assert s.value == value
    assert s.reasons, "reasons are computed even when an override decides"


def test_critical_caller_override() -> None:
    cfg = dataclasses.replace(CFG, policy=PolicyConfig(critical_callers=("+13125557788",)))
    s = evaluate(signal_input(config=cfg, attest="C"), hits=hits(("block", "global")))
    assert s.override == "critical_caller" and s.value == 0.0


def test_invalid_number_override_can_be_switched_off() -> None:
    cfg = dataclasses.replace(CFG, policy=PolicyConfig(block_invalid_numbers=False))
    s = evaluate(signal_input("+12124115555", config=cfg))
    assert s.override is None and 0 < s.value < 100
    assert override_for(signal_input("+12124115555"), ()) == "invalid_number"


def test_user_block_scores_high() -> None:
    s = evaluate(signal_input(attest="A"), hits=hits(("block", "user")))
    assert s.value >= 90 and s.reasons[0].signal == "list.user_block"


def test_campaign_evidence_adds_up() -> None:
    base = evaluate(signal_input(attest="C"))
    worse = evaluate(
        signal_input(attest="C"),
        source_counts=[("origid", "orig-1", Counters(unwanted_607=5.0, challenge_failed=3.0))],
    )
    assert worse.value > base.value
    assert any(r.signal == "source.origid.bad" for r in worse.reasons)


# --- properties ---------------------------------------------------------------------------

SPAM_HITS = st.lists(
    st.sampled_from([("block", "user"), ("block", "global")]), max_size=2, unique=True
)
COUNTS = st.builds(
    Counters,
    unwanted_607=st.floats(0, 1e6),
    reports_spam=st.floats(0, 1e6),
    challenge_failed=st.floats(0, 1e6),
)
ATTEST = st.sampled_from([None, "A", "B", "C"])
CALLERS = st.sampled_from(["+13125557788", "anonymous", "+12124567890", "+15551230001", "bob"])


@given(st.lists(st.floats(-50, 50), max_size=20), st.floats(-10, 10))
def test_score_within_bounds(weights: list[float], prior: float) -> None:
    s = combine(prior, [Reason(f"s{i}", w) for i, w in enumerate(weights)])
    assert 0.0 <= s.value <= 100.0


@given(st.lists(st.floats(-20, 20), max_size=10), st.floats(0, 20), st.floats(-5, 5))
def test_monotone_in_added_evidence(weights: list[float], extra: float, prior: float) -> None:
    reasons = [Reason(f"s{i}", w) for i, w in enumerate(weights)]
    before = combine(prior, reasons).value
    after = combine(prior, [*reasons, Reason("more.spam", extra)]).value
    assert after >= before


@given(CALLERS, ATTEST, COUNTS, COUNTS)
def test_monotone_in_feedback(caller: str, attest: str | None, a: Counters, b: Counters) -> None:
    """More complaints about the source never lower the score."""
    lo = Counters(
        unwanted_607=min(a.unwanted_607, b.unwanted_607),
        reports_spam=min(a.reports_spam, b.reports_spam),
        challenge_failed=min(a.challenge_failed, b.challenge_failed),
    )
    hi = Counters(
        unwanted_607=max(a.unwanted_607, b.unwanted_607),
        reports_spam=max(a.reports_spam, b.reports_spam),
        challenge_failed=max(a.challenge_failed, b.challenge_failed),
    )
    inp = signal_input(caller, attest=attest)
    s_lo = evaluate(inp, caller_counts=lo, source_counts=[("ip", "1.2.3.4", lo)])
    s_hi = evaluate(inp, caller_counts=hi, source_counts=[("ip", "1.2.3.4", hi)])
    assert s_hi.value >= s_lo.value


@given(CALLERS, ATTEST, SPAM_HITS, COUNTS)
def test_monotone_in_list_hits(
    caller: str, attest: str | None, found: list[tuple[str, str]], counts: Counters
) -> None:
    inp = signal_input(caller, attest=attest)
    assert (
        evaluate(inp, hits=hits(*found), caller_counts=counts).value
        >= evaluate(inp, caller_counts=counts).value
    )


@given(CALLERS, ATTEST, SPAM_HITS, COUNTS)
def test_user_allow_always_wins(
    caller: str, attest: str | None, found: list[tuple[str, str]], counts: Counters
) -> None:
    inp = signal_input(caller, attest=attest)
    if not inp.caller.digits:
        return  # a list holds numbers; non-numbers never reach it
    s = evaluate(
        inp,
        hits=hits(("allow", "user"), *found, ("dno", "global")),
        caller_counts=counts,
        source_counts=[("ip", "1.2.3.4", counts)],
    )
    assert s.override == "allow_list" and s.value == 0.0


@pytest.mark.parametrize(
    ("attest", "found", "override"),
    [
        # the operator vouches for the number and its carrier vouches for the caller
        ("A", [("allow", "global")], "global_allow_attested"),
        # a spoofer of a listed number gets the weight only
        ("B", [("allow", "global")], None),
        ("C", [("allow", "global")], None),
        # the callee's own block list beats the deployment's allow list
        ("A", [("allow", "global"), ("block", "user")], None),
    ],
)
def test_global_allow_overrides_only_for_a_attested_calls(
    attest: str, found: list[tuple[str, str]], override: str | None
) -> None:
    s = evaluate(signal_input(attest=attest), hits=hits(*found))
    assert s.override == override
    if override is None:
        assert s.value > 0.0
    else:
        assert s.value == 0.0


def test_global_allow_override_can_be_switched_off() -> None:
    cfg = dataclasses.replace(CFG, policy=PolicyConfig(global_allow_attested_override=False))
    s = evaluate(signal_input(config=cfg, attest="A"), hits=hits(("allow", "global")))
    assert s.override is None
    assert "list.global_allow" in {r.signal for r in s.reasons}


def test_infrastructure_evidence_discounted_for_established_callers() -> None:
    """A number seen for days behind a noisy provider: its provider's complaints and
    campaign volume count half (signals.established_infra_factor); a fresh number's not."""
    from reputation.patterns import KeyStats, PatternFeatures

    day = CFG.patterns.new_number_seconds
    ip = KeyStats(kind="ip", key="192.0.2.1", fanout=40)

    def fanout(age: float | None) -> float:
        tn = KeyStats(kind="tn", key="13125557788", first_seen_age=age)
        s = evaluate(signal_input(), features=PatternFeatures((tn, ip)))
        (r,) = [r for r in s.reasons if r.signal == "pattern.fanout"]
        assert r.infra
        return r.weight

    fresh, old = fanout(60.0), fanout(3 * day)
    assert old == pytest.approx(fresh * CFG.signals.established_infra_factor)
    assert fanout(None) == fresh
    off = dataclasses.replace(
        CFG, signals=dataclasses.replace(CFG.signals, established_infra_factor=1.0)
    )
    tn = KeyStats(kind="tn", key="13125557788", first_seen_age=3 * day)
    s = evaluate(signal_input(config=off), features=PatternFeatures((tn, ip)))
    assert [r.weight for r in s.reasons if r.signal == "pattern.fanout"] == [fresh]
