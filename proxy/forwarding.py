"""Sending a request on: next-hop choice and §16.6 request forwarding.

- ``_choose_hop`` (§16.5/§16.6 items 6-7): the first Route value (loose routing), else the
  static routes for initial requests and for Request-URIs that name us, else the
  Request-URI itself; ``_route_initial`` for a Request-URI the screener diverted;
- ``_forward`` (§16.6): the copy that goes downstream (Max-Forwards, Record-Route, our Via
  with a branch computed from the request's identity, the screener's extra headers and
  verstat; ``X-Spitwall-Pass`` and the fields the action names dropped) and its client
  transaction, plus Timer C for INVITEs (§16.6 item 11);
- ``_send_cancel`` (§16.10, §9.1): the CANCEL of a forwarded INVITE, in its own client
  transaction, with a 64*T1 wait for the final response after it;
"""

from __future__ import annotations

from .build import build_cancel, tag_verstat
from .context import CallContext
from .engine import CoreEngine
from .routing import NextHop, NoRoute
from .rules import branch_id, forward_headers, hop_from_uri, record_route_uri
from .screen import PASS_HEADER, Divert, Forward
from .sip import Request, SipUri, TelUri
from .transaction import Admission, InviteClient, NonInviteClient, client_key
from .transaction.machine import Transaction
from .transport.base import Peer

DIALOG_CREATING = frozenset({"INVITE", "SUBSCRIBE", "REFER", "NOTIFY"})


class Forwarding(CoreEngine):
    """Next-hop choice and the forwarding half of §16 (mixed into ``ProxyCore``)."""

    def _choose_hop(self, req: Request, initial: bool) -> NextHop | NoRoute:
        routes = req.routes
        if routes:
            first = routes[0].uri
            if not isinstance(first, SipUri):
                return NoRoute(404, "Unsupported Route URI")
            return hop_from_uri(first, "route")
        uri = req.uri
        if isinstance(uri, TelUri):
            return self.router.route("", uri.digits, host_is_ours=True)
        if not isinstance(uri, SipUri):  # an absolute URI: requests get 416 first, an ACK not
            return NoRoute(404, "Unsupported Request-URI")
        if not initial and not self.local.is_our_uri(uri):
            return hop_from_uri(uri, "request-uri")
        return self._route_initial(uri)

    def _route_initial(self, uri: SipUri) -> NextHop | NoRoute:
        hop = self.router.route(uri.host_bare, uri.user, host_is_ours=True)
        if isinstance(hop, NoRoute) and not self.local.is_our_uri(uri):
            return hop_from_uri(uri, "request-uri")
        return hop

    # ---------------------------------------------------------------- forwarding (§16.6)
    def _strict_route(self, req: Request, hop: NextHop) -> tuple[Request, NextHop]:
        """§16.6 item 6 compatibility: the next hop is a strict router."""
        routes = req.routes
        if routes and isinstance(routes[0].uri, SipUri) and not routes[0].uri.lr:
            first = routes[0].uri
            h = req.headers.remove_first_value("route").add("Route", f"<{req.uri}>")
            req = Request(req.method, first, h, req.body)
        return req, hop

    def _forward(
        self, ctx: CallContext, now: float, action: Forward | Divert | None = None
    ) -> None:
        hop = ctx.hop
        assert isinstance(hop, NextHop)
        req, hop = self._strict_route(ctx.request, hop)
        local = self.local.pick(hop.transport, ":" in hop.host)
        if local is None:
            self._local_final(ctx, 503, f"No {hop.transport.upper()} Transport", now)
            return
        branch = branch_id(ctx.received, ctx.received.top_via)
        via = f"SIP/2.0/{local.transport.upper()} {local.hostport()};branch={branch}"
        rrs: list[str] = []
        if self.cfg.record_route and ctx.initial and req.method in DIALOG_CREATING:
            # Outbound-facing first (the callee's route set starts with it); a second entry
            # when the inbound side differs (transport change, §16.6 item 4 / RFC 5658).
            if local.listening:
                rrs.append(record_route_uri(local))
            inl = ctx.in_local
            if inl is not None and (
                not rrs
                or (inl.transport, inl.host, inl.rr_port)
                != (local.transport, local.host, local.rr_port)
            ):
                rrs.append(record_route_uri(inl))
        # X-Spitwall-Pass is never forwarded: the challenge UA's pass token is for the
        # screener only (``InviteFacts.pass_token``); a callee must not see it.
        extra = action.headers if action is not None else ()
        remove = (PASS_HEADER, *action.remove_headers) if action is not None else (PASS_HEADER,)
        headers = forward_headers(
            req, via=via, stamped_top_via=None, record_route=rrs, extra=extra, remove=remove
        )
        if isinstance(action, Forward) and action.verstat:
            headers = tag_verstat(headers, action.verstat)
        fwd = Request(req.method, req.uri, headers, req.body)
        dest = Peer(hop.transport, hop.host, hop.port)
        data = fwd.to_bytes()
        client: Transaction
        if ctx.invite:
            client = InviteClient(data, reliable=dest.reliable, config=self.timers)
        else:
            client = NonInviteClient(data, reliable=dest.reliable, config=self.timers)
        ckey = client_key(branch, req.method)
        admission = self.table.add(ckey, client)
        if admission is Admission.FULL:  # at max_transactions: no state for the branch
            self._local_final(ctx, 503, "Service Unavailable", now, self._overload_headers())
            return
        if admission is not Admission.ADDED:  # our branch is live already: it came back
            self._local_final(ctx, 482, "Loop Detected", now)
            return
        ctx.client, ctx.fwd, ctx.dest, ctx.branch = client, fwd, dest, branch
        self._ctx[ckey] = ctx
        self._by_branch[branch] = ctx
        if ctx.invite:
            ctx.timer_c = now + self.cfg.timers.timer_c
            self._push(ctx.timer_c, ctx)
        self._run(ctx, client, client.start(now), now)  # type: ignore[attr-defined]

    def _send_cancel(self, ctx: CallContext, now: float) -> None:
        if ctx.cancel_sent or ctx.fwd is None or ctx.dest is None:
            return
        ctx.cancel_sent = True
        data = build_cancel(ctx.fwd).to_bytes()
        client = NonInviteClient(data, reliable=ctx.dest.reliable, config=self.timers)
        ckey = client_key(ctx.branch, "CANCEL")
        if self.table.add(ckey, client) is not Admission.ADDED:
            return
        ctx.cancel_client = client
        self._ctx[ckey] = ctx
        ctx.cancel_deadline = now + 64 * self.cfg.timers.t1
        self._push(ctx.cancel_deadline, ctx)
        self._run(ctx, client, client.start(now), now)
