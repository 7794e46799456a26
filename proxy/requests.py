"""Requests from either side: RFC 3261 §16.3 validation, §16.4 route preprocessing, dispatch.

``_request`` stamps ``received``/``rport`` on the top Via (§18.2.1, RFC 3581), finds the
server transaction (a retransmission is answered by it, §17.2.3), hands ACK and CANCEL to
``proxy.ack_cancel``, then validates (§16.3): 416 for a non-SIP Request-URI, 483 when
Max-Forwards is 0 (OPTIONS answered 200 instead, §11), 482 on a loop (item 4), 420 for
Proxy-Require (item 6), 503 + Retry-After while draining or overloaded. Our own Route
values are popped (§16.4), an OPTIONS to us is answered 200, divert parameters from
outside are stripped, and the next hop is chosen (``proxy.forwarding``); unroutable →
404/503. What remains gets its server transaction and a ``CallContext``: a new INVITE
gets 100 Trying and one ``Screen`` effect (the decision comes back through
``ProxyCore.screened``); anything else is forwarded at once.
"""

from __future__ import annotations

from .ack_cancel import AckAndCancel
from .build import invite_facts, strip_divert_params, trying
from .context import CallContext
from .effects import Alias, Screen
from .routing import NoRoute
from .rules import is_loop, pop_own_routes, reply_peer
from .sip import Request, SipUri
from .sip.uri import AbsoluteUri
from .transaction import Admission, InviteServer, Key, NonInviteServer
from .transaction.machine import Transaction
from .transport.base import Peer

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, PRACK, UPDATE, INFO, MESSAGE, NOTIFY, SUBSCRIBE, REFER"


class RequestHandling(AckAndCancel):
    """The request half of §16 (mixed into ``ProxyCore``)."""

    def _request(self, req: Request, peer: Peer, now: float) -> None:
        m = req.method
        self.metrics.request(m)
        top = req.top_via  # parsed (and cached) by the parser's checks
        assert top is not None  # the parser refuses a request without Via
        stamped = top.with_received_rport(peer.host, peer.port)
        if stamped is not top:
            h = req.headers.replace_first_value("via", str(stamped))
            req_st = Request(req.method, req.uri, h, req.body, req.version)
        else:
            req_st = req
        upstream = reply_peer(top, peer)
        if peer.conn is not None and top.param("alias") is not None:
            self._out.append(Alias(peer.conn, top.host_bare, top.sent_by[1]))
        key = self._server_key(req, top, m)
        if m == "ACK":
            self._ack(req, req_st, key, now)
            return
        ctx = self._ctx.get(key)
        if ctx is not None:  # retransmission (§17.2.3)
            self._run(ctx, ctx.server, ctx.server.receive_request(now), now)
            return
        if m == "CANCEL":
            self._cancel(req_st, top, key, peer, upstream, now)
            return
        # §16.3 request validation
        if isinstance(req.uri, AbsoluteUri):
            self._reply(req_st, key, peer, upstream, 416, "Unsupported URI Scheme", now)
            return
        mf = req.max_forwards
        if mf is not None and mf <= 0:
            if m == "OPTIONS":
                self._reply(req_st, key, peer, upstream, 200, "OK", now, (("Allow", ALLOW),))
            else:
                self._reply(req_st, key, peer, upstream, 483, "Too Many Hops", now)
            return
        if self._several_vias(req) and is_loop(req, req.vias, self.local):
            self.metrics.drop("loop")
            self._reply(req_st, key, peer, upstream, 482, "Loop Detected", now)
            return
        unsupported = req.option_tags("Proxy-Require")
        if unsupported:
            self._reply(
                req_st,
                key,
                peer,
                upstream,
                420,
                "Bad Extension",
                now,
                (("Unsupported", ", ".join(unsupported)),),
            )
            return
        shed_new = (self.draining or self.overloaded) and req.to.tag is None
        if shed_new or self.table.full:
            self._overloaded(req_st, key, peer, upstream, now)
            return
        # §16.4 route information preprocessing
        routed, _ = pop_own_routes(req_st, self.local)
        uri = routed.uri
        if (
            m == "OPTIONS"
            and not routed.routes
            and isinstance(uri, SipUri)
            and uri.user is None
            and self.local.is_our_uri(uri)
        ):
            self._reply(req_st, key, peer, upstream, 200, "OK", now, (("Allow", ALLOW),))
            return
        initial = req.to.tag is None
        if initial and m == "INVITE":
            clean = strip_divert_params(uri)
            if clean is not uri:
                routed = routed.with_uri(clean)
        hop = self._choose_hop(routed, initial)
        if isinstance(hop, NoRoute):
            self._reply(req_st, key, peer, upstream, hop.status, hop.reason, now)
            return
        server: Transaction
        if m == "INVITE":
            server = InviteServer(reliable=peer.reliable, config=self.timers, now=now)
        else:
            server = NonInviteServer(reliable=peer.reliable, config=self.timers, now=now)
        if self.table.add(key, server) is not Admission.ADDED:
            self._overloaded(req_st, None, peer, upstream, now)
            return
        in_local = self.local.pick(peer.transport, ":" in peer.host)
        ctx = CallContext(next(self._ids), routed, req, req_st, server, upstream, in_local, hop)
        self._ctx[key] = ctx
        if m == "INVITE":
            self._run(ctx, server, server.send_response(100, trying(req_st), now), now)
            if initial:
                ctx.facts = invite_facts(routed, peer, now + self.wall_offset, self.trunks)
                self._screening[ctx.id] = ctx
                self._out.append(Screen(ctx.id, ctx.facts))
                return
        if m == "BYE":
            outcome = self.dialogs.bye(req.call_id or "", req.from_.tag, now)
            if outcome is not None:
                self._observe(outcome)
        self._forward(ctx, now)

    def _overloaded(
        self, req: Request, key: Key | None, peer: Peer, upstream: Peer, now: float
    ) -> None:
        """503 + Retry-After: draining, overloaded, or the transaction table is full."""
        retry = self._overload_headers()
        self._reply(req, key, peer, upstream, 503, "Service Unavailable", now, retry)

    @staticmethod
    def _several_vias(req: Request) -> bool:
        """More than one Via element (only then can one of them be ours: §16.3 item 4),
        decided without parsing them: one field without a comma is one element."""
        lines = req.headers.get_all("via")
        return len(lines) > 1 or "," in lines[0]
