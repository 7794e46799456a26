"""Each signal as a table: the contribution a user would check in a call's explanation."""

from __future__ import annotations

import math

import pytest

from reputation import signals
from reputation.config import ReputationConfig, WeightsConfig
from reputation.model import Reason
from reputation.patterns import KeyStats, PatternFeatures

from .builders import FAILED, Counters, Learned, hits, signal_input

W = WeightsConfig()
CFG = ReputationConfig()


def by_name(reasons: tuple[Reason, ...]) -> dict[str, Reason]:
    return {r.signal: r for r in reasons}


# --- STIR/SHAKEN ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attest", "verstat", "reason", "signal", "sign"),
    [
        ("A", None, None, "shaken.attest_a", -1),
        ("a", None, None, "shaken.attest_a", -1),
        ("B", None, None, "shaken.attest_b", +1),
        ("C", None, None, "shaken.attest_c", +1),
        (None, None, None, "shaken.absent", 0),
        (None, "No-TN-Validation", None, "shaken.absent", 0),
        ("A", FAILED, "bad_signature", "shaken.failed_signature", +1),
        (None, FAILED, "orig_mismatch", "shaken.failed_signature", +1),
        (None, FAILED, "stale", "shaken.failed_stale", +1),
        (None, FAILED, "cert_unavailable", "shaken.failed_cert", +1),
        (None, FAILED, "x5u_fetch_failed", "shaken.failed_cert", +1),
        (None, FAILED, "bad_json", "shaken.failed", +1),
        (None, FAILED, None, "shaken.failed", +1),
        (None, FAILED, "internal_error", "shaken.error", 0),
        ("Z", None, None, "shaken.absent", 0),
    ],
)
def test_shaken(
    attest: str | None, verstat: str | None, reason: str | None, signal: str, sign: int
) -> None:
    s = signal_input(attest=attest, verstat=verstat, identity_reason=reason)
    (r,) = signals.shaken(s)
    assert r.signal == signal
    assert (r.weight > 0) - (r.weight < 0) == sign
    assert r.detail


def test_attestation_order_follows_published_robocall_shares() -> None:
    """TransNexus: robocall share A 3.4 % < unsigned 7 % < B 26.5 % < C 37.6 %."""
    assert W.shaken_attest_a < W.shaken_absent < W.shaken_attest_b < W.shaken_attest_c


# --- the caller's number ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("caller", "signal"),
    [
        ("anonymous", "number.anonymous"),
        ("sip:anonymous@anonymous.invalid", "number.anonymous"),
        ("sip:alice@example.com", "number.not_a_tn"),
        ("+4412", "number.not_possible"),
        ("+15551230001", "number.unallocated"),
        ("+12124115555", "number.n11"),
        ("+12125550123", "number.fiction"),
        ("+19005551234", "number.premium_rate"),
        ("+18005551234", "number.toll_free"),
        ("+442079460000", "number.foreign"),
    ],
)
def test_number_signals(caller: str, signal: str) -> None:
    got = by_name(signals.number(signal_input(caller)))
    assert signal in got
    assert got[signal].weight > 0
    assert got[signal].detail


def test_withheld_by_privacy_header() -> None:
    got = by_name(signals.number(signal_input("+13125557788", privacy="id")))
    assert set(got) == {"number.anonymous"}


def test_ordinary_number_has_no_number_signal() -> None:
    assert signals.number(signal_input("+13125557788")) == ()


# --- lists ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        ([("allow", "user")], {"list.user_allow": 0}),
        # a user's allow silences global lists
        ([("allow", "user"), ("block", "global")], {"list.user_allow": 0}),
        ([("block", "user")], {"list.user_block": +1}),
        (
            [("block", "user"), ("allow", "global")],
            {"list.user_block": +1, "list.global_allow": -1},
        ),
        ([("block", "global")], {"list.global_block": +1}),
        ([("allow", "global")], {"list.global_allow": -1}),
        ([("dno", "global")], {"list.dno": +1}),
        # only the deciding (first) entry of each scope counts
        ([("allow", "global"), ("block", "global")], {"list.global_allow": -1}),
        ([], {}),
    ],
)
def test_lists(found: list[tuple[str, str]], expected: dict[str, int]) -> None:
    got = by_name(signals.lists(signal_input(), hits(*found)))
    assert {k: (r.weight > 0) - (r.weight < 0) for k, r in got.items()} == expected


def test_list_detail_names_entry() -> None:
    (r,) = signals.lists(signal_input(), hits(("block", "user")))
    assert "+13125557788" in r.detail and "api" in r.detail


