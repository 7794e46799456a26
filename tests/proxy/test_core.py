"""RFC 3261 §16 rules of ProxyCore, without sockets: bytes and virtual time in, bytes out."""

from __future__ import annotations

from urllib.parse import unquote

from proxy.screen import Divert, Forward, Reject
from proxy.sip import Request, Response, SipUri

from .sim import CALLER, PROXY, UAS, Sim, invite, respond


def _forwarded_invite(sim: Sim, **kw) -> Request:
    sim.feed(invite(**kw))
    out = sim.screened(Forward())
    (fwd,) = [o for o in out if isinstance(o.msg, Request)]
    assert isinstance(fwd.msg, Request)
    return fwd.msg


def test_invite_gets_100_then_is_screened_once_and_forwarded_per_16_6() -> None:
    sim = Sim()
    out = sim.feed(invite(via_host="caller.example:5070"))
    assert [o.msg.status for o in out] == [100]  # type: ignore[union-attr]
    assert out[0].peer == CALLER  # rport: back to the source port
    assert len(sim.screens) == 1
    f = sim.screens[0].facts
    assert (f.caller_user, f.callee_user, f.source_ip, f.call_id) == (
        "+12155550100",
        "+12155550123",
        "192.0.2.10",
        "call-1@caller",
    )
    # A retransmission while screening is absorbed: the 100 again, no second screening.
    out = sim.feed(invite(via_host="caller.example:5070"))
    assert [o.msg.status for o in out] == [100]  # type: ignore[union-attr]
    assert len(sim.screens) == 1
    out = sim.screened(Forward())
    (o,) = out
    fwd = o.msg
    assert isinstance(fwd, Request)
    vias = fwd.vias
    assert len(vias) == 2
    assert vias[0].host == PROXY and vias[0].port == 5060
    assert vias[0].branch.startswith("z9hG4bKsw")  # type: ignore[union-attr]
    assert vias[1].received == "192.0.2.10" and vias[1].rport == 5070  # RFC 3581
    assert fwd.max_forwards == 69
    assert fwd.headers.get("record-route") == f"<sip:{PROXY}:5060;lr>"
    assert str(fwd.uri) == f"sip:+12155550123@{PROXY}"


def test_forwarded_to_default_next_hop() -> None:
    sim = Sim()
    _forwarded_invite(sim)
    assert sim.sent[-1].peer == UAS


def test_missing_max_forwards_is_set_to_70() -> None:
    fwd = _forwarded_invite(Sim(), max_forwards=None)
    assert fwd.max_forwards == 70


def test_responses_routed_by_via_100_absorbed_and_2xx_dialog_routed_by_route() -> None:
    sim = Sim()
    fwd = _forwarded_invite(sim)
    assert sim.feed(respond(fwd, 100, "Trying"), UAS) == []  # §16.7 item 5
    (ring,) = sim.feed(respond(fwd, 180, "Ringing"), UAS)
    assert ring.peer == CALLER and ring.msg.status == 180  # type: ignore[union-attr]
    assert len(ring.msg.vias) == 1  # our Via popped
    sim.now += 2.0
    (ok,) = sim.feed(respond(fwd, 200, "OK"), UAS)
    assert ok.msg.status == 200 and ok.msg.headers.get("record-route")  # type: ignore[union-attr]
    # ACK for the 2xx: no transaction, forwarded by Route to the callee's Contact.
    route = f"Route: <sip:{PROXY}:5060;lr>\n"
    ack = invite(
        method="ACK", branch="z9hG4bK-ack1", to_tag="b1", routes=route, ruri="sip:bob@10.0.0.2:5080"
    )
    (a,) = sim.feed(ack)
    assert a.msg.method == "ACK" and a.peer.host == "10.0.0.2"  # type: ignore[union-attr]
    assert "route" not in a.msg.headers  # our Route popped
    sim.now += 30.0
    bye = invite(
        method="BYE",
        branch="z9hG4bK-bye1",
        to_tag="b1",
        routes=route,
        cseq=2,
        ruri="sip:bob@10.0.0.2:5080",
    )
    (b,) = sim.feed(bye)
    assert b.msg.method == "BYE" and b.peer.port == 5080  # type: ignore[union-attr]
    (b200,) = sim.feed(respond(b.msg, 200, "OK"), UAS)  # type: ignore[arg-type]
    assert b200.peer == CALLER
    outcomes = {o.kind: o for o in sim.observer.outcomes}
    assert outcomes["final"].code == 200
    assert outcomes["bye"].by == "caller" and abs(outcomes["bye"].duration - 30.0) < 1e-6


