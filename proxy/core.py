"""The transaction-stateful proxy of RFC 3261 §16, sans-IO.

Theory of operation
-------------------
Input is ``receive(bytes, peer, now)``, ``handle_timer(now)``, ``screened(key, action)``
and ``send_failed(key)``; output is the list of effects ``drain()`` returns (``Send``,
``Screen``, ``Alias``). No sockets, no clock: the runtime (``proxy.server``) feeds time.

Every request that is not an ACK gets a server transaction (``proxy.transaction``) and, if
it is forwarded, exactly one client transaction (no forking): a ``_Ctx`` ties the two
together with what §16 needs across them (the request as received and as forwarded, where
responses go, Timer C, CANCEL state, the screening decision).

Requests (§16.3 → §16.6):
  retransmission → its server transaction resends the last response (§17.2.3);
  ACK → absorbed by the INVITE server transaction it acknowledges (non-2xx, hop by hop),
        else forwarded statelessly by Route/Request-URI (2xx, §16.11 / RFC 6026);
  CANCEL → matched to the INVITE server transaction (§16.10): 200, then CANCEL on the
        client branch once it has a provisional response; no match → 481;
  validation → 416 (URI scheme), 483 (Max-Forwards 0; OPTIONS answered 200 instead),
        482 (loop: one of our Vias carries the branch we compute now), 420 (Proxy-Require),
        503 + Retry-After (overload or draining);
  route preprocessing (§16.4) → our Route values popped, strict-router R-URI repaired;
  OPTIONS to us (our host, no user part, no Route left) → 200;
  next hop: Route (loose; strict routers get §16.6 item 6), else the static routes for
        initial requests, else the Request-URI; unroutable → 404 / 503 with the reason;
  new dialog-creating INVITE → 100 Trying, then ``Screen`` once; the decision is carried
        out (forward tagged, divert, reject);
  forward (§16.6) → Max-Forwards-1 (or 70), Record-Route ``;lr`` on dialog-creating
        requests (two when the transport or address family changes), our Via with a
        branch hashed from the request's identity.
Responses (§16.7): matched by top Via branch + CSeq method; 100 stops there, other
provisional and final responses go upstream through the server transaction with our Via
removed; non-2xx finals are ACKed by the client transaction. Stray responses are dropped
(counted), except 2xx to INVITE carrying our Via, which are forwarded statelessly so a
callee's 2xx retransmissions reach the caller after our transaction has ended
(``proxy.stray_responses = "forward"`` forwards every stray response with our Via).
Timers: Timer C (§16.6 item 11) CANCELs a ringing branch; if no final response follows
within 64*T1 the caller gets 408. Client timeout → 408, transport failure → 503.
"""

from __future__ import annotations

import heapq
import logging
from itertools import count
from typing import cast

from .build import (
    build_ack,
    build_cancel,
    divert_uri,
    invite_facts,
    strip_divert_params,
    tag_verstat,
)
from .config import ProxyConfig
from .dialogs import Answered, DialogOutcomes
from .effects import Alias, Effect, Screen, Send
from .metrics import ProxyMetrics
from .prefixes import compile_trunk_names
from .ratelimit import RateLimiter
from .ratelimit import Verdict as RateVerdict
from .routing import NextHop, NoRoute, Router
from .rules import (
    Locality,
    branch_id,
    forward_headers,
    hop_from_uri,
    is_loop,
    pop_own_routes,
    record_route_uri,
    reply_peer,
    via_target,
)
from .screen import (
    Action,
    Divert,
    Forward,
    IgnoreOutcomes,
    InviteFacts,
    Outcome,
    OutcomeObserver,
    Reject,
)
from .sip import (
    Limits,
    Request,
    Response,
    SipParseError,
    SipUri,
    TelUri,
    Via,
    parse_message,
    parse_via,
)
from .sip.reply import error_response, make_response, stable_tag
from .sip.uri import AbsoluteUri
from .transaction import (
    Admission,
    InviteClient,
    InviteServer,
    Key,
    NeedAck,
    NonInviteClient,
    NonInviteServer,
    PassRequest,
    PassResponse,
    Terminated,
    Timeout,
    TimerConfig,
    TransactionTable,
    TransportFailure,
    client_key,
    legacy_server_key,
    server_key,
)
from .transaction import Send as TxSend
from .transaction.machine import Transaction
from .transport.base import LocalAddress, Peer