# --- learned allow ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("learned_at", "attest", "signal"),
    [
        (0, None, "learned.allow"),  # learned unsigned, calls unsigned
        (0, "C", "learned.allow"),
        (3, "A", "learned.allow"),
        (1, "B", "learned.allow"),
        (3, "C", "learned.weaker_identity"),  # learned with A, now only C: spoof guard
        (3, None, "learned.weaker_identity"),
        (2, "C", "learned.weaker_identity"),
    ],
)
def test_learned_allow_needs_identity_as_strong(
    learned_at: int, attest: str | None, signal: str
) -> None:
    (r,) = signals.learned(signal_input(attest=attest), Learned(learned_at))
    assert r.signal == signal
    assert r.weight == (W.learned_allow if signal == "learned.allow" else 0.0)


def test_failed_verification_is_weakest() -> None:
    (r,) = signals.learned(signal_input(attest="A", verstat=FAILED), Learned(1))
    assert r.signal == "learned.weaker_identity"


def test_not_learned() -> None:
    assert signals.learned(signal_input(), None) == ()


# --- neighbour spoofing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("caller", "callee", "attest", "signal"),
    [
        # the user's own area code and exchange, attest C
        ("+12124567890", "+12124561234", "C", "neighbor.exchange"),
        ("+12124567890", "+12124561234", None, "neighbor.exchange"),
        ("+12124561299", "+12124561234", "C", "neighbor.leading_digits"),
        ("+12124561234", "+12124561234", None, "neighbor.equal"),
        ("tel:+1-212-456-1234", "sip:2124561234@h", None, "neighbor.equal"),
        ("+12129871234", "+12124561234", "C", "neighbor.area_code"),
        ("+13125557788", "+12124561234", "C", None),
        ("+442079460000", "+442079461234", None, "neighbor.exchange"),
        ("+442079460000", "+12124561234", None, None),
        ("anonymous", "+12124561234", None, None),
        ("alice", "+12124561234", None, None),
    ],
)
def test_neighbor(caller: str, callee: str, attest: str | None, signal: str | None) -> None:
    got = signals.neighbor(signal_input(caller, callee, attest=attest))
    if signal is None:
        assert got == ()
        return
    (r,) = got
    assert r.signal == signal
    assert r.weight > 0


def test_neighbor_exchange_attest_c_contribution() -> None:
    """What a subscriber would check: own area code and exchange, attestation C."""
    (r,) = signals.neighbor(signal_input("+12124567890", "+12124561234", attest="C"))
    assert r == Reason("neighbor.exchange", W.neighbor_exchange, r.detail)
    assert "212-456" in r.detail


def test_neighbor_weaker_when_fully_attested() -> None:
    (a,) = signals.neighbor(signal_input("+12124567890", "+12124561234", attest="A"))
    (c,) = signals.neighbor(signal_input("+12124567890", "+12124561234", attest="C"))
    assert 0 < a.weight < c.weight


# --- call patterns ------------------------------------------------------------------------


def stats(kind: str = "ip", key: str = "10.0.0.1", **kw: object) -> KeyStats:
    return KeyStats(kind=kind, key=key, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "signal"),
    [
        ({"attempts_minute": 12}, "pattern.rate_minute"),
        ({"fanout": 30}, "pattern.fanout"),
        ({"concurrent": 15}, "pattern.concurrent"),
        ({"sequential": 2}, "pattern.sequential"),
        ({"repeat_callee": 6}, "pattern.repeat_callee"),
        ({"answer_ratio": 0.05, "outcomes": 20.0}, "pattern.low_answer"),
        ({"short_ratio": 0.9, "mean_duration": 3.0}, "pattern.short_calls"),
        ({"early_cancel_ratio": 0.8, "outcomes": 10.0}, "pattern.early_cancel"),
    ],
)
def test_pattern_signal_fires(kw: dict[str, object], signal: str) -> None:
    got = by_name(signals.patterns(signal_input(), PatternFeatures((stats(**kw),))))
    assert signal in got and got[signal].weight > 0
    assert got[signal].detail.startswith("source IP 10.0.0.1:")


@pytest.mark.parametrize(
    ("kw", "signal"),
    [({"attempts_hour": 80}, "pattern.rate_hour"), ({"attempts_day": 400}, "pattern.rate_day")],
)
def test_long_window_volume_counts_on_the_caller_and_origid_not_the_address(
    kw: dict[str, object], signal: str
) -> None:
    """An address's hour and day describe its provider's day, not this call
    (``patterns.long_volume_kinds``)."""
    for kind, name in (("tn", "caller"), ("origid", "origid")):
        got = by_name(signals.patterns(signal_input(), PatternFeatures((stats(kind, **kw),))))
        assert signal in got and got[signal].detail.startswith(f"{name} 10.0.0.1:")
    assert signals.patterns(signal_input(), PatternFeatures((stats(**kw),))) == ()


