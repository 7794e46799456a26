"""Pipeline pieces that detection quality depends on (docs/detection.md "Detection results"):

* with no challenge UA a challenge/voicemail decision is forwarded *tagged*, never bare;
* a subscriber's outgoing call (STI-AS path) teaches the number it called (reciprocity);
* ``[proxy.trunks]`` → ``InviteFacts.trunk`` → ``CallFacts.trunk``, and a trunk's source
  address is no pattern key (one carrier SBC is not one caller).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from attestation.model import Verdict, Verstat
from proxy.build import invite_facts
from proxy.config import ProxyConfig
from proxy.pipeline import CallScreener
from proxy.prefixes import compile_trunk_names
from proxy.screen import Forward, InviteFacts
from proxy.signing import NotSigned, Signed
from proxy.sip import parse_message
from proxy.transport.base import Peer
from reputation.config import ReputationConfig, StoreConfig
from reputation.engine import ScoringEngine
from reputation.learned import IdentityStrength
from reputation.model import ActionKind, Decision, Reason, Score
from reputation.store import Store
from spitwall.settings import build

ENGINE = ScoringEngine(ReputationConfig())
NO_ID = Verdict(verstat=Verstat.NONE, reason="absent")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store.open(tmp_path / "reputation.sqlite3", StoreConfig(batch_window=0.005))
    yield s
    s.close()


@pytest.mark.parametrize("kind", [ActionKind.CHALLENGE, ActionKind.VOICEMAIL])
def test_divert_without_ua_is_forwarded_with_score_header(kind: ActionKind) -> None:
    score = Score(69.0, (Reason("pattern.fanout", 2.5, "source IP 192.0.2.1: 30 callees"),))
    decision = Decision(action=kind, score=score, label="spam-likely", band="likely")
    action = CallScreener(engine=ENGINE)._act(NO_ID, decision, "d1", "12155550100", "12155550123")
    assert isinstance(action, Forward)
    assert action.headers == (
        ("X-Spitwall-Score", '69;label=spam-likely;reasons="pattern.fanout"'),
    )


def test_plain_forward_stays_untagged() -> None:
    decision = Decision(action=ActionKind.FORWARD, score=Score(5.0), label="ok", band="ok")
    action = CallScreener(engine=ENGINE)._act(NO_ID, decision, "d1", "1", "2")
    assert isinstance(action, Forward) and action.headers == ()


async def test_outbound_call_teaches_known_number(store: Store) -> None:
    made = await store.add_user("alice", "user", tns=["+12155550123"])
    assert isinstance(made, tuple), made
    user, _ = made
    screener = CallScreener(engine=ENGINE, store=store)
    signed = Signed("pbx", "id", "A", "o", "12155550123", "13125557788", 1000, "https://x")
    screener._learn_outbound(signed, 1000.0)
    assert store.knows(user.id, "13125557788", IdentityStrength.NONE)
    # unsigned outbound calls were still made by the subscriber
    unsigned = NotSigned("pbx", "signing_error", "boom", "12155550123", "13125550000")
    screener._learn_outbound(unsigned, 1001.0)
    assert store.knows(user.id, "13125550000", IdentityStrength.NONE)
    # a caller TN that is nobody's, or a call without numbers, teaches nothing (no crash)
    screener._learn_outbound(Signed("pbx", "i", "B", "o", "19995550000", "1312", 1, "x"), 2.0)
    screener._learn_outbound(NotSigned("pbx", "no_orig_tn", "none"), 2.0)
    assert not store.knows(user.id, "1312", IdentityStrength.NONE)


INVITE = (
    b"INVITE sip:+12155550123@sw.invalid;user=phone SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK-1\r\n"
    b"From: <sip:+13125557788@carrier.example>;tag=1\r\n"
    b"To: <sip:+12155550123@sw.invalid>\r\n"
    b"Call-ID: trunk-1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
)


def _facts(host: str, cfg: ProxyConfig) -> InviteFacts:
    req = parse_message(INVITE)
    return invite_facts(req, Peer("udp", host, 5060), 1000.0, compile_trunk_names(cfg.trunks))  # type: ignore[arg-type]


def test_trunk_from_config_reaches_call_facts_and_drops_the_ip_key() -> None:
    cfg = build(
        ProxyConfig,
        {
            "trunks": {
                "carrier1": {"sources": ["198.51.100.0/24"]},
                "pbx7": {"sources": ["198.51.100.7"], "kind": "pbx"},
            }
        },
    )
    assert cfg.trunk_sources() == ("198.51.100.0/24", "198.51.100.7")
    facts = _facts("198.51.100.7", cfg)  # most specific prefix wins
    assert facts.trunk == "pbx7" and facts.call_facts().trunk == "pbx7"
    call = _facts("198.51.100.9", cfg).call_facts()
    assert call.trunk == "carrier1"
    caller, _ = ENGINE.numbers(call)
    assert ENGINE.keys_for(call, caller).source_ip == ""  # not a volume key
    other = _facts("203.0.113.5", cfg).call_facts()
    assert other.trunk is None
    assert ENGINE.keys_for(other, ENGINE.numbers(other)[0]).source_ip == "203.0.113.5"
