"""The proxy's engine room: shared state, transaction actions → effects, local replies.

``CoreEngine`` holds what every part of the §16 proxy shares (configuration, the
transaction table, the contexts filed by transaction key and branch, Timer C, the effect
list the runtime drains) and the three things every part needs:

- ``_run``: carry out the actions a transaction machine returned (``proxy.transaction``):
  sends go upstream (server side) or to the branch's next hop (client side), responses
  that pass the client transaction go to ``_branch_response`` (``proxy.responses``), a
  non-2xx final gets its hop-by-hop ACK (§17.1.1.3), timeouts and transport failures end
  the branch with 408/503 (§16.7 item 6 analogue), terminated transactions are unfiled;
- ``_local_final`` / ``_reply``: final responses generated here (§8.2.6, §16.7 item 6);
- outcome reporting for screened calls (``OutcomeObserver``).

The request side (``proxy.requests``, ``proxy.forwarding``) and the response side
(``proxy.responses``) are mixins over this class; ``proxy.core.ProxyCore`` puts them
together behind the runtime surface.
"""

from __future__ import annotations

import logging
from itertools import count
from typing import cast

from .build import build_ack
from .config import ProxyConfig
from .context import CallContext
from .dialogs import DialogOutcomes
from .effects import Effect, Send
from .metrics import ProxyMetrics
from .prefixes import compile_trunk_names
from .ratelimit import RateLimiter
from .routing import Router
from .rules import Locality
from .screen import IgnoreOutcomes, Outcome, OutcomeObserver
from .sip import Request, Response, parse_message
from .sip.reply import make_response, stable_tag
from .timerc import TimerC
from .transaction import (
    Admission,
    InviteClient,
    InviteServer,
    Key,
    NeedAck,
    PassResponse,
    Terminated,
    Timeout,
    TimerConfig,
    TransactionTable,
    TransportFailure,
)
from .transaction import Send as TxSend
from .transaction.machine import Transaction
from .transport.base import LocalAddress, Peer

log = logging.getLogger("spitwall.proxy.core")


class CoreEngine:
    """State shared by the request and response sides, and the action runner."""

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
        self.limits = cfg.limits.parse_limits()
        self.table = TransactionTable(cfg.limits.max_transactions)
        self.dialogs = DialogOutcomes()
        self.draining = False
        """Shutting down: new dialogs get 503, in-dialog requests still pass."""
        self.overloaded = False
        """Set by the runtime while the event loop lags: new dialogs get 503 + Retry-After."""
        self._ctx: dict[Key, CallContext] = {}
        self._by_branch: dict[str, CallContext] = {}
        self._screening: dict[str, CallContext] = {}
        self._timer_c = TimerC()
        self._ids = count(1)
        self._out: list[Effect] = []

    @property
    def live(self) -> int:
        return len(self.table)

    def drain(self) -> list[Effect]:
        out, self._out = self._out, []
        return out

    # ---------------------------------------------------------------- engine
    def _run(
        self,
        ctx: CallContext,
        tx: Transaction,
        actions: list,
        now: float,
        resp: Response | None = None,
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
                    self._branch_response(ctx, a.status, r, now, a.data)
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

    def _branch_response(
        self, ctx: CallContext, status: int, resp: Response, now: float, data: bytes
    ) -> None:
        """A response passed the client transaction (§16.7): ``proxy.responses``."""
        raise NotImplementedError

    def _branch_failed(self, ctx: CallContext, code: int, reason: str, now: float) -> None:
        if ctx.final_sent:
            return
        if ctx.cancel_wanted:
            code, reason = 487, "Request Terminated"
        self._local_final(ctx, code, reason, now)

    # ---------------------------------------------------------------- replies
    def _local_final(
        self,
        ctx: CallContext,
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
                ctx = CallContext(next(self._ids), req, req, req, server, upstream, None, None)
                ctx.final_sent, ctx.final_code = True, code
                self._finished(ctx)
                self._ctx[key] = ctx
                self._run(ctx, server, server.send_response(code, resp, now), now)
                return
        self._out.append(Send(resp, upstream))

    def _overload_headers(self) -> tuple[tuple[str, str], ...]:
        """Count one overload 503 (draining, lagging loop, full transaction table) and
        give its ``Retry-After`` (``limits.retry_after``)."""
        self.metrics.overload.inc()
        return (("Retry-After", str(self.cfg.limits.retry_after)),)

    # ---------------------------------------------------------------- bookkeeping
    def _push(self, deadline: float, ctx: CallContext) -> None:
        self._timer_c.push(deadline, ctx)

    def _finished(self, ctx: CallContext) -> None:
        """The final response went upstream: drop timers and what only mattered before.

        The context stays filed under its transactions until they end (to absorb
        retransmissions and relay 2xx retransmissions), so it keeps only what that needs.
        """
        self._timer_c.forget(ctx)
        ctx.timer_c = ctx.cancel_deadline = None
        ctx.received = ctx.stamped = ctx.request = None  # type: ignore[assignment]
        ctx.facts = None
        if 200 <= ctx.final_code < 300:
            # after a 2xx nothing is built from the forwarded request any more (no ACK of
            # ours, no CANCEL); a non-2xx may still need its ACK (NeedAck) or CANCEL
            ctx.fwd = None

    def _final_outcome(self, ctx: CallContext, code: int, now: float) -> None:
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