def test_non_2xx_is_acked_hop_by_hop_and_callers_ack_absorbed() -> None:
    sim = Sim()
    fwd = _forwarded_invite(sim)
    out = sim.feed(respond(fwd, 486, "Busy Here"), UAS)
    kinds = sorted((o.peer.host, getattr(o.msg, "method", None) or o.msg.status) for o in out)  # type: ignore[union-attr]
    assert kinds == [("10.0.0.2", "ACK"), ("192.0.2.10", 486)]
    ack = next(o for o in out if isinstance(o.msg, Request)).msg
    assert ack.vias[0].branch == fwd.vias[0].branch  # §17.1.1.3
    assert sim.feed(invite(method="ACK", to_tag="b1")) == []  # absorbed by the server txn


def test_cancel_matched_200_then_cancel_downstream_then_487_relayed() -> None:
    sim = Sim()
    fwd = _forwarded_invite(sim)
    sim.feed(respond(fwd, 180, "Ringing"), UAS)
    out = sim.feed(invite(method="CANCEL"))
    by_peer = {(o.peer.host, getattr(o.msg, "method", None) or o.msg.status) for o in out}  # type: ignore[union-attr]
    assert by_peer == {("192.0.2.10", 200), ("10.0.0.2", "CANCEL")}
    cancel = next(o.msg for o in out if isinstance(o.msg, Request))
    assert cancel.vias[0].branch == fwd.vias[0].branch and cancel.cseq.method == "CANCEL"
    sim.feed(respond(cancel, 200, "OK"), UAS)
    out = sim.feed(respond(fwd, 487, "Request Terminated"), UAS)
    assert {(o.peer.host, getattr(o.msg, "method", None) or o.msg.status) for o in out} == {  # type: ignore[union-attr]
        ("10.0.0.2", "ACK"),
        ("192.0.2.10", 487),
    }
    assert [o.kind for o in sim.observer.outcomes] == ["cancel", "final"]


def test_cancel_while_screening_answers_487_and_forwards_nothing() -> None:
    sim = Sim()
    sim.feed(invite())
    out = sim.feed(invite(method="CANCEL"))
    assert sorted(o.msg.status for o in out) == [200, 487]  # type: ignore[union-attr]
    assert sim.screened(Forward()) == []


def test_unknown_cancel_gets_481() -> None:
    (o,) = Sim().feed(invite(method="CANCEL", branch="z9hG4bK-none"))
    assert o.msg.status == 481  # type: ignore[union-attr]


def test_timer_b_timeout_sends_408_after_retransmissions() -> None:
    sim = Sim()
    _forwarded_invite(sim)
    out = sim.advance(40.0)
    invites = [o for o in out if isinstance(o.msg, Request) and o.msg.method == "INVITE"]
    assert len(invites) >= 5  # Timer A doubling from T1
    finals = [o for o in out if isinstance(o.msg, Response)]
    assert [o.msg.status for o in finals][:1] == [408] and finals[0].peer == CALLER  # type: ignore[union-attr]


