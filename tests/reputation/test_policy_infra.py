"""The rule "infrastructure-only evidence cannot reject" (reputation/policy.py, rule 4).

A carrier or VoIP provider hands over honest customers' calls with a campaign's: evidence
about the source address, origid, SPC (and patterns seen only on those keys) may divert a
call to the challenge, never refuse it; evidence about the caller itself may."""

from __future__ import annotations

import math

import pytest

from reputation.config import PolicyConfig
from reputation.model import ActionKind, Reason
from reputation.policy import caller_score, decide, infrastructure_only, tag_header
from reputation.score import combine

CFG = PolicyConfig()
PRIOR = -2.5

IP_BAD = Reason("source.ip.bad", 2.4, "source IP 192.0.2.1: 7 complaints", infra=True)
ORIGID_BAD = Reason("source.origid.bad", 1.2, "origid x: 3 complaints", infra=True)
SPC_BAD = Reason("source.spc.bad", 1.2, "SPC 123: 3 complaints", infra=True)
IP_FANOUT = Reason("pattern.fanout", 5.0, "source IP 192.0.2.1: 40 callees", infra=True)
IP_RATE = Reason("pattern.rate_hour", 2.0, "source IP 192.0.2.1: 300 calls", infra=True)
TN_FANOUT = Reason("pattern.fanout", 5.0, "caller 15551230000: 40 callees")
ATTEST_C = Reason("shaken.attest_c", 2.0, "C")
USER_BLOCK = Reason("list.user_block", 8.0, "on your block list")
GLOBAL_BLOCK = Reason("list.global_block", 4.0, "global block list")
UNWANTED = Reason("feedback.unwanted", 2.4, "607s on the number")
NEIGHBOUR = Reason("neighbor.exchange", 1.2, "same exchange")
SOURCE_GOOD = Reason("source.ip.good", -1.2, "passes", infra=True)


@pytest.mark.parametrize(
    ("reasons", "action"),
    [
        # only shared infrastructure: at most a challenge, however high the score
        ((IP_BAD, IP_FANOUT, IP_RATE), ActionKind.CHALLENGE),
        ((IP_BAD, ORIGID_BAD, SPC_BAD, IP_FANOUT, IP_RATE, ATTEST_C), ActionKind.CHALLENGE),
        # the caller's own number shows the same behaviour: reject
        ((IP_BAD, TN_FANOUT, IP_RATE), ActionKind.REJECT),
        # list hits and the number's own feedback carry the reject by themselves
        ((IP_BAD, IP_FANOUT, USER_BLOCK), ActionKind.REJECT),
        ((GLOBAL_BLOCK, UNWANTED, ATTEST_C, IP_FANOUT), ActionKind.REJECT),
        ((UNWANTED, ATTEST_C, NEIGHBOUR, TN_FANOUT), ActionKind.REJECT),
        # below the reject band the rule changes nothing
        ((IP_BAD, IP_RATE), ActionKind.VOICEMAIL),
        ((IP_RATE,), ActionKind.FORWARD_TAGGED),
        # good evidence on the source is kept in the caller's score: still capped
        ((IP_FANOUT, IP_RATE, SOURCE_GOOD), ActionKind.CHALLENGE),
    ],
)
def test_infrastructure_evidence_diverts_but_never_rejects(
    reasons: tuple[Reason, ...], action: ActionKind
) -> None:
    s = combine(PRIOR, reasons)
    assert decide(s, CFG).action is action, (s.value, caller_score(s))


def test_caller_score_leaves_out_positive_infrastructure_only() -> None:
    s = combine(PRIOR, (IP_BAD, ATTEST_C, SOURCE_GOOD))
    # the positive infra reason goes, the negative one (good evidence) stays
    want = 100.0 / (1.0 + math.exp(-(PRIOR + 2.0 - 1.2)))
    assert caller_score(s) == pytest.approx(want, abs=0.01)
    plain = combine(PRIOR, (ATTEST_C,))
    assert caller_score(plain) == plain.value


def test_user_choices_and_overrides_keep_their_meaning() -> None:
    s = combine(PRIOR, (IP_BAD, IP_FANOUT, IP_RATE))
    assert infrastructure_only(s, CFG)

    class RejectLikely:
        monitor = None
        strictness = None
        anonymous = None
        reject_code = None

        def band_action(self, band: str) -> str | None:
            return "reject" if band in ("likely", "spam", "certain") else None

    # a user who rejects from "likely" up: infra evidence still only challenges…
    assert decide(s, CFG, RejectLikely()).action is ActionKind.CHALLENGE
    # …but caller evidence that reaches "likely" on its own is rejected as chosen
    t = combine(PRIOR, (IP_BAD, IP_FANOUT, UNWANTED, ATTEST_C))
    assert decide(t, CFG, RejectLikely()).action is ActionKind.REJECT
    # blocking overrides are caller evidence: still rejected
    d = combine(PRIOR, (IP_BAD,), override="dno")
    assert decide(d, CFG).action is ActionKind.REJECT
    # monitor mode: forwarded, and the intended action is the capped one
    m = decide(s, PolicyConfig(monitor=True))
    assert (m.action, m.intended) == (ActionKind.FORWARD, ActionKind.CHALLENGE)


def test_tag_header_for_untagged_decisions() -> None:
    s = combine(PRIOR, (IP_BAD, IP_FANOUT, IP_RATE))
    d = decide(s, CFG)
    assert d.headers == ()  # the policy does not tag challenges itself
    name, value = tag_header(d, CFG)
    assert name == "X-Spitwall-Score"
    assert value.startswith(f"{round(s.value)};label=spam-certain;reasons=")