log = logging.getLogger("spitwall.proxy.core")

DIALOG_CREATING = frozenset({"INVITE", "SUBSCRIBE", "REFER", "NOTIFY"})
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, PRACK, UPDATE, INFO, MESSAGE, NOTIFY, SUBSCRIBE, REFER"


class _Ctx:
    """One server transaction and its (single) client branch."""

    __slots__ = (
        "branch",
        "cancel_client",
        "cancel_deadline",
        "cancel_sent",
        "cancel_wanted",
        "client",
        "decision_id",
        "dest",
        "facts",
        "final_code",
        "final_sent",
        "fwd",
        "hop",
        "id",
        "in_local",
        "initial",
        "invite",
        "provisional",
        "received",
        "request",
        "screening",
        "server",
        "stamped",
        "timer_c",
        "to_tag",
        "upstream",
    )

    def __init__(
        self,
        cid: int,
        request: Request,
        received: Request,
        stamped: Request,
        server: InviteServer | NonInviteServer,
        upstream: Peer,
        in_local: LocalAddress | None,
        hop: NextHop | NoRoute | None,
    ) -> None:
        self.id = str(cid)
        self.request = request
        """After route preprocessing and Via stamping: what we forward."""
        self.received = received
        """As received (branch computation uses it)."""
        self.stamped = stamped
        """As received plus received/rport on the top Via: what local responses copy."""
        self.server = server
        self.upstream = upstream
        self.in_local = in_local
        self.hop = hop
        self.invite = request.method == "INVITE"
        self.initial = request.to.tag is None
        self.client: Transaction | None = None
        self.cancel_client: Transaction | None = None
        self.fwd: Request | None = None
        self.dest: Peer | None = None
        self.branch = ""
        self.provisional = False
        self.final_sent = False
        self.final_code = 0
        self.cancel_wanted = False
        self.cancel_sent = False
        self.timer_c: float | None = None
        self.cancel_deadline: float | None = None
        self.screening = False
        self.facts: InviteFacts | None = None
        self.decision_id: str | None = None
        self.to_tag: str | None = None