def test_timer_c_cancels_ringing_branch_then_408() -> None:
    sim = Sim(**{"proxy.timers.timer_c": 10.0})
    fwd = _forwarded_invite(sim)
    sim.feed(respond(fwd, 180, "Ringing"), UAS)
    out = sim.advance(10.5)
    assert any(isinstance(o.msg, Request) and o.msg.method == "CANCEL" for o in out)
    out = sim.advance(64 * 0.5 + 1)
    assert [o.msg.status for o in out if isinstance(o.msg, Response)][:1] == [408]  # type: ignore[union-attr]


def test_max_forwards_zero_483_but_options_200() -> None:
    sim = Sim()
    (o,) = sim.feed(invite(max_forwards=0))
    assert o.msg.status == 483  # type: ignore[union-attr]
    (o,) = sim.feed(invite(method="OPTIONS", max_forwards=0, branch="z9hG4bK-o"))
    assert o.msg.status == 200  # type: ignore[union-attr]


def test_options_to_the_proxy_itself_is_answered() -> None:
    (o,) = Sim().feed(invite(method="OPTIONS", ruri=f"sip:{PROXY}:5060"))
    assert o.msg.status == 200 and "allow" in o.msg.headers  # type: ignore[union-attr]


def test_proxy_require_unsupported_gets_420() -> None:
    (o,) = Sim().feed(invite(extra="Proxy-Require: foo, bar\n"))
    assert o.msg.status == 420  # type: ignore[union-attr]
    assert o.msg.headers.get("unsupported") == "foo, bar"


def test_unknown_uri_scheme_gets_416() -> None:
    (o,) = Sim().feed(invite(ruri="http://example.com/x"))
    assert o.msg.status == 416  # type: ignore[union-attr]


def test_loop_detected_482_but_spiral_passes() -> None:
    sim = Sim(**{"proxy.default_next_hop": f"sip:{PROXY}:5060"})
    fwd = _forwarded_invite(sim)
    out = sim.feed(fwd.to_bytes(), sim.sent[-1].peer)  # the request comes back unchanged
    assert [o.msg.status for o in out] == [482]  # type: ignore[union-attr]
    # A spiral (the Request-URI changed on the way) is not a loop.
    sim2 = Sim(**{"proxy.default_next_hop": f"sip:{PROXY}:5060"})
    fwd2 = _forwarded_invite(sim2)
    spiral = Request(fwd2.method, SipUri(PROXY, "+12155550999"), fwd2.headers)
    out = sim2.feed(spiral.to_bytes(), sim2.sent[-1].peer)
    assert [o.msg.status for o in out] == [100]  # type: ignore[union-attr]


def test_malformed_request_with_via_gets_400_naming_the_problem_garbage_dropped() -> None:
    sim = Sim()
    bad = invite().replace("Content-Length: 0", "Content-Length: 99")
    (o,) = sim.feed(bad)
    assert o.msg.status == 400 and o.msg.reason == "Bad Content-Length"  # type: ignore[union-attr]
    assert sim.feed(b"\x00\x01garbage\r\n\r\n") == []
    assert sim.drops("unparseable") == 1


def test_reject_sends_607_with_headers_and_absorbs_ack() -> None:
    sim = Sim()
    sim.feed(invite())
    out = sim.screened(Reject(607, "Unwanted", (("Reason", 'SIP;cause=607;text="Unwanted"'),)))
    (o,) = out
    assert o.msg.status == 607 and o.msg.headers.get("reason")  # type: ignore[union-attr]
    tag = o.msg.to.tag
    assert sim.feed(invite(method="ACK", to_tag=tag or "")) == []
    assert sim.observer.outcomes[-1].code == 607


def test_divert_rewrites_request_uri_with_documented_params() -> None:
    sim = Sim()
    sim.feed(invite())
    (o,) = sim.screened(Divert("sip:ivr@10.0.0.9:5090", decision_id="d-1"))
    assert o.peer.host == "10.0.0.9" and o.peer.port == 5090
    uri = o.msg.uri  # type: ignore[union-attr]
    assert isinstance(uri, SipUri) and uri.user == "ivr"
    assert unquote(uri.param("sw-callee") or "") == f"sip:+12155550123@{PROXY}"
    assert uri.param("sw-decision") == "d-1"


