"""The challenge UA's pass token (``X-Spitwall-Pass``) reaches the screener, never a callee.

The bridged leg of a caller who passed a challenge carries the token; the screener reads
it from ``InviteFacts.pass_token``. Whatever the decision (forward, forward after a
screening timeout, divert), the INVITE that leaves the proxy has no such field, and a
``Forward``/``Divert`` may name further fields to drop.
"""

from __future__ import annotations

import pytest

from proxy.screen import PASS_HEADER, Divert, Forward
from proxy.sip import Request

from .sim import UAS, Sim, invite, respond

TOKEN = "v1.1767225600.c2lnbmVk.abcdef0123456789"
PASS = f"{PASS_HEADER}: {TOKEN}\n"


def _sent_request(sim: Sim) -> Request:
    (req,) = [o.msg for o in sim.sent if isinstance(o.msg, Request)]
    return req


@pytest.mark.parametrize(
    "action",
    [Forward(), Forward(verstat="TN-Validation-Passed", headers=(("X-Spitwall-Score", "3"),))],
)
def test_forwarded_invite_has_no_pass_token_but_the_screener_saw_it(action: Forward) -> None:
    sim = Sim()
    sim.feed(invite(extra=PASS))
    assert sim.screens[0].facts.pass_token == TOKEN
    sim.screened(action)
    fwd = _sent_request(sim)
    assert PASS_HEADER not in fwd.headers
    assert b"x-spitwall-pass" not in sim.sent[-1].raw.lower()
    assert fwd.headers.get("contact") == "<sip:alice@192.0.2.10:5070>"  # the rest is kept


def test_every_spelling_and_every_field_of_the_pass_header_is_dropped() -> None:
    sim = Sim()
    sim.feed(invite(extra=f"x-spitwall-pass: {TOKEN}\nX-SPITWALL-PASS: second\n"))
    sim.screened(Forward())
    assert b"spitwall-pass" not in sim.sent[-1].raw.lower()


def test_screening_timeout_forwards_without_the_pass_token() -> None:
    sim = Sim()
    sim.feed(invite(extra=PASS))
    sim.core.screened(sim.screens[0].key, None, sim.now, timed_out=True)
    sim._collect()
    assert PASS_HEADER not in _sent_request(sim).headers


def test_diverted_invite_has_no_pass_token() -> None:
    sim = Sim()
    sim.feed(invite(extra=PASS))
    sim.screened(Divert("sip:ivr@10.0.0.3:5090", decision_id="d1"))
    fwd = _sent_request(sim)
    assert fwd.uri.host == "10.0.0.3"  # type: ignore[union-attr]
    assert PASS_HEADER not in fwd.headers


def test_bad_divert_target_falls_back_to_forward_without_the_pass_token() -> None:
    sim = Sim()
    sim.feed(invite(extra=PASS))
    sim.screened(Divert("tel:+12155550199"))
    assert PASS_HEADER not in _sent_request(sim).headers


def test_action_names_more_fields_to_drop_and_its_own_headers_survive() -> None:
    sim = Sim()
    sim.feed(invite(extra=PASS + "X-Internal: a\nSubject: hi\nX-Internal: b\n"))
    sim.screened(Forward(remove_headers=("x-internal", "s"), headers=(("X-Internal", "ours"),)))
    fwd = _sent_request(sim)
    assert fwd.headers.get_all("x-internal") == ["ours"]  # removed first, then appended
    assert "subject" not in fwd.headers  # "s" is Subject's compact form
    assert PASS_HEADER not in fwd.headers


def test_divert_names_fields_to_drop() -> None:
    sim = Sim()
    sim.feed(invite(extra="X-Internal: a\n"))
    sim.screened(Divert("sip:ivr@10.0.0.3:5090", remove_headers=("X-Internal",)))
    assert "x-internal" not in _sent_request(sim).headers


def test_in_dialog_reinvite_drops_the_pass_token_too() -> None:
    sim = Sim()
    sim.feed(invite())
    sim.screened(Forward())
    fwd = sim.sent[-1].msg
    assert isinstance(fwd, Request)
    sim.feed(respond(fwd, 200, "OK"), UAS)
    sim.sent.clear()
    route = "Route: <sip:10.0.0.1:5060;lr>\n"
    reinvite = invite(
        branch="z9hG4bK-re1",
        to_tag="b1",
        cseq=2,
        routes=route,
        ruri="sip:bob@10.0.0.2:5080",
        extra=PASS,
    )
    sim.feed(reinvite)
    assert len(sim.screens) == 1  # an in-dialog INVITE is not screened
    fwd2 = _sent_request(sim)
    assert fwd2.cseq.number == 2 and PASS_HEADER not in fwd2.headers


def test_the_proxy_strips_the_field_the_challenge_ua_writes() -> None:
    """Two processes, one field name: ``proxy`` may not import ``challenge`` (architecture
    rules), so each names it; this ties the two spellings together."""
    from challenge.passtoken import HEADER

    assert PASS_HEADER.lower() == HEADER.lower()
