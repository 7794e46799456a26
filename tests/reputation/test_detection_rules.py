"""The detection-quality rules of docs/detection.md ("Rules added in the third round"):
each found by reading the traffic model's per-call records, each tested here by hand."""

from __future__ import annotations

import dataclasses
import math

import pytest

from reputation import signals
from reputation.config import PatternConfig, PolicyConfig, ReputationConfig
from reputation.counters import COUNTER_FIELDS, KeyKind, ReputationBook
from reputation.model import ActionKind, Reason
from reputation.patterns import (
    CallPatterns,
    KeyStats,
    Outcome,
    PatternFeatures,
    PatternKeys,
    _adjacent_steps,
)
from reputation.policy import decide, own_score, volume_only
from reputation.score import _cap_infra, combine

from .builders import Counters, signal_input

T0 = 1_800_000_000.0
CFG = ReputationConfig()
IP = "198.51.100.7"


def stats(p: CallPatterns, keys: PatternKeys, now: float, callee: str) -> PatternFeatures:
    return p.features(keys, now, callee=callee)


# --- patterns.py ----------------------------------------------------------------------------


def test_rejected_or_diverted_calls_do_not_count_as_in_progress() -> None:
    """The proxy reports no end for a call it rejected or sent to its own IVR: counting it
    as in progress made a provider's 'concurrent calls' grow for hours."""
    p = CallPatterns()
    keys = PatternKeys(caller="13125550001", source_ip=IP)
    for i in range(5):
        p.observe_attempt(f"r{i}", keys, f"1646555{i:04d}", T0 + i, ringing=False)
    p.observe_attempt("f", keys, "16465559999", T0 + 10)
    st = stats(p, keys, T0 + 11, "16465558888").get("ip")
    assert st is not None and st.concurrent == 1 and st.attempts_minute == 7
    # an outcome for a non-ringing call still counts, and never drives 'active' negative
    assert p.observe_outcome("r0", Outcome.CANCELLED, T0 + 12)
    st = stats(p, keys, T0 + 13, "16465558888").get("ip")
    assert st is not None and st.concurrent == 1 and st.outcomes == pytest.approx(1.0, rel=1e-3)


def test_a_sweep_is_evidence_only_for_the_calls_that_continue_it() -> None:
    p = CallPatterns()
    for i in range(6):
        keys = PatternKeys(caller=f"1312555{i:04d}", source_ip=IP)
        p.observe_attempt(f"s{i}", keys, f"160939200{i:02d}", T0 + 10 * i)
    probe = PatternKeys(caller="13125559999", source_ip=IP)
    nxt = stats(p, probe, T0 + 70, "16093920006").get("ip")
    far = stats(p, probe, T0 + 70, "18567951234").get("ip")
    assert nxt is not None and nxt.sequential >= 5
    assert far is not None and far.sequential == 0  # a human calling someone else


def test_chance_adjacency_among_many_callees_is_not_a_sweep() -> None:
    """A busy source calling 40 random numbers in a block has a few adjacent pairs."""
    p = CallPatterns()
    callees = [f"1609392{(i * 2477) % 10000:04d}" for i in range(40)] + ["16093920000"]
    for i, c in enumerate(callees):
        p.observe_attempt(f"c{i}", PatternKeys(caller=f"1312555{i:04d}", source_ip=IP), c, T0 + i)
    st = stats(p, PatternKeys(source_ip=IP), T0 + 50, "16093920001").get("ip")
    assert st is not None and st.sequential == 0
    assert _adjacent_steps([int(c) for c in callees] + [16093920001], 10) >= 1


def test_source_keys_remember_distinct_and_never_seen_callers() -> None:
    p = CallPatterns()
    known = PatternKeys(caller="13125550000", source_ip=IP)
    p.observe_attempt("k", known, "16465550000", T0)
    for i in range(3):  # the known caller again: not new
        p.observe_attempt(f"k{i}", known, f"1646555100{i}", T0 + 30000 + i)
    for i in range(4):  # four never-seen numbers
        keys = PatternKeys(caller=f"1415555{i:04d}", source_ip=IP)
        p.observe_attempt(f"n{i}", keys, f"1646555200{i}", T0 + 30010 + i)
    st = stats(p, PatternKeys(source_ip=IP), T0 + 30020, "16465553000").get("ip")
    assert st is not None
    assert st.callers == 5 and st.new_callers == 4
    assert st.new_callers_expected is not None and st.new_callers_expected < 4


