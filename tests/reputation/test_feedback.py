"""Feedback: outcomes become time-decayed counters on the right keys (issue 4 §6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reputation.config import StoreConfig
from reputation.feedback import (
    CallContext,
    Feedback,
    FeedbackConfig,
    IdentityStrength,
    KeyKind,
    LearnedAllowBook,
    OutcomeApplied,
    OutcomeKind,
    ReputationBook,
    UnknownCall,
    identity_strength,
)
from reputation.lists import Invalid
from reputation.model import CallFacts
from reputation.store import Store

from .storekit import FAST, store

__all__ = ["store"]

T0 = 1_800_000_000.0
DAY = 86_400.0
BANK = "18005550199"


def facts(
    call_id: str,
    caller: str = "+" + BANK,
    attest: str | None = "A",
    ip: str = "198.51.100.9",
    origid: str | None = "orig-x",
    t: float = T0,
) -> CallFacts:
    verstat = "TN-Validation-Passed" if attest else "No-TN-Validation"
    return CallFacts(
        call_id=call_id,
        caller=caller,
        callee="15551230001",
        time=t,
        source_ip=ip,
        verstat=verstat,
        attest=attest,
        origid=origid if attest else None,
        spc="7777" if attest else None,
    )


class Sink:
    """Collects background writes instead of running them (pure feedback tests)."""

    def __init__(self) -> None:
        self.writes: list[object] = []

    def __call__(self, fn: object) -> object:
        self.writes.append(fn)
        return None


def make(half_life: float = 30 * DAY) -> tuple[Feedback, Sink]:
    sink = Sink()
    fb = Feedback(
        FeedbackConfig(half_life=half_life), ReputationBook(half_life), LearnedAllowBook(), sink
    )
    return fb, sink


def test_identity_strength() -> None:
    assert identity_strength("TN-Validation-Passed", "A") is IdentityStrength.A
    assert identity_strength("TN-Validation-Passed", "c") is IdentityStrength.C
    assert identity_strength("TN-Validation-Failed", "A") is IdentityStrength.NONE
    assert identity_strength(None, None) is IdentityStrength.NONE
    assert identity_strength("TN-Validation-Passed", "Z") is IdentityStrength.NONE


def test_spoofed_number_is_not_ruined_but_the_source_is() -> None:
    fb, _ = make()
    # the bank calls, fully attested, and people like it
    fb.record_call(
        facts("good", ip="203.0.113.1", origid="bank-origid"),
        user_id=1,
        score=None,
        action="forward",
    )
    fb.record_outcome("good", OutcomeKind.REPORT_NOT_SPAM, now=T0)
    # a campaign spoofs the bank's number without attestation, from its own trunk
    for i in range(50):
        f = facts(f"spoof{i}", attest=None, ip="192.0.2.66")
        fb.record_call(f, user_id=1, score=None, action="forward")
        fb.record_outcome(f.call_id, OutcomeKind.REPORT_SPAM, now=T0)
        fb.record_outcome(f.call_id, OutcomeKind.UNWANTED_607, now=T0)
    tn = fb.book.get(KeyKind.TN, BANK, T0)
    ip = fb.book.get(KeyKind.IP, "192.0.2.66", T0)
    assert tn.reports_spam == 0 and tn.unwanted_607 == 0 and tn.reports_not_spam == 1
    assert tn.calls == 51  # volume is a fact about the number as presented
    assert ip.reports_spam == 50 and ip.unwanted_607 == 50 and ip.calls == 50
    assert fb.book.get(KeyKind.IP, "203.0.113.1", T0).negative == 0


def test_attested_negative_evidence_lands_on_the_number_too() -> None:
    fb, _ = make()
    fb.record_call(facts("c1"), user_id=1, score=None, action="forward")
    r = fb.record_outcome("c1", OutcomeKind.UNWANTED_607, now=T0)
    assert isinstance(r, OutcomeApplied) and r.counters == ("unwanted_607",)
    assert {k for k, _ in r.targets} == {KeyKind.TN, KeyKind.IP, KeyKind.ORIGID, KeyKind.SPC}
    for kind, key in ((KeyKind.TN, BANK), (KeyKind.ORIGID, "orig-x"), (KeyKind.SPC, "7777")):
        assert fb.book.get(kind, key, T0).unwanted_607 == 1


def test_b_attestation_threshold_is_configurable() -> None:
    sink = Sink()
    cfg = FeedbackConfig(tn_evidence_min_strength=IdentityStrength.B)
    fb = Feedback(cfg, ReputationBook(DAY), LearnedAllowBook(), sink)
    fb.record_call(facts("b", attest="B"), user_id=1, score=None, action="forward")
    fb.record_call(facts("c", attest="C"), user_id=1, score=None, action="forward")
    fb.record_outcome("b", OutcomeKind.REPORT_SPAM, now=T0)
    fb.record_outcome("c", OutcomeKind.REPORT_SPAM, now=T0)
    assert fb.book.get(KeyKind.TN, BANK, T0).reports_spam == 1


def test_counters_decay_with_the_half_life() -> None:
    fb, _ = make(half_life=10 * DAY)
    fb.record_call(facts("c1"), user_id=1, score=None, action="forward")
    fb.record_outcome("c1", OutcomeKind.REPORT_SPAM, now=T0, weight=4.0)
    assert fb.book.get("tn", BANK, T0 + 10 * DAY).reports_spam == pytest.approx(2.0)
    assert fb.book.get("tn", BANK, T0 + 20 * DAY).reports_spam == pytest.approx(1.0)
    assert fb.book.get("tn", BANK, T0 + 20 * DAY).first_seen == T0  # not decayed
    # adding later evidence decays the old first
    fb.record_call(facts("c2", t=T0 + 10 * DAY), user_id=1, score=None, action="forward")
    fb.record_outcome("c2", OutcomeKind.REPORT_SPAM, now=T0 + 10 * DAY)
    assert fb.book.get("tn", BANK, T0 + 10 * DAY).reports_spam == pytest.approx(3.0)
    assert fb.book.get("tn", BANK, T0 + 10 * DAY).calls == pytest.approx(1.5)
    # reading in the past (clock skew) never inflates
    assert fb.book.get("tn", BANK, T0).reports_spam == pytest.approx(3.0)
    assert fb.book.prune(T0 + 400 * DAY) and len(fb.book) == 0


def test_outcome_kinds_map_to_counters() -> None:
    fb, _ = make()
    table = [
        (OutcomeKind.CANCEL, None, "cancels"),
        (OutcomeKind.CHALLENGE_PASSED, None, "challenge_passed"),
        (OutcomeKind.CHALLENGE_FAILED, None, "challenge_failed"),
        (OutcomeKind.CHALLENGE_TIMEOUT, None, "challenge_failed"),
        (OutcomeKind.CHALLENGE_HANGUP, None, "challenge_failed"),
        (OutcomeKind.VOICEMAIL_LEFT, None, "voicemail_left"),
        (OutcomeKind.VOICEMAIL_NONE, None, "voicemail_none"),
        (OutcomeKind.FINAL_RESPONSE, 200, "answered"),
        (OutcomeKind.FINAL_RESPONSE, 607, "unwanted_607"),
        (OutcomeKind.FINAL_RESPONSE, 486, None),
        (OutcomeKind.FINAL_RESPONSE, "junk", None),
        (OutcomeKind.BYE, 2.0, "short_calls"),
        (OutcomeKind.BYE, 600.0, "long_calls"),
        (OutcomeKind.BYE, 20.0, "answered"),
        (OutcomeKind.BYE, "nan", "short_calls"),
    ]
    for i, (kind, detail, counter) in enumerate(table):
        fb.record_call(facts(f"k{i}"), user_id=None, score=None, action="forward")
        r = fb.record_outcome(f"k{i}", kind, detail, now=T0)
        assert isinstance(r, OutcomeApplied)
        assert (r.counters[-1] if r.counters else None) == counter, (kind, detail)


def test_bye_counts_answered_once_and_reports_once() -> None:
    fb, _ = make()
    fb.record_call(facts("c1"), user_id=1, score=None, action="forward")
    fb.record_outcome("c1", OutcomeKind.FINAL_RESPONSE, 200, now=T0)
    fb.record_outcome("c1", OutcomeKind.BYE, 3.0, now=T0 + 3)
    fb.record_outcome("c1", OutcomeKind.BYE, 3.0, now=T0 + 3)  # retransmitted BYE
    r = fb.record_outcome("c1", OutcomeKind.REPORT_SPAM, now=T0 + 9)
    r2 = fb.record_outcome("c1", OutcomeKind.REPORT_SPAM, now=T0 + 10)
    assert isinstance(r, OutcomeApplied) and not r.duplicate
    assert isinstance(r2, OutcomeApplied) and r2.duplicate and r2.targets == ()
    c = fb.book.get("tn", BANK, T0 + 10)
    assert (c.answered, c.short_calls, c.reports_spam) == pytest.approx((1, 1, 1), rel=1e-4)
    # a 607 final response and an explicit unwanted_607 are the same evidence
    fb.record_call(facts("c2"), user_id=1, score=None, action="forward")
    fb.record_outcome("c2", OutcomeKind.FINAL_RESPONSE, 607, now=T0)
    fb.record_outcome("c2", OutcomeKind.UNWANTED_607, now=T0)
    assert fb.book.get("tn", BANK, T0).unwanted_607 == pytest.approx(1.0)


def test_unknown_call_is_a_value() -> None:
    fb, sink = make()
    assert fb.record_outcome("nope", OutcomeKind.BYE, 10, now=T0) is UnknownCall.UNKNOWN_CALL
    assert sink.writes == []


def test_learned_allow_ratchets_on_identity_strength() -> None:
    fb, _ = make()
    fb.record_call(facts("c1", attest="C"), user_id=1, score=None, action="forward")
    fb.record_outcome("c1", OutcomeKind.BYE, 120.0, now=T0)
    n = fb.learned.get(1, BANK)
    assert n is not None and n.strength is IdentityStrength.C and n.how == "accepted"
    assert fb.learned.knows(1, BANK, IdentityStrength.C)
    assert not fb.learned.knows(1, BANK, IdentityStrength.NONE)  # a weaker, unsigned call
    assert not fb.learned.knows(2, BANK, IdentityStrength.A)  # another user never talked to it
    fb.record_call(facts("c2", attest="A"), user_id=1, score=None, action="forward")
    fb.record_outcome("c2", OutcomeKind.BYE, 120.0, now=T0 + 1)
    assert not fb.learned.knows(1, BANK, IdentityStrength.C)  # it has shown it can do A
    assert fb.learned.knows(1, BANK, IdentityStrength.A)
    # short calls teach nothing
    fb.record_call(facts("c3", caller="+12025550123"), user_id=1, score=None, action="forward")
    fb.record_outcome("c3", OutcomeKind.BYE, 5.0, now=T0)
    assert fb.learned.get(1, "12025550123") is None


def test_learning_respects_the_user_setting() -> None:
    sink = Sink()
    fb = Feedback(
        FeedbackConfig(),
        ReputationBook(DAY),
        LearnedAllowBook(),
        sink,
        learn_enabled=lambda u: u != 1,
    )
    fb.record_call(facts("c1"), user_id=1, score=None, action="forward")
    fb.record_outcome("c1", OutcomeKind.BYE, 600.0, now=T0)
    assert fb.learned.get(1, BANK) is None


def test_observers_see_calls_and_outcomes() -> None:
    seen: list[str] = []

    class Obs:
        def on_call(self, ctx: CallContext, f: CallFacts) -> None:
            seen.append(f"call:{ctx.call_id}")

        def on_outcome(
            self, ctx: CallContext, kind: OutcomeKind, detail: object, now: float
        ) -> None:
            seen.append(f"{kind.value}:{detail}")

    fb, _ = make()
    fb.observers.append(Obs())
    fb.record_call(facts("c1"), user_id=None, score=None, action="forward")
    fb.record_outcome("c1", "cancel", now=T0)
    assert seen == ["call:c1", "cancel:None"]


def test_memory_of_calls_is_bounded() -> None:
    sink = Sink()
    fb = Feedback(
        FeedbackConfig(max_calls_in_memory=3), ReputationBook(DAY), LearnedAllowBook(), sink
    )
    for i in range(5):
        fb.record_call(facts(f"c{i}"), user_id=None, score=None, action="forward")
    assert fb.context("c0") is None and fb.context("c4") is not None


# ------------------------------------------------------------------------- through the store


async def test_counters_and_learned_survive_restart(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    s = Store.open(path, StoreConfig(batch_window=0.005, half_life_days=10))
    s.feedback.record_call(facts("c1"), user_id=None, score=None, action="forward")
    s.feedback.record_outcome("c1", OutcomeKind.REPORT_SPAM, now=T0)
    s.close()
    s = Store.open(path, StoreConfig(batch_window=0.005, half_life_days=10))
    try:
        c = s.book.get("tn", BANK, T0 + 10 * DAY)
        assert c.reports_spam == pytest.approx(0.5) and c.calls == pytest.approx(0.5)
        assert c.first_seen == T0
    finally:
        s.close()


async def test_reports_through_the_store_are_isolated_and_work_after_restart(
    tmp_path: Path,
) -> None:
    path = tmp_path / "r.sqlite3"
    s = Store.open(path, FAST)
    a, b = await s.add_user("alice", "user"), await s.add_user("bob", "user")
    assert isinstance(a, tuple) and isinstance(b, tuple)
    alice, bob = a[0], b[0]
    s.feedback.record_call(facts("c1"), user_id=alice.id, score=None, action="forward")
    s.close()
    s = Store.open(path, FAST)  # the call context is gone from memory: read back from disk
    try:
        call = (await s.calls_for_user(alice.id))[0]
        assert await s.get_call(call.id, user_id=bob.id) is None
        assert await s.calls_for_user(bob.id) == []
        r = await s.report_call(bob.id, call.id, spam=True, now=T0)
        assert isinstance(r, Invalid)
        r = await s.report_call(alice.id, call.id, spam=True, now=T0)
        assert isinstance(r, OutcomeApplied) and not r.duplicate
        assert s.book.get("tn", BANK, T0).reports_spam == pytest.approx(1.0)
    finally:
        s.close()
    s = Store.open(path, FAST)
    try:
        call = (await s.calls_for_user(alice.id))[0]
        r = await s.report_call(alice.id, call.id, spam=True, now=T0)
        assert isinstance(r, OutcomeApplied) and r.duplicate  # once per call, even across restarts
        assert s.book.get("tn", BANK, T0).reports_spam == pytest.approx(1.0)
        assert call.report == "spam" and call.outcome is None
    finally:
        s.close()


async def test_store_record_outcome_falls_back_to_disk(store: Store) -> None:
    store.feedback.record_call(facts("c9"), user_id=None, score=None, action="challenge")
    await store.write(lambda db: None)
    store.feedback._calls.clear()  # as if evicted
    r = await store.record_outcome("c9", OutcomeKind.CHALLENGE_PASSED, now=T0)
    assert isinstance(r, OutcomeApplied) and r.counters == ("challenge_passed",)
    assert (
        await store.record_outcome("never", OutcomeKind.CANCEL, now=T0) is UnknownCall.UNKNOWN_CALL
    )
    await store.write(lambda db: None)
    events = await store.read(
        lambda db: [tuple(r) for r in db.execute("SELECT call_id, kind FROM feedback_events")]
    )
    assert events == [("c9", "challenge_passed")]


async def test_call_row_outcomes(store: Store) -> None:
    fb = store.feedback
    fb.record_call(facts("x1"), user_id=None, score=None, action="forward")
    fb.record_outcome("x1", OutcomeKind.CANCEL, now=T0)
    fb.record_outcome("x1", OutcomeKind.FINAL_RESPONSE, 487, now=T0)
    fb.record_call(facts("x2"), user_id=None, score=None, action="forward")
    fb.record_outcome("x2", OutcomeKind.FINAL_RESPONSE, 486, now=T0)
    fb.record_call(facts("x3"), user_id=None, score=None, action="forward")
    fb.record_outcome("x3", OutcomeKind.FINAL_RESPONSE, 200, now=T0)
    fb.record_outcome("x3", OutcomeKind.REPORT_NOT_SPAM, now=T0 + 50)
    await store.write(lambda db: None)
    calls = {c.call_id: c for c in await store.recent_calls()}
    assert (calls["x1"].outcome, calls["x1"].final_code) == ("cancel", 487)
    assert calls["x2"].outcome == "failed:486"
    assert (calls["x3"].outcome, calls["x3"].answered, calls["x3"].report) == (
        "answered",
        True,
        "not_spam",
    )


async def test_action_enum_is_stored_by_value(store: Store) -> None:
    from reputation.model import ActionKind

    store.feedback.record_call(facts("e1"), user_id=None, score=None, action=ActionKind.CHALLENGE)
    await store.write(lambda db: None)
    assert [c.action for c in await store.recent_calls()] == ["challenge"]


def test_only_calls_that_rang_the_callee_turn_responses_into_evidence() -> None:
    fb, _ = make()
    fb.record_call(facts("r1"), user_id=1, score=None, action="reject")
    r = fb.record_outcome("r1", OutcomeKind.FINAL_RESPONSE, 607, now=T0)  # our own 607
    assert isinstance(r, OutcomeApplied) and r.counters == ()
    fb.record_call(facts("v1"), user_id=1, score=None, action="voicemail")
    fb.record_outcome("v1", OutcomeKind.FINAL_RESPONSE, 200, now=T0)  # the IVR answered
    fb.record_outcome("v1", OutcomeKind.BYE, 2.0, now=T0)
    r = fb.record_outcome("v1", OutcomeKind.VOICEMAIL_NONE, now=T0)
    assert isinstance(r, OutcomeApplied) and r.counters == ("voicemail_none",)
    c = fb.book.get("tn", BANK, T0)
    assert (c.unwanted_607, c.answered, c.short_calls, c.voicemail_none) == (0, 0, 0, 1)
    assert c.calls == 2
