"""The transaction-stateful proxy of RFC 3261 §16, sans-IO.

Theory of operation
-------------------
Input is ``receive(bytes, peer, now)``, ``handle_timer(now)``, ``screened(key, action)``
and ``send_failed(key)``; output is the list of effects ``drain()`` returns (``Send``,
``Screen``, ``Alias``). No sockets, no clock: the runtime (``proxy.server``) feeds time.

Every request that is not an ACK gets a server transaction (``proxy.transaction``) and, if
it is forwarded, exactly one client transaction (no forking): a ``CallContext``
(``proxy.context``) ties the two together with what §16 needs across them (the request as
received and as forwarded, where responses go, Timer C, CANCEL state, the screening
decision).

Where each part lives: ``proxy.engine`` (shared state, transaction actions → effects,
local final responses), ``proxy.requests`` (§16.3/§16.4 and dispatch), ``proxy.ack_cancel``
(ACK, CANCEL), ``proxy.forwarding`` (next hop, §16.6, CANCEL downstream),
``proxy.responses`` (§16.7, stray responses), ``proxy.timerc`` (Timer C heap); this module
is the runtime surface, the screening decision and what answers malformed input.

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
        branch hashed from the request's identity; ``X-Spitwall-Pass`` (the challenge
        UA's pass token, read by the screener) and the fields the decision names are
        dropped, so a callee never sees a token.
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

import logging
from typing import cast

from .build import divert_uri
from .context import CallContext
from .effects import Send
from .ratelimit import Verdict as RateVerdict
from .requests import RequestHandling
from .responses import ResponseHandling
from .routing import NoRoute
from .rules import hop_from_uri, reply_peer
from .screen import Action, Divert, Forward, Reject
from .sip import Request, SipParseError, parse_message, parse_via
from .sip.reply import error_response, make_response
from .transaction import Key
from .transport.base import Peer

log = logging.getLogger("spitwall.proxy.core")


class ProxyCore(RequestHandling, ResponseHandling):
    """The §16 proxy behind the runtime surface (see the module docstring).

    Constructor (``CoreEngine.__init__``): ``ProxyCore(cfg, *, local, router=None,
    metrics=None, observer=None, limiter=None, wall_offset=0.0)``.
    """

    # ---------------------------------------------------------------- runtime surface
    def get_timer(self) -> float | None:
        t = self.table.get_timer()
        c = self._timer_c.next_deadline()
        if c is not None and (t is None or c < t):
            return c
        return t

    def handle_timer(self, now: float) -> None:
        for tx, actions in self.table.handle_timer(now):
            ctx = self._ctx.get(cast(Key, tx.key))
            if ctx is not None:
                self._run(ctx, tx, actions, now)
        for ctx, deadline in self._timer_c.due(now):
            self._proxy_timer(ctx, deadline, now)

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
        if ctx is None:  # unknown, answered, or screened already
            return
        if ctx.final_sent:
            return  # CANCELled while screening
        action = action if action is not None else Forward(note="timeout" if timed_out else "error")
        kind = type(action).__name__.lower()
        self.metrics.screening_outcome(kind)
        ctx.decision_id = getattr(action, "decision_id", None) or None
        if log.isEnabledFor(logging.INFO):  # the extra dict costs even when not logged
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
        if log.isEnabledFor(logging.INFO):  # a flood of garbage must not build dicts
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

    def _proxy_timer(self, ctx: CallContext, deadline: float, now: float) -> None:
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