def test_recent_outcome_ratios_follow_the_last_minutes() -> None:
    cfg = PatternConfig()
    p = CallPatterns(cfg)
    for i in range(20):  # a day of long, answered calls
        keys = PatternKeys(caller=f"1312555{i:04d}", source_ip=IP)
        p.observe_attempt(f"g{i}", keys, f"1646555{i:04d}", T0 + i * 600)
        p.observe_outcome(f"g{i}", Outcome.ENDED, T0 + i * 600 + 120, 100.0)
    t = T0 + 20 * 600 + 3600
    for i in range(6):  # then six calls hung up within seconds
        keys = PatternKeys(caller=f"1415555{i:04d}", source_ip=IP)
        p.observe_attempt(f"b{i}", keys, f"1646556{i:04d}", t + i)
        p.observe_outcome(f"b{i}", Outcome.ENDED, t + i + 10, 2.0)
    st = stats(p, PatternKeys(source_ip=IP), t + 30, "16465570000").get("ip")
    assert st is not None and st.short_ratio is not None and st.recent_short_ratio is not None
    assert st.short_ratio < cfg.short_ratio <= st.recent_short_ratio


# --- signals.py -----------------------------------------------------------------------------


def _ip(**kw: object) -> KeyStats:
    base: dict[str, object] = {"kind": "ip", "key": IP, "attempts_day": 500}
    base.update(kw)
    return KeyStats(**base)  # type: ignore[arg-type]


GOOD_IP = Counters(long_calls=80.0, challenge_passed=10.0, unwanted_607=2.0, challenge_failed=3.0)


def test_shared_source_volume_is_not_evidence_but_its_outcomes_are() -> None:
    inp = signal_input()
    busy = _ip(fanout=60, attempts_minute=20, callers=50, answer_ratio=0.1, outcomes=40.0)
    feats = PatternFeatures((busy,))
    shared = signals.shared_sources(inp, feats, [("ip", IP, GOOD_IP)])
    assert [r.signal for r in shared] == ["source.ip.shared"] and shared[0].weight == 0
    kinds = signals.shared_kinds(shared)
    assert kinds == frozenset({"ip"})
    got = {r.signal for r in signals.patterns(inp, feats, kinds)}
    assert "pattern.low_answer" in got and not got & signals.VOLUME_SIGNALS
    plain = {r.signal for r in signals.patterns(inp, feats)}
    assert {"pattern.fanout", "pattern.rate_minute"} <= plain


@pytest.mark.parametrize(
    ("counts", "callers"),
    [
        (GOOD_IP, 3),  # one busy caller with its own address
        (Counters(long_calls=5.0), 50),  # too little good history
        (Counters(long_calls=20.0, challenge_failed=40.0), 50),  # mostly complaints: a campaign
    ],
)
def test_not_shared(counts: Counters, callers: int) -> None:
    feats = PatternFeatures((_ip(callers=callers),))
    assert signals.shared_sources(signal_input(), feats, [("ip", IP, counts)]) == ()


def test_new_caller_burst_needs_a_new_caller_and_a_burst_over_the_baseline() -> None:
    inp = signal_input()
    burst = _ip(new_callers=9, new_callers_expected=0.8)
    fresh = PatternFeatures((KeyStats(kind="tn", key="13125557788"), burst))
    (r,) = [x for x in signals.patterns(inp, fresh) if x.signal == "pattern.new_caller_burst"]
    assert r.infra and r.volume and r.weight >= CFG.weights.pattern_new_caller_burst
    known = PatternFeatures((KeyStats(kind="tn", key="13125557788", first_seen_age=9e4), burst))
    assert all(x.signal != "pattern.new_caller_burst" for x in signals.patterns(inp, known))
    usual = PatternFeatures((_ip(new_callers=9, new_callers_expected=5.0),))
    assert all(x.signal != "pattern.new_caller_burst" for x in signals.patterns(inp, usual))


def _broadcaster(**kw: object) -> KeyStats:
    base: dict[str, object] = {
        "kind": "tn", "key": "18005550100", "fanout": 40, "attempts_hour": 120,
        "short_ratio": 0.05, "mean_duration": 35.0, "first_seen_age": 9e4,
    }  # fmt: skip
    base.update(kw)
    return KeyStats(**base)  # type: ignore[arg-type]


def test_listened_offsets_an_attested_senders_own_volume_only() -> None:
    a = signal_input("+18005550100", attest="A")
    feats = PatternFeatures((_broadcaster(),))
    found = signals.patterns(a, feats)
    own = math.fsum(r.weight for r in found if r.volume and not r.infra and r.weight > 0)
    (r,) = signals.listened(a, feats.get("tn"), None, found)
    cap = -CFG.weights.pattern_listened
    assert r.signal == "pattern.listened" and r.weight == pytest.approx(-min(own, cap))
    # unattested: a spoofer must not borrow the record
    u = signal_input("+18005550100")
    assert signals.listened(u, feats.get("tn"), None, signals.patterns(u, feats)) == ()
    # robocall-like listening (short calls): nothing
    short = PatternFeatures((_broadcaster(short_ratio=0.7, mean_duration=3.0),))
    assert signals.listened(a, short.get("tn"), None, signals.patterns(a, short)) == ()
    # voicemails left instead of listening, outnumbering 607s 2:1
    quiet = PatternFeatures((_broadcaster(short_ratio=None, mean_duration=None),))
    vm = Counters(voicemail_left=6.0, unwanted_607=1.0)
    assert signals.listened(a, quiet.get("tn"), vm, signals.patterns(a, quiet))
    bad = Counters(voicemail_left=6.0, unwanted_607=4.0)
    assert signals.listened(a, quiet.get("tn"), bad, signals.patterns(a, quiet)) == ()