@pytest.mark.parametrize(
    "kw",
    [
        {"attempts_minute": 1, "attempts_hour": 3, "attempts_day": 5, "fanout": 3},
        {"answer_ratio": 0.6, "outcomes": 20.0},
        {"short_ratio": 0.1},
        {"sequential": 1},
        {"repeat_callee": 1},
    ],
)
def test_pattern_signal_quiet(kw: dict[str, object]) -> None:
    assert signals.patterns(signal_input(), PatternFeatures((stats(**kw),))) == ()


def test_pattern_graded_and_capped() -> None:
    cap = ReputationConfig().signals.max_multiplier
    w = [
        by_name(signals.patterns(signal_input(), PatternFeatures((stats(fanout=n),))))[
            "pattern.fanout"
        ].weight
        for n in (10, 20, 40, 10_000)
    ]
    assert w[0] == pytest.approx(W.pattern_fanout)
    assert w[0] < w[1] <= w[2] <= w[3] == pytest.approx(W.pattern_fanout * cap)


def test_strongest_key_counts_once() -> None:
    feats = PatternFeatures(
        (stats("tn", "13125557788", fanout=12), stats("ip", "10.0.0.1", fanout=40))
    )
    got = [r for r in signals.patterns(signal_input(), feats) if r.signal == "pattern.fanout"]
    assert len(got) == 1
    assert got[0].detail.startswith("source IP 10.0.0.1") and "also caller" in got[0].detail


def test_new_number_and_urgent_retry() -> None:
    tn = stats("tn", "13125557788", recent_to_callee=2, fanout=1, first_seen_age=60.0)
    got = by_name(signals.patterns(signal_input(), PatternFeatures((tn,))))
    assert got["pattern.urgent_retry"].weight < 0
    assert got["pattern.new_number"].weight > 0
    old = stats("tn", "13125557788", first_seen_age=90 * 86400.0)
    assert signals.patterns(signal_input(), PatternFeatures((old,))) == ()


# --- feedback and source reputation -----------------------------------------------------


@pytest.mark.parametrize(
    ("counts", "signal", "sign"),
    [
        (Counters(unwanted_607=3.0), "feedback.unwanted", +1),
        (Counters(reports_spam=1.0), "feedback.reported_spam", +1),
        (Counters(challenge_failed=2.0), "feedback.challenge_failed", +1),
        (Counters(reports_not_spam=2.0), "feedback.reported_ok", -1),
        (Counters(challenge_passed=1.0), "feedback.challenge_passed", -1),
        (Counters(voicemail_left=1.0), "feedback.voicemail", -1),
    ],
)
def test_feedback(counts: Counters, signal: str, sign: int) -> None:
    (r,) = signals.feedback(signal_input(attest="A"), counts)
    assert r.signal == signal and (r.weight > 0) - (r.weight < 0) == sign


def test_feedback_decays_to_nothing() -> None:
    assert signals.feedback(signal_input(), Counters(unwanted_607=0.01)) == ()
    assert signals.feedback(signal_input(), None) == ()


def test_feedback_grows_with_count_and_is_capped() -> None:
    ws = [signals.feedback(signal_input(), Counters(unwanted_607=n))[0].weight for n in (1, 2, 1e9)]
    assert ws[0] == pytest.approx(W.feedback_unwanted * math.log2(2))
    assert ws[0] < ws[1] < ws[2] == pytest.approx(W.feedback_unwanted * 2.0)


def test_positive_feedback_discounted_without_full_attestation() -> None:
    """A spoofer calling 'from' a good number must not inherit its good name."""
    (a,) = signals.feedback(signal_input(attest="A"), Counters(challenge_passed=3.0))
    (c,) = signals.feedback(signal_input(attest="C"), Counters(challenge_passed=3.0))
    assert a.weight < c.weight < 0
    assert "discounted" in c.detail


@pytest.mark.parametrize(
    ("kind", "counts", "signal", "sign"),
    [
        ("ip", Counters(unwanted_607=4.0), "source.ip.bad", +1),
        ("origid", Counters(challenge_failed=5.0), "source.origid.bad", +1),
        ("spc", Counters(reports_spam=2.0), "source.spc.bad", +1),
        ("origid", Counters(challenge_passed=9.0), "source.origid.good", -1),
    ],
)
def test_source(kind: str, counts: Counters, signal: str, sign: int) -> None:
    (r,) = signals.source(signal_input(), [(kind, "key-1", counts)])
    assert r.signal == signal and (r.weight > 0) - (r.weight < 0) == sign
    assert "key-1" in r.detail


