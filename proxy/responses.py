"""Responses from the next hop: RFC 3261 §16.7, and stray responses.

A response is matched to its client transaction by top Via branch + CSeq method
(§17.1.3). What passes the transaction (``CoreEngine._run`` → ``_branch_response``):
a provisional response resets Timer C (§16.7 item 2) and releases a CANCEL that waited
for it (§9.1); 100 stops here (item 5); every other response goes upstream through the
server transaction with our Via removed (items 3, 9); the first final response reports
the call's outcome. A response that matches nothing is stray: dropped and counted,
except a 2xx to INVITE carrying our Via (the callee's 2xx retransmissions after our
transaction ended, RFC 6026), relayed statelessly by its next Via (§18.2.2).
"""

from __future__ import annotations

from .context import CallContext
from .dialogs import Answered
from .effects import Send
from .forwarding import Forwarding
from .rules import via_target, without_top_via
from .sip import Response, Via
from .transaction import client_key


class ResponseHandling(Forwarding):
    """The response half of §16 (mixed into ``ProxyCore``)."""

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

    def _branch_response(
        self, ctx: CallContext, status: int, resp: Response, now: float, data: bytes
    ) -> None:
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
        out = without_top_via(resp, data)
        if out is None:
            up = resp.with_headers(resp.headers.remove_first_value("via"))
            if up.headers.get("via") is None:
                self.metrics.drop("response_for_us")
                return
            out = up.to_bytes()
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
        self._run(ctx, ctx.server, ctx.server.send_response(status, out, now), now)  # type: ignore[attr-defined]