# --- score.py and policy.py -----------------------------------------------------------------


def test_infrastructure_evidence_is_capped_and_says_so() -> None:
    inp = signal_input()
    reasons = [
        Reason("pattern.fanout", 5.0, "ip", infra=True, volume=True),
        Reason("source.ip.bad", 3.0, "ip", infra=True),
        Reason("source.ip.good", -1.0, "ip", infra=True),
        Reason("learned.allow", -5.0, "known"),
    ]
    out = _cap_infra(inp, reasons)
    pos = math.fsum(r.weight for r in out if r.infra and r.weight > 0)
    assert pos == pytest.approx(CFG.signals.infra_cap)
    assert any(r.signal == "signals.infra_cap" for r in out)
    assert [r.weight for r in out if r.weight < 0] == [-1.0, -5.0]
    off = dataclasses.replace(CFG, signals=dataclasses.replace(CFG.signals, infra_cap=0.0))
    assert _cap_infra(signal_input(config=off), reasons) == reasons


TN_FANOUT = Reason("pattern.fanout", 5.0, "caller: 40 callees", volume=True)
TN_RATE = Reason("pattern.rate_hour", 2.0, "caller: 200 calls", volume=True)
FAILED = Reason("feedback.challenge_failed", 3.0, "4 challenges failed")
UNWANTED = Reason("feedback.unwanted", 2.4, "607s")
ATTEST_A = Reason("shaken.attest_a", -0.85, "A")
ATTEST_C = Reason("shaken.attest_c", 2.0, "C")


@pytest.mark.parametrize(
    ("reasons", "action"),
    [
        # a broadcast's volume plus the bot's failed challenges: voicemail, not reject
        ((TN_FANOUT, TN_RATE, FAILED, ATTEST_A), ActionKind.VOICEMAIL),
        # complaints on the number itself carry the reject
        ((TN_FANOUT, TN_RATE, FAILED, UNWANTED, ATTEST_C), ActionKind.REJECT),
    ],
)
def test_volume_alone_never_rejects(reasons: tuple[Reason, ...], action: ActionKind) -> None:
    s = combine(-2.5, reasons)
    assert s.value >= PolicyConfig().reject_at
    assert decide(s, PolicyConfig()).action is action, own_score(s)
    assert volume_only(s, PolicyConfig()) is (action is ActionKind.VOICEMAIL)


# --- counters.py ----------------------------------------------------------------------------


def test_recent_judgements_fade_in_minutes_while_the_month_remembers() -> None:
    book = ReputationBook(half_life=30 * 86400.0, recent_half_life=600.0)
    book.bump(KeyKind.IP, IP, T0, {"challenge_failed": 4.0, "calls": 4.0})
    book.bump(KeyKind.IP, IP, T0, {"long_calls": 1.0})
    now = book.get("ip", IP, T0)
    assert (now.recent_bad, now.recent_good) == (4.0, 1.0)
    later = book.get("ip", IP, T0 + 600)
    assert later.recent_bad == pytest.approx(2.0) and later.challenge_failed > 3.99


def test_a_recognised_bulk_sender_is_sent_to_voicemail_not_challenged() -> None:
    """A notification bot fails every challenge by design and loses its message there."""
    listened = Reason("pattern.listened", -4.0, "listened to")
    s = combine(-2.5, (TN_FANOUT, FAILED, ATTEST_A, listened))
    assert PolicyConfig().challenge_at <= s.value < PolicyConfig().voicemail_at
    assert decide(s, PolicyConfig()).action is ActionKind.VOICEMAIL
    plain = combine(-2.5, (TN_FANOUT, FAILED, ATTEST_A, Reason("x", -4.0, "other")))
    assert decide(plain, PolicyConfig()).action is ActionKind.CHALLENGE


def test_a_reload_from_the_change_feed_keeps_the_recent_window() -> None:
    """The feed re-applies this process's own judgements as stored rows; the recent window
    is memory only and must survive that."""
    book = ReputationBook(half_life=30 * 86400.0)
    book.bump(KeyKind.IP, IP, T0, {"unwanted_607": 3.0})
    row = {"key_kind": "ip", "key": IP, "updated": T0, "first_seen": T0}
    row.update({n: 0.0 for n in COUNTER_FIELDS} | {"unwanted_607": 3.0})
    book.load_row(row)
    got = book.get("ip", IP, T0)
    assert (got.unwanted_607, got.recent_bad) == (3.0, 3.0)