class ProxyCore:
    def __init__(
        self,
        cfg: ProxyConfig,
        *,
        local: list[LocalAddress],
        router: Router | None = None,
        metrics: ProxyMetrics | None = None,
        observer: OutcomeObserver | None = None,
        limiter: RateLimiter | None = None,
        wall_offset: float = 0.0,
    ) -> None:
        self.cfg = cfg
        self.local = Locality(local, cfg.domains)
        self.router = router or Router(cfg.routes, cfg.default_next_hop)
        self.metrics = metrics or ProxyMetrics()
        self.observer = observer or IgnoreOutcomes()
        self.limiter = limiter
        self.wall_offset = wall_offset
        self.trunks = compile_trunk_names(cfg.trunks)  # [proxy.trunks] → InviteFacts.trunk
        t = cfg.timers
        self.timers = TimerConfig(t1=t.t1, t2=t.t2, t4=t.t4, timer_d=64 * t.t1)
        self.limits = Limits(
            cfg.limits.max_message_size, cfg.limits.max_headers, cfg.limits.max_header_length
        )
        self.table = TransactionTable(cfg.limits.max_transactions)
        self.dialogs = DialogOutcomes()
        self.draining = False
        """Shutting down: new dialogs get 503, in-dialog requests still pass."""
        self.overloaded = False
        """Set by the runtime while the event loop lags: new dialogs get 503 + Retry-After."""
        self._ctx: dict[Key, _Ctx] = {}
        self._by_branch: dict[str, _Ctx] = {}
        self._screening: dict[str, _Ctx] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._timed: dict[str, _Ctx] = {}
        self._seq = count()
        self._ids = count(1)
        self._out: list[Effect] = []

    # ---------------------------------------------------------------- runtime surface
    @property
    def live(self) -> int:
        return len(self.table)

    def drain(self) -> list[Effect]:
        out, self._out = self._out, []
        return out

    def get_timer(self) -> float | None:
        t = self.table.get_timer()
        heap = self._heap
        while heap and not self._valid(heap[0]):
            heapq.heappop(heap)
        if heap and (t is None or heap[0][0] < t):
            return heap[0][0]
        return t

    def handle_timer(self, now: float) -> None:
        for tx, actions in self.table.handle_timer(now):
            ctx = self._ctx.get(cast(Key, tx.key))
            if ctx is not None:
                self._run(ctx, tx, actions, now)
        heap = self._heap
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            if self._valid(entry):
                self._proxy_timer(self._timed[entry[2]], entry[0], now)

    def receive(self, data: bytes, peer: Peer, now: float) -> None:
        if len(data) < 8 and not data.strip(b"\r\n \t"):
            return  # keep-alive
        is_response = data.startswith(b"SIP/")
        if not is_response and self.limiter is not None:
            verdict = self.limiter.check(peer.host, now)
            if verdict is not RateVerdict.ALLOW:
                self._shed(data, peer, verdict)
                return
        try:
            msg = parse_message(data, self.limits)
        except SipParseError as err:
            self._parse_failed(err, peer)
            return
        try:
            if isinstance(msg, Request):
                self._request(msg, peer, now)
            else:
                self._response(msg, data, now)
        except SipParseError as err:  # a lazily parsed header view was malformed
            err.with_context(
                headers=msg.headers,
                is_request=isinstance(msg, Request),
                method=msg.method if isinstance(msg, Request) else None,
            )
            self._parse_failed(err, peer)

    def screened(
        self,
        key: str,
        action: Action | None,
        now: float,
        *,
        latency: float = 0.0,
        timed_out: bool = False,
    ) -> None:
        """The screener's decision for ``Screen(key)`` (None: forward unscreened)."""
        ctx = self._screening.pop(key, None)
        if ctx is None or not ctx.screening:
            return
        ctx.screening = False
        if ctx.final_sent:
            return  # CANCELled while screening
        action = action if action is not None else Forward(note="timeout" if timed_out else "error")
        kind = type(action).__name__.lower()
        self.metrics.screening_outcome(kind)
        ctx.decision_id = getattr(action, "decision_id", None) or None
        log.info(
            "screened",
            extra={
                "call_id": ctx.request.call_id,
                "action": kind,
                "latency_ms": round(latency * 1000, 2),
                "note": getattr(action, "note", ""),
            },
        )
        if isinstance(action, Reject):
            self._local_final(ctx, action.code, action.reason, now, action.headers)
            return
        if isinstance(action, Divert):
            try:
                uri = divert_uri(action.target, ctx.request.uri, action.decision_id)
            except SipParseError as exc:
                log.error(
                    "bad divert target %r: %s; forwarding",
                    action.target,
                    exc,
                    extra={"call_id": ctx.request.call_id},
                )
                self._forward(ctx, now)
                return
            ctx.request = ctx.request.with_uri(uri)
            ctx.hop = (
                self._route_initial(uri)
                if self.local.is_our_uri(uri)
                else hop_from_uri(uri, "divert")
            )
            if isinstance(ctx.hop, NoRoute):
                self._local_final(ctx, ctx.hop.status, ctx.hop.reason, now)
                return
        self._forward(ctx, now, action)

    def stream_error(self, err: SipParseError, peer: Peer) -> None:
        """A TCP/TLS stream could not be framed: answer it if possible (it closes next)."""
        self._parse_failed(err, peer)

    def send_failed(self, key: str, now: float) -> None:
        """A stream connection to the branch's next hop could not be made (→ 503)."""
        ctx = self._by_branch.get(key)
        if ctx is not None and ctx.client is not None:
            self._run(ctx, ctx.client, ctx.client.transport_error(now), now)

    # ---------------------------------------------------------------- requests
    def _request(self, req: Request, peer: Peer, now: float) -> None:
        m = req.method
        self.metrics.request(m)
        vias = req.vias
        top = vias[0]
        stamped = top.with_received_rport(peer.host, peer.port)
        if stamped is not top:
            req_st = req.with_headers(req.headers.replace_first_value("via", str(stamped)))
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
        if is_loop(req, vias, self.local):
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
            self.metrics.overload.inc()
            self._reply(
                req_st,
                key,
                peer,
                upstream,
                503,
                "Service Unavailable",
                now,
                (("Retry-After", str(self.cfg.limits.retry_after)),),
            )
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
            self.metrics.overload.inc()
            self._reply(
                req_st,
                None,
                peer,
                upstream,
                503,
                "Service Unavailable",
                now,
                (("Retry-After", str(self.cfg.limits.retry_after)),),
            )
            return
        in_local = self.local.pick(peer.transport, ":" in peer.host)
        ctx = _Ctx(next(self._ids), routed, req, req_st, server, upstream, in_local, hop)
        self._ctx[key] = ctx
        if m == "INVITE":
            trying = make_response(req_st, 100, "Trying").to_bytes()
            self._run(ctx, server, server.send_response(100, trying, now), now)
            if initial:
                ctx.screening = True
                ctx.facts = invite_facts(routed, peer, now + self.wall_offset, self.trunks)
                self._screening[ctx.id] = ctx
                self._out.append(Screen(ctx.id, ctx.facts))
                return
        if m == "BYE":
            outcome = self.dialogs.bye(req.call_id or "", req.from_.tag, now)
            if outcome is not None:
                self._observe(outcome)
        self._forward(ctx, now)

    def _server_key(self, req: Request, top: Via, method: str) -> Key:
        branch = top.branch
        if branch is not None and top.is_rfc3261_branch:
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
        assert isinstance(uri, SipUri)
        if not initial and not self.local.is_our_uri(uri):
            return hop_from_uri(uri, "request-uri")
        return self._route_initial(uri)

    def _route_initial(self, uri: SipUri) -> NextHop | NoRoute:
        hop = self.router.route(uri.host_bare, uri.user, host_is_ours=True)
        if isinstance(hop, NoRoute) and not self.local.is_our_uri(uri):
            return hop_from_uri(uri, "request-uri")
        return hop

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
            and self.local.is_our_uri(routed.uri)
            and getattr(routed.uri, "user", 1) is None
        ):
            return  # addressed to us
        hop = self._choose_hop(routed, initial=False)
        if isinstance(hop, NoRoute):
            self.metrics.drop("ack_no_route")
            return
        self._stateless(routed, req, hop)

    def _stateless(self, req: Request, received: Request, hop: NextHop) -> None:
        req, hop = self._strict_route(req, hop)
        local = self.local.pick(hop.transport, ":" in hop.host)
        if local is None:
            self.metrics.drop("no_transport")
            return
        branch = branch_id(received, received.vias[0])
        via = f"SIP/2.0/{local.transport.upper()} {local.hostport()};branch={branch}"
        fwd = Request(
            req.method, req.uri, forward_headers(req, via=via, stamped_top_via=None), req.body
        )
        self._out.append(
            Send(fwd.to_bytes(), Peer(hop.transport, hop.host, hop.port), request=True)
        )

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
            ictx.screening = False
            self._screening.pop(ictx.id, None)
            self._local_final(ictx, 487, "Request Terminated", now)
        elif ictx.provisional:
            self._send_cancel(ictx, now)
        # else: §9.1 — the CANCEL waits for a provisional response (sent in _branch_response)

    # ---------------------------------------------------------------- forwarding (§16.6)
    def _strict_route(self, req: Request, hop: NextHop) -> tuple[Request, NextHop]:
        """§16.6 item 6 compatibility: the next hop is a strict router."""
        routes = req.routes
        if routes and isinstance(routes[0].uri, SipUri) and not routes[0].uri.lr:
            first = routes[0].uri
            h = req.headers.remove_first_value("route").add("Route", f"<{req.uri}>")
            req = Request(req.method, first, h, req.body)
        return req, hop

    def _forward(self, ctx: _Ctx, now: float, action: Forward | Divert | None = None) -> None:
        hop = ctx.hop
        assert isinstance(hop, NextHop)
        req, hop = self._strict_route(ctx.request, hop)
        local = self.local.pick(hop.transport, ":" in hop.host)
        if local is None:
            self._local_final(ctx, 503, f"No {hop.transport.upper()} Transport", now)
            return
        branch = branch_id(ctx.received, ctx.received.vias[0])
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
        extra = action.headers if action is not None else ()
        headers = forward_headers(req, via=via, stamped_top_via=None, record_route=rrs, extra=extra)
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
        if self.table.add(ckey, client) is not Admission.ADDED:
            self._local_final(ctx, 482, "Loop Detected", now)
            return
        ctx.client, ctx.fwd, ctx.dest, ctx.branch = client, fwd, dest, branch
        self._ctx[ckey] = ctx
        self._by_branch[branch] = ctx
        if ctx.invite:
            ctx.timer_c = now + self.cfg.timers.timer_c
            self._push(ctx.timer_c, ctx)
        self._run(ctx, client, client.start(now), now)  # type: ignore[attr-defined]

    def _send_cancel(self, ctx: _Ctx, now: float) -> None:
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

    # ---------------------------------------------------------------- responses (§16.7)
    def _response(self, resp: Response, data: bytes, now: float) -> None:
        via = resp.top_via
        if via is None or via.branch is None:
            self.metrics.drop("response_without_via")
            return
        key = client_key(via.branch, resp.cseq.method)
        ctx = self._ctx.get(key)
        tx = self.table.get(key)
        if ctx is None or tx is None:
            self._stray(resp, via)
            return
        self._run(ctx, tx, tx.receive_response(resp.status, data, now), now, resp)  # type: ignore[attr-defined]

    def _stray(self, resp: Response, via: Via) -> None:
        b = via.branch or ""
        ours = b.startswith("z9hG4bKsw") and self.local.is_ours(via.host_bare, via.port)
        two_xx_invite = 200 <= resp.status < 300 and resp.cseq.method == "INVITE"
        if not ours or not (two_xx_invite or self.cfg.stray_responses == "forward"):
            self.metrics.drop("stray_response")
            return
        up = resp.with_headers(resp.headers.remove_first_value("via"))
        target = via_target(up)
        if target is None:
            self.metrics.drop("stray_response")
            return
        self.metrics.response(resp.status, "relayed")
        self._out.append(Send(up.to_bytes(), target))

    def _branch_response(self, ctx: _Ctx, status: int, resp: Response, now: float) -> None:
        if ctx.invite:
            if status < 200:
                ctx.provisional = True
                if ctx.timer_c is not None:
                    ctx.timer_c = now + self.cfg.timers.timer_c  # §16.7 item 2: reset
                    self._push(ctx.timer_c, ctx)
                if ctx.cancel_wanted and not ctx.cancel_sent:
                    self._send_cancel(ctx, now)
            else:
                ctx.timer_c = None
        if status == 100:
            return  # §16.7 item 5: 100 is not forwarded
        if ctx.final_sent and not (
            ctx.invite and 200 <= status < 300 and 200 <= ctx.final_code < 300
        ):
            return  # a final response already went upstream (408 after Timer C, 487 …)
        if status < 200 and ctx.final_sent:
            return
        up = resp.with_headers(resp.headers.remove_first_value("via"))
        if up.headers.get("via") is None:
            self.metrics.drop("response_for_us")
            return
        if status >= 200:
            first = not ctx.final_sent
            ctx.final_sent, ctx.final_code = True, status
            if first:
                self._final_outcome(ctx, status, now)
                if ctx.invite and status < 300 and ctx.initial and ctx.facts is not None:
                    self.dialogs.answered(
                        Answered(
                            ctx.request.call_id or "",
                            now,
                            ctx.request.from_.tag or "",
                            ctx.decision_id,
                            ctx.facts,
                            self.wall_offset,
                        )
                    )
                self._finished(ctx)
        self.metrics.response(status, "relayed")
        self._run(ctx, ctx.server, ctx.server.send_response(status, up.to_bytes(), now), now)  # type: ignore[attr-defined]

    def _branch_failed(self, ctx: _Ctx, code: int, reason: str, now: float) -> None:
        if ctx.final_sent:
            return
        if ctx.cancel_wanted:
            code, reason = 487, "Request Terminated"
        self._local_final(ctx, code, reason, now)

    # ---------------------------------------------------------------- replies
    def _local_final(
        self,
        ctx: _Ctx,
        code: int,
        reason: str,
        now: float,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        if ctx.final_sent:
            return
        req = ctx.received
        stamped = ctx.stamped
        ctx.to_tag = ctx.to_tag or stable_tag(
            req.call_id or "", req.headers.get("from") or "", "sw"
        )
        resp = make_response(stamped, code, reason, to_tag=ctx.to_tag, headers=headers)
        ctx.final_sent, ctx.final_code = True, code
        self._final_outcome(ctx, code, now)
        self._finished(ctx)
        self.metrics.response(code, "local")
        self._run(ctx, ctx.server, ctx.server.send_response(code, resp.to_bytes(), now), now)  # type: ignore[attr-defined]

    def _reply(
        self,
        req: Request,
        key: Key | None,
        peer: Peer,
        upstream: Peer,
        code: int,
        reason: str,
        now: float,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """A final response generated here. INVITEs get a server transaction, so the ACK
        is absorbed and the response retransmitted over UDP (§17.2.1)."""
        self.metrics.response(code, "local")
        resp = make_response(req, code, reason, headers=headers).to_bytes()
        if req.method == "INVITE" and key is not None:
            server = InviteServer(reliable=peer.reliable, config=self.timers, now=now)
            if self.table.add(key, server) is Admission.ADDED:
                ctx = _Ctx(next(self._ids), req, req, req, server, upstream, None, None)
                ctx.final_sent, ctx.final_code = True, code
                self._finished(ctx)
                self._ctx[key] = ctx
                self._run(ctx, server, server.send_response(code, resp, now), now)
                return
        self._out.append(Send(resp, upstream))

    def _parse_failed(self, err: SipParseError, peer: Peer) -> None:
        resp = error_response(err)
        if resp is None or err.top_via is None:
            self.metrics.drop("unparseable" if err.is_request is not False else "bad_response")
            return
        try:
            target = reply_peer(parse_via(err.top_via.split(",")[0]), peer)
        except SipParseError:
            target = peer  # the Via itself is malformed: answer the source address
        self.metrics.drop("bad_request")
        self.metrics.response(err.status, "local")
        log.info(
            "malformed request: %s",
            err,
            extra={"call_id": err.call_id or "", "source": peer.hostport},
        )
        self._out.append(Send(resp.to_bytes(), target))

    def _shed(self, data: bytes, peer: Peer, verdict: RateVerdict) -> None:
        self.metrics.rate_limited.inc()
        self.metrics.drop("rate_limited")
        if verdict is RateVerdict.BLOCK_START:
            log.warning(
                "rate limit: shedding %s for %ss",
                peer.host,
                self.cfg.rate_limit.block_seconds,
                extra={"source": peer.host},
            )
        if self.cfg.rate_limit.action != "503" or data.startswith(b"ACK"):
            return
        try:
            req = parse_message(data, self.limits)
            if isinstance(req, Request):
                resp = make_response(
                    req,
                    503,
                    "Rate Limited",
                    headers=(("Retry-After", str(int(self.cfg.rate_limit.block_seconds))),),
                )
                self._out.append(Send(resp.to_bytes(), reply_peer(req.vias[0], peer)))
        except SipParseError:
            pass

    # ---------------------------------------------------------------- engine
    def _run(
        self, ctx: _Ctx, tx: Transaction, actions: list, now: float, resp: Response | None = None
    ) -> None:
        for a in actions:
            if isinstance(a, TxSend):
                if tx is ctx.server:
                    self._out.append(Send(a.data, ctx.upstream))
                elif ctx.dest is not None:
                    key = ctx.branch if tx is ctx.client else None
                    self._out.append(Send(a.data, ctx.dest, key, request=True))
            elif isinstance(a, PassResponse):
                if tx is ctx.client:
                    r = resp if resp is not None else parse_message(a.data, self.limits)
                    assert isinstance(r, Response)
                    self._branch_response(ctx, a.status, r, now)
            elif isinstance(a, NeedAck):
                if ctx.fwd is not None and isinstance(tx, InviteClient) and resp is not None:
                    ack = build_ack(ctx.fwd, resp).to_bytes()
                    self._run(ctx, tx, tx.set_ack(ack, now), now)
            elif isinstance(a, Timeout):
                if tx is ctx.client:
                    self._branch_failed(ctx, 408, "Request Timeout", now)
            elif isinstance(a, TransportFailure):
                if tx is ctx.client:
                    self._branch_failed(ctx, 503, "Next Hop Unreachable", now)
            elif isinstance(a, Terminated):
                self._ctx.pop(cast(Key, tx.key), None)
                if tx is ctx.client:
                    self._by_branch.pop(ctx.branch, None)

    def _proxy_timer(self, ctx: _Ctx, deadline: float, now: float) -> None:
        if ctx.final_sent:
            return
        if ctx.timer_c == deadline:  # §16.8 Timer C
            ctx.timer_c = None
            log.info("timer C fired", extra={"call_id": ctx.request.call_id})
            if ctx.provisional:
                self._send_cancel(ctx, now)
            else:
                self._branch_failed(ctx, 408, "Request Timeout", now)
        elif ctx.cancel_deadline == deadline:  # no final response after our CANCEL
            ctx.cancel_deadline = None
            self._branch_failed(ctx, 408, "Request Timeout", now)

    def _push(self, deadline: float, ctx: _Ctx) -> None:
        # The heap holds ids, not contexts: a Timer C entry lives 3 minutes, and keeping
        # every answered call's messages alive that long would cost memory and GC time.
        self._timed[ctx.id] = ctx
        heapq.heappush(self._heap, (deadline, next(self._seq), ctx.id))

    def _valid(self, entry: tuple[float, int, str]) -> bool:
        deadline, _, cid = entry
        ctx = self._timed.get(cid)
        return (
            ctx is not None
            and not ctx.final_sent
            and deadline in (ctx.timer_c, ctx.cancel_deadline)
        )

    def _finished(self, ctx: _Ctx) -> None:
        """The final response went upstream: drop timers and what only mattered before.

        The context stays filed under its transactions until they end (to absorb
        retransmissions and relay 2xx retransmissions), so it keeps only what that needs.
        """
        self._timed.pop(ctx.id, None)
        ctx.timer_c = ctx.cancel_deadline = None
        ctx.received = ctx.stamped = ctx.request = None  # type: ignore[assignment]
        ctx.facts = None

    def _final_outcome(self, ctx: _Ctx, code: int, now: float) -> None:
        if ctx.invite and ctx.initial and ctx.facts is not None:
            self._observe(
                Outcome(
                    "final",
                    ctx.request.call_id or "",
                    now + self.wall_offset,
                    code=code,
                    decision_id=ctx.decision_id,
                    facts=ctx.facts,
                )
            )

    def _observe(self, outcome: Outcome) -> None:
        try:
            self.observer.observe(outcome)
        except Exception:  # an observer bug must not break call handling
            log.exception("outcome observer failed", extra={"call_id": outcome.call_id})