def test_divert_params_from_outside_are_stripped() -> None:
    sim = Sim()
    forged = ";sw-callee=x;sw-decision=y;sw-mode=challenge;sw-caller=1"
    sim.feed(invite(ruri=f"sip:+12155550123@{PROXY}{forged}"))
    assert "sw-" not in sim.screens[0].facts.request_uri
    (o,) = sim.screened(Forward())
    assert "sw-" not in str(o.msg.uri)  # type: ignore[union-attr]


def test_divert_keeps_the_screeners_own_callee_param() -> None:
    sim = Sim()
    sim.feed(invite())
    target = "sip:challenge@10.0.0.9:5090;sw-callee=%2B12155550123;sw-mode=challenge"
    (o,) = sim.screened(Divert(target, decision_id="d-2"))
    uri = o.msg.uri  # type: ignore[union-attr]
    assert isinstance(uri, SipUri)
    assert unquote(uri.param("sw-callee") or "") == "+12155550123"
    assert uri.param("sw-mode") == "challenge" and uri.param("sw-decision") == "d-2"


def test_forward_adds_verstat_to_pai_and_extra_headers() -> None:
    sim = Sim()
    sim.feed(invite(extra="P-Asserted-Identity: <sip:+12155550100@caller.example>\n"))
    (o,) = sim.screened(
        Forward(verstat="TN-Validation-Passed", headers=(("X-Spitwall-Score", "12"),))
    )
    pai = o.msg.headers.get("p-asserted-identity") or ""
    assert ";verstat=TN-Validation-Passed" in pai
    assert o.msg.headers.get("x-spitwall-score") == "12"


def test_routes_by_domain_and_longest_prefix_with_transport() -> None:
    sim = Sim(
        **{
            "proxy.routes": [
                {"prefix": "1215", "next_hop": "sip:10.0.1.1:5060"},
                {"prefix": "121555", "next_hop": "sip:10.0.1.2:5070", "transport": "tcp"},
                {"domain": "carrier.example", "next_hop": "sip:10.0.1.3"},
            ]
        }
    )
    sim.feed(invite())
    (o,) = sim.screened(Forward())
    assert (o.peer.transport, o.peer.host, o.peer.port) == ("tcp", "10.0.1.2", 5070)
    assert o.msg.vias[0].transport == "TCP"  # type: ignore[union-attr]
    # Transport changed (UDP in, TCP out): two Record-Routes, outbound-facing on top.
    assert o.msg.headers.get_all("record-route") == [
        f"<sip:{PROXY}:5060;transport=tcp;lr>",
        f"<sip:{PROXY}:5060;lr>",
    ]
    sim.feed(invite(branch="z9hG4bK-c2", call_id="c2", ruri="sip:bob@carrier.example"))
    (o,) = sim.screened(Forward())
    assert o.peer.host == "10.0.1.3"


def test_unroutable_gets_404() -> None:
    sim = Sim(**{"proxy.default_next_hop": None})
    (o,) = sim.feed(invite())
    assert o.msg.status == 404  # type: ignore[union-attr]


def test_next_hop_unreachable_gets_503() -> None:
    sim = Sim(**{"proxy.default_next_hop": "sip:10.0.0.2:5080;transport=tcp"})
    sim.feed(invite())
    (o,) = sim.screened(Forward())
    sim.core.send_failed(o.key or "", sim.now)
    out = sim._collect()
    assert [x.msg.status for x in out] == [503]  # type: ignore[union-attr]