def test_source_unknown() -> None:
    assert signals.source(signal_input(), [("ip", "1.2.3.4", None), ("ip", "x", Counters())]) == ()


def test_spc_volume_does_not_count_but_its_ratios_do() -> None:
    """One SPC signs for a whole carrier: fan-out under it is normal, a 5 % answer ratio not."""
    spc = stats("spc", "1234", fanout=500, attempts_minute=300, answer_ratio=0.05, outcomes=50.0)
    got = by_name(signals.patterns(signal_input(), PatternFeatures((spc,))))
    assert set(got) == {"pattern.low_answer"}


# --- header consistency and source fingerprint ------------------------------------------


@pytest.mark.parametrize(
    ("display", "ua", "expected"),
    [
        ("V123456789012345", None, {"header.display_name"}),
        ('"SPAM? John"', None, {"header.display_name"}),
        ("Scam Likely", None, {"header.display_name"}),
        ("+1 800 555 1234", None, {"header.display_name"}),  # not the caller's number
        ("312-555-7788", None, set()),  # the caller's own number
        ("Alice Smith", None, set()),
        ("Spamalot Theatre", None, set()),
        (None, "friendly-scanner", {"source.scanner_ua"}),
        (None, "sipvicious 0.3.8", {"source.scanner_ua"}),
        (None, "Asterisk PBX 20.1", set()),
        (None, None, set()),
    ],
)
def test_headers(display: str | None, ua: str | None, expected: set[str]) -> None:
    got = by_name(signals.headers(signal_input(display_name=display, user_agent=ua)))
    assert set(got) == expected
    assert all(r.weight > 0 and r.detail for r in got.values())


def test_infrastructure_reasons_are_marked() -> None:
    """Source reputation and patterns seen only on shared keys are infrastructure evidence
    (policy: may divert, never reject); a pattern the caller's own number shows is not."""
    ip_only = PatternFeatures((stats("ip", "10.0.0.1", fanout=40),))
    (r,) = [x for x in signals.patterns(signal_input(), ip_only) if x.signal == "pattern.fanout"]
    assert r.infra
    both = PatternFeatures(
        (stats("tn", "13125557788", fanout=12), stats("ip", "10.0.0.1", fanout=40))
    )
    (r,) = [x for x in signals.patterns(signal_input(), both) if x.signal == "pattern.fanout"]
    assert not r.infra
    (s,) = signals.source(signal_input(), [("ip", "k", Counters(unwanted_607=4.0))])
    assert s.infra
    (f,) = signals.feedback(signal_input(attest="A"), Counters(unwanted_607=3.0))
    assert not f.infra


def test_source_complaints_count_by_their_share() -> None:
    """A provider's honest callers (passes, voicemails, long talks) dilute its campaigns'
    complaints, smoothed by ``signals.source_pseudo_good`` (1): a source with complaints
    only keeps almost the full weight."""
    full = CFG.weights.source_bad * 2.0  # log2(1 + 3) = 2
    (rogue,) = [
        r for r in signals.source(signal_input(), [("ip", "k", Counters(unwanted_607=3.0))])
    ]
    assert rogue.weight == pytest.approx(full * 3.0 / 4.0)
    mixed = signals.source(
        signal_input(),
        [("ip", "k", Counters(unwanted_607=3.0, challenge_passed=5.0, long_calls=4.0))],
    )
    bad = next(r for r in mixed if r.signal == "source.ip.bad")
    assert bad.weight == pytest.approx(full * 3.0 / 13.0)
    assert any(r.signal == "source.ip.good" for r in mixed)


def test_source_complaints_counted_once_across_the_keys_of_one_provider() -> None:
    """The SBC's address and the signing certificate carry the same calls: the same
    complaints on both are one piece of evidence (the strongest key, the others named)."""
    c = Counters(unwanted_607=3.0)
    out = signals.source(signal_input(), [("ip", "a", c), ("spc", "701", c)])
    bads = [r for r in out if r.signal.endswith(".bad")]
    assert len(bads) == 1 and "(also SPC)" in bads[0].detail and bads[0].infra


def test_recent_source_complaints_are_their_own_reason() -> None:
    """A burst of complaints in the last minutes (the book's recent window) is how a
    campaign on a shared source is still seen."""
    out = signals.source(signal_input(), [("ip", "a", Counters(recent_bad=6.0, recent_good=1.0))])
    (r,) = out
    assert r.signal == "source.ip.recent_bad" and r.infra
    assert r.weight == pytest.approx(
        CFG.weights.source_recent_bad * CFG.signals.max_multiplier * 6.0 / 8.0
    )
