"""Call patterns, stepping virtual time: floods, fan-out, sweeps, outcomes, memory bounds."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reputation.config import PatternConfig, ReputationConfig
from reputation.patterns import CallPatterns, Outcome, PatternKeys, callee_value
from reputation.signals import patterns as pattern_signals

from .builders import signal_input

T0 = 1_800_000_000.0


def flagged(p: CallPatterns, keys: PatternKeys, now: float, callee: str) -> dict[str, float]:
    """The positive pattern signals a call would get (name → weight)."""
    feats = p.features(keys, now, callee=callee)
    return {
        r.signal: r.weight
        for r in pattern_signals(signal_input(), feats)
        if r.weight > 0 and r.signal != "pattern.new_number"
    }


def test_fanout_30_callees_in_10_minutes_from_one_source() -> None:
    """A campaign rotating caller IDs through one source: 30 distinct callees, 10 minutes."""
    p = CallPatterns()
    t = T0
    for i in range(30):
        keys = PatternKeys(caller=f"1312555{1000 + i:04d}", source_ip="198.51.100.7")
        p.observe_attempt(f"c{i}", keys, f"1646788{(i * 379) % 10000:04d}", t)
        t += 19.0
    probe = PatternKeys(caller="13125559999", source_ip="198.51.100.7")
    got = flagged(p, probe, t, "16467880001")
    assert "pattern.fanout" in got
    ip = p.features(probe, t, callee="16467880001").get("ip")
    assert ip is not None and ip.fanout >= 30 and ip.attempts_hour == 31
    # each caller ID on its own looks innocent: the source carries the evidence
    tn = p.features(PatternKeys(caller="13125551000"), t, callee="16467880001").get("tn")
    assert tn is not None and tn.fanout == 2


def test_normal_human_five_calls_a_day_is_not_flagged() -> None:
    p = CallPatterns()
    keys = PatternKeys(caller="12124567777", source_ip="203.0.113.5")
    friends = ["16465550142", "13125557788", "16465550142", "17185553456", "12025551234"]
    t = T0
    for day in range(5):
        for i, callee in enumerate(friends):
            cid = f"d{day}c{i}"
            p.observe_attempt(cid, keys, callee, t)
            p.observe_outcome(cid, Outcome.ANSWERED, t + 8)
            p.observe_outcome(cid, Outcome.ENDED, t + 8 + 240)
            t += 2 * 3600
        t += 24 * 3600 - 5 * 2 * 3600
    assert flagged(p, keys, t, "16465550142") == {}
    st = p.features(keys, t, callee="16465550142").get("tn")
    assert st is not None
    assert st.answer_ratio == pytest.approx(1.0) and st.short_ratio == 0.0
    assert st.mean_duration == pytest.approx(240.0)
    assert st.first_seen_age is not None and st.first_seen_age > 4 * 86400


def test_sequential_dialling_detected() -> None:
    p = CallPatterns()
    keys = PatternKeys(caller="13125557788", source_ip="192.0.2.1")
    p.observe_attempt("s1", keys, "15551230001", T0)
    p.observe_attempt("s2", keys, "15551230002", T0 + 3)
    st = p.features(keys, T0 + 6, callee="15551230003").get("tn")
    assert st is not None and st.sequential == 2
    assert "pattern.sequential" in flagged(p, keys, T0 + 6, "15551230003")


def test_scattered_callees_are_not_a_sweep() -> None:
    p = CallPatterns()
    keys = PatternKeys(caller="13125557788")
    for i, callee in enumerate(["15551230001", "15551239000", "16465550100"]):
        p.observe_attempt(f"x{i}", keys, callee, T0 + i)
    assert "pattern.sequential" not in flagged(p, keys, T0 + 5, "17185550000")


def test_sweep_forgotten_after_an_hour() -> None:
    p = CallPatterns()
    keys = PatternKeys(caller="13125557788")
    p.observe_attempt("s1", keys, "15551230001", T0)
    p.observe_attempt("s2", keys, "15551230002", T0 + 1)
    assert "pattern.sequential" not in flagged(p, keys, T0 + 3700, "15551230003")


def test_rate_per_minute_and_concurrency() -> None:
    p = CallPatterns()
    keys = PatternKeys(source_ip="198.51.100.9")
    for i in range(12):
        p.observe_attempt(f"r{i}", keys, f"1646555{i:04d}", T0 + i * 4)
    st = p.features(keys, T0 + 50).get("ip")
    assert st is not None and st.attempts_minute == 12 and st.concurrent == 12
    got = flagged(p, keys, T0 + 50, "16465559999")
    assert {"pattern.rate_minute", "pattern.concurrent", "pattern.fanout"} <= set(got)
    # a minute later the per-minute rate is quiet, the hour still remembers
    st = p.features(keys, T0 + 200).get("ip")
    assert st is not None and st.attempts_minute == 0 and st.attempts_hour == 12


def test_hour_and_day_counts_beyond_the_ring() -> None:
    cfg = PatternConfig(caller_ring=4)
    p = CallPatterns(cfg)
    keys = PatternKeys(caller="13125557788")
    for i in range(100):
        p.observe_attempt(f"h{i}", keys, "16465550142", T0 + i * 30)  # 100 calls in 50 min
    st = p.features(keys, T0 + 3000).get("tn")
    assert st is not None and st.attempts_hour == 100 and st.attempts_day == 100
    st = p.features(keys, T0 + 3 * 3600).get("tn")
    assert st is not None and st.attempts_hour == 0 and st.attempts_day == 100
    st = p.features(keys, T0 + 30 * 3600).get("tn")
    assert st is not None and st.attempts_day == 0


def test_short_calls_low_answer_and_early_cancel() -> None:
    p = CallPatterns(PatternConfig(min_outcomes=3.0))
    keys = PatternKeys(origid="orig-robo")
    t = T0
    for i in range(20):
        cid = f"o{i}"
        p.observe_attempt(cid, keys, f"1646555{i:04d}", t)
        if i % 4 == 0:  # a quarter answered, hung up after 3 s
            p.observe_outcome(cid, Outcome.ANSWERED, t + 5)
            p.observe_outcome(cid, Outcome.ENDED, t + 8)
        else:  # the rest: one ring and CANCEL
            p.observe_outcome(cid, Outcome.CANCELLED, t + 2)
        t += 120
    st = p.features(keys, t).get("origid")
    assert st is not None
    assert st.answer_ratio == pytest.approx(0.25, abs=0.01)
    assert st.early_cancel_ratio == pytest.approx(0.75, abs=0.01)
    assert st.short_ratio == pytest.approx(1.0) and st.mean_duration == pytest.approx(3.0)
    assert st.concurrent == 0
    cfg = ReputationConfig(patterns=PatternConfig(min_outcomes=3.0))
    got = {r.signal for r in pattern_signals(signal_input(config=cfg), p.features(keys, t))}
    assert {"pattern.short_calls", "pattern.early_cancel"} <= got


def test_ratios_need_enough_outcomes() -> None:
    p = CallPatterns()
    keys = PatternKeys(caller="13125557788")
    p.observe_attempt("a", keys, "16465550142", T0)
    p.observe_outcome("a", Outcome.CANCELLED, T0 + 1)
    st = p.features(keys, T0 + 2).get("tn")
    assert st is not None and st.answer_ratio is None and st.early_cancel_ratio is None


def test_outcomes_decay() -> None:
    p = CallPatterns(PatternConfig(outcome_half_life=100.0))
    keys = PatternKeys(caller="13125557788")
    for i in range(8):
        p.observe_attempt(f"a{i}", keys, "16465550142", T0)
        p.observe_outcome(f"a{i}", Outcome.FAILED, T0)
    st = p.features(keys, T0 + 100).get("tn")
    assert st is not None and st.outcomes == pytest.approx(4.0)


def test_repeat_and_urgent_retry() -> None:
    p = CallPatterns()
    keys = PatternKeys(caller="13125557788")
    p.observe_attempt("u1", keys, "16465550142", T0)
    p.observe_attempt("u2", keys, "16465550142", T0 + 60)
    st = p.features(keys, T0 + 120, callee="16465550142").get("tn")
    assert st is not None and st.recent_to_callee == 2 and st.repeat_callee == 2
    sig = {r.signal: r.weight for r in pattern_signals(signal_input(), p.features(
        keys, T0 + 120, callee="16465550142"))}  # fmt: skip
    assert sig["pattern.urgent_retry"] < 0
    for i in range(3, 6):
        p.observe_attempt(f"u{i}", keys, "16465550142", T0 + 60 * i)
    sig = {r.signal: r.weight for r in pattern_signals(signal_input(), p.features(
        keys, T0 + 400, callee="16465550142"))}  # fmt: skip
    assert sig["pattern.repeat_callee"] > 0 and "pattern.urgent_retry" not in sig


def test_bye_and_failure_release_concurrency_and_unknown_calls_are_ignored() -> None:
    p = CallPatterns()
    keys = PatternKeys(caller="13125557788", source_ip="192.0.2.1")
    p.observe_attempt("b", keys, "16465550142", T0)
    p.observe_attempt("b", keys, "16465550142", T0)  # retransmission counted once
    st = p.features(keys, T0).get("ip")
    assert st is not None and st.concurrent == 1 and st.attempts_minute == 1
    assert p.observe_outcome("b", Outcome.ANSWERED, T0 + 3)
    assert p.observe_outcome("b", Outcome.ENDED, T0 + 63)
    assert not p.observe_outcome("b", Outcome.ENDED, T0 + 64)
    assert not p.observe_outcome("nope", Outcome.FAILED, T0)
    st = p.features(keys, T0 + 64).get("ip")
    assert st is not None and st.concurrent == 0


def test_calls_without_outcome_expire() -> None:
    p = CallPatterns(PatternConfig(max_call_seconds=600.0))
    keys = PatternKeys(source_ip="192.0.2.1")
    p.observe_attempt("lost", keys, "16465550142", T0)
    p.observe_attempt("next", keys, "16465550143", T0 + 601)
    st = p.features(keys, T0 + 601).get("ip")
    assert st is not None and st.concurrent == 1 and p.in_flight() == 1


def test_lru_bounds_memory_and_protects_new_owner() -> None:
    cfg = PatternConfig(max_callers=100, max_sources=10)
    p = CallPatterns(cfg)
    for i in range(1000):
        p.observe_attempt(f"m{i}", PatternKeys(caller=f"1312555{i:04d}",
                                               source_ip=f"10.0.{i // 256}.{i % 256}"),
                          "16465550142", T0 + i)  # fmt: skip
    assert p.held("tn") == 100 and p.held("ip") == 10
    assert p.tables["tn"].evictions == 900
    # the oldest key was evicted: it reads as new
    assert p.features(PatternKeys(caller="13125550000"), T0 + 1000).stats == ()
    # an outcome for a call whose slot was reused does not touch the new owner
    assert p.in_flight() == 100
    survivor = PatternKeys(caller="13125550999")
    before = p.features(survivor, T0 + 1000).get("tn")
    p.observe_outcome("m999", Outcome.FAILED, T0 + 1001)
    after = p.features(survivor, T0 + 1001).get("tn")
    assert before is not None and after is not None and after.concurrent == before.concurrent - 1


def test_recently_used_key_survives_eviction() -> None:
    p = CallPatterns(PatternConfig(max_callers=3))
    keep = PatternKeys(caller="13125557788")
    p.observe_attempt("k0", keep, "1", T0)
    for i in range(10):
        p.observe_attempt(f"x{i}", PatternKeys(caller=f"1646555{i:04d}"), "1", T0 + i)
        p.observe_attempt(f"k{i + 1}", keep, "1", T0 + i)
    assert p.features(keep, T0 + 20).get("tn") is not None


def test_features_do_not_change_state() -> None:
    p = CallPatterns()
    keys = PatternKeys(caller="13125557788")
    p.observe_attempt("a", keys, "16465550142", T0)
    first = p.features(keys, T0 + 5, callee="16465550143")
    assert p.features(keys, T0 + 5, callee="16465550143") == first
    assert p.features(PatternKeys(caller="19999999999"), T0).stats == ()
    new = p.features(PatternKeys(caller="19999999999"), T0, callee="1").get("tn")
    assert new is not None and new.first_seen_age is None and new.attempts_minute == 1


def test_callee_values() -> None:
    assert callee_value("15551230001") == 15551230001
    assert callee_value("alice") < 0 and callee_value("9" * 30) < 0


def test_memory_estimate_for_100k_callers() -> None:
    p = CallPatterns(dataclasses.replace(PatternConfig(), max_callers=100_000))
    t = p.tables["tn"]
    per_key = sum(a.nbytes for a in (t.ts, t.callee, t.minutes, t.hours, t.out)) / t.capacity
    assert per_key * 100_000 < 80e6


EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["attempt", "answered", "ended", "cancelled", "failed", "read"]),
        st.integers(0, 15),  # call id
        st.integers(0, 5),  # caller
        st.floats(-5000.0, 200_000.0, allow_nan=False),  # time offset (may step backwards)
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(EVENTS)
def test_any_event_sequence_keeps_counts_sane(events: list[tuple[str, int, int, float]]) -> None:
    p = CallPatterns(PatternConfig(max_callers=3, max_sources=2, caller_ring=4, source_ring=4))
    for what, cid, caller, dt in events:
        keys = PatternKeys(caller=f"1312555{caller:04d}", source_ip=f"10.0.0.{caller % 3}")
        t = T0 + dt
        if what == "attempt":
            p.observe_attempt(f"c{cid}", keys, f"1646555{cid:04d}", t)
        elif what == "read":
            for st_ in p.features(keys, t, callee="16465550001").stats:
                assert st_.concurrent >= 0 and st_.attempts_minute >= 1
                assert st_.attempts_hour >= 0 and st_.attempts_day >= 0 and st_.fanout >= 1
                for r in (st_.answer_ratio, st_.early_cancel_ratio, st_.short_ratio):
                    assert r is None or 0.0 <= r <= 1.0 + 1e-9
        else:
            p.observe_outcome(f"c{cid}", Outcome(what), t, None)
    assert p.held("tn") <= 3 and p.held("ip") <= 2