def test_strict_router_next_hop_gets_request_uri_rewritten() -> None:
    sim = Sim()
    routes = f"Route: <sip:{PROXY}:5060;lr>, <sip:10.0.0.7:5060>\n"
    (o,) = sim.feed(invite(method="BYE", to_tag="b1", routes=routes, ruri="sip:bob@10.0.0.2"))
    assert str(o.msg.uri) == "sip:10.0.0.7:5060"  # type: ignore[union-attr]
    assert o.msg.headers.values("route")[-1] == "<sip:bob@10.0.0.2>"


def test_overload_answers_503_with_retry_after() -> None:
    sim = Sim(**{"proxy.limits.max_transactions": 1})
    # the server transaction takes the last slot; no room for the branch: 503, not 482
    assert [x.msg.status for x in sim.feed(invite())] == [100]  # type: ignore[union-attr]
    (first,) = sim.screened(Forward())
    assert first.msg.status == 503 and first.peer.host == "192.0.2.10"  # type: ignore[union-attr]
    assert first.msg.headers.get("retry-after") == "5"
    (o,) = sim.feed(invite(branch="z9hG4bK-2", call_id="c2"))
    assert o.msg.status == 503 and o.msg.headers.get("retry-after") == "5"  # type: ignore[union-attr]
    assert sim.metrics.overload._value.get() == 2


def test_stray_responses_dropped_but_2xx_with_our_via_forwarded() -> None:
    sim = Sim()
    fwd = _forwarded_invite(sim)
    assert sim.feed(respond(fwd, 180, "Ringing").replace("z9hG4bKsw", "z9hG4bKxx"), UAS) == []
    assert sim.drops("stray_response") == 1
    sim.feed(respond(fwd, 200, "OK"), UAS)
    sim.advance(200)  # every transaction ends
    (o,) = sim.feed(respond(fwd, 200, "OK"), UAS)  # a late 2xx retransmission
    assert o.msg.status == 200 and o.peer.host == "192.0.2.10"  # type: ignore[union-attr]


def test_flooding_source_is_shed_without_hurting_others() -> None:
    sim = Sim(
        **{"proxy.rate_limit.max_requests": 20, "proxy.rate_limit.allow": ["198.51.100.0/24"]}
    )
    from proxy.transport.base import Peer

    flooder = Peer("udp", "203.0.113.66", 5060)
    answered = 0
    for i in range(100):
        answered += len(
            sim.feed(
                invite(
                    method="OPTIONS",
                    branch=f"z9hG4bK-f{i}",
                    ruri=f"sip:{PROXY}",
                    via_host="203.0.113.66",
                ),
                flooder,
            )
        )
    assert answered == 20
    assert sim.metrics.rate_limited._value.get() == 80
    (o,) = sim.feed(invite(method="OPTIONS", ruri=f"sip:{PROXY}", branch="z9hG4bK-ok"))
    assert o.msg.status == 200
    trunk = Peer("udp", "198.51.100.7", 5060)
    n = sum(
        len(
            sim.feed(
                invite(
                    method="OPTIONS",
                    branch=f"z9hG4bK-t{i}",
                    ruri=f"sip:{PROXY}",
                    via_host="198.51.100.7",
                ),
                trunk,
            )
        )
        for i in range(100)
    )
    assert n == 100  # allow-listed trunk
    sim.advance(11.0)
    assert (
        len(
            sim.feed(
                invite(
                    method="OPTIONS",
                    branch="z9hG4bK-after",
                    ruri=f"sip:{PROXY}",
                    via_host="203.0.113.66",
                ),
                flooder,
            )
        )
        == 1
    )


def test_ack_with_absolute_request_uri_is_dropped_not_raised() -> None:
    """An ACK skips §16.3's 416: a non-SIP Request-URI must end as "no route", not crash
    (found by test_fuzz_core)."""
    sim = Sim()
    assert sim.feed(invite(method="ACK", to_tag="b1", ruri="ip:+12155550123@10.0.0.1")) == []
    assert sim.drops("ack_no_route") == 1
