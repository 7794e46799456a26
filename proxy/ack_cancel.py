"""ACK and CANCEL: the two requests that do not get a forwarding transaction of their own.

- ACK (§17.2.1, §16.11, RFC 6026 §8.7): an ACK that matches an INVITE server transaction
  whose final response was a non-2xx is absorbed there (hop by hop); an ACK for a 2xx is
  end to end and has no transaction: it is forwarded statelessly by Route/Request-URI,
  with a branch computed from its identity so a retransmitted ACK gets the same branch;
- CANCEL (§16.10): matched to the INVITE server transaction (same key, method INVITE);
  no match → 481; a match is answered 200 at once, then the INVITE's branch is CANCELled
  once it has a provisional response (§9.1), or answered 487 here while still screening;
- ``_server_key``: the §17.2.3 key of a server transaction (RFC 3261 branch + sent-by, or
  the RFC 2543 fields).
"""

from __future__ import annotations

from .effects import Send
from .forwarding import Forwarding
from .routing import NextHop, NoRoute
from .rules import branch_id, forward_headers, pop_own_routes
from .screen import Outcome
from .sip import Request, Via
from .transaction import InviteServer, Key, PassRequest, legacy_server_key, server_key
from .transport.base import Peer


class AckAndCancel(Forwarding):
    """Inbound ACK and CANCEL (mixed into ``ProxyCore`` through ``RequestHandling``)."""

    def _server_key(self, req: Request, top: Via, method: str) -> Key:
        branch = top.branch
        if branch is not None and len(branch) > 7 and branch.startswith("z9hG4bK"):  # §8.1.1.7
            sent_by = top.host if top.port is None else f"{top.host}:{top.port}"
            return server_key(branch, sent_by, method)
        fields = (
            str(req.uri),
            req.from_.tag or "",
            req.call_id or "",
            str(req.cseq.number),
            str(top),
        )
        return legacy_server_key(fields, method)

    def _ack(self, req: Request, req_st: Request, key: Key, now: float) -> None:
        ctx = self._ctx.get(key)
        if ctx is not None and isinstance(ctx.server, InviteServer):
            actions = ctx.server.receive_ack(now)
            if not any(isinstance(a, PassRequest) for a in actions):
                self._run(ctx, ctx.server, actions, now)
                return  # hop-by-hop ACK for a non-2xx: absorbed (§17.2.1)
        # ACK for a 2xx: no transaction, forwarded statelessly (§16.11, RFC 6026 §8.7).
        mf = req.max_forwards
        if mf is not None and mf <= 0:
            self.metrics.drop("ack_max_forwards")
            return
        routed, _ = pop_own_routes(req_st, self.local)
        if (
            not routed.routes
            and getattr(routed.uri, "user", 1) is None  # the cheap test first
            and self.local.is_our_uri(routed.uri)
        ):
            return  # addressed to us
        hop = self._choose_hop(routed, initial=False)
        if isinstance(hop, NoRoute):
            self.metrics.drop("ack_no_route")
            return
        self._stateless(routed, req, hop)

    def _cancel(
        self, req: Request, top: Via, key: Key, peer: Peer, upstream: Peer, now: float
    ) -> None:
        ikey = self._server_key(req, top, "INVITE")
        ictx = self._ctx.get(ikey)
        if ictx is None or not ictx.invite:
            self._reply(req, key, peer, upstream, 481, "Call/Transaction Does Not Exist", now)
            return
        self._reply(req, key, peer, upstream, 200, "OK", now)
        if ictx.cancel_wanted:
            return  # a retransmitted CANCEL
        if ictx.facts is not None:
            self._observe(
                Outcome(
                    "cancel",
                    req.call_id or "",
                    now + self.wall_offset,
                    decision_id=ictx.decision_id,
                    facts=ictx.facts,
                )
            )
        if ictx.final_sent:
            return
        ictx.cancel_wanted = True
        if ictx.client is None:  # still screening: nothing went downstream
            self._screening.pop(ictx.id, None)
            self._local_final(ictx, 487, "Request Terminated", now)
        elif ictx.provisional:
            self._send_cancel(ictx, now)
        # else: §9.1 — the CANCEL waits for a provisional response (sent in _branch_response)

    def _stateless(self, req: Request, received: Request, hop: NextHop) -> None:
        req, hop = self._strict_route(req, hop)
        local = self.local.pick(hop.transport, ":" in hop.host)
        if local is None:
            self.metrics.drop("no_transport")
            return
        branch = branch_id(received, received.top_via)
        via = f"SIP/2.0/{local.transport.upper()} {local.hostport()};branch={branch}"
        fwd = Request(
            req.method, req.uri, forward_headers(req, via=via, stamped_top_via=None), req.body
        )
        self._out.append(
            Send(fwd.to_bytes(), Peer(hop.transport, hop.host, hop.port), request=True)
        )
