"""Server transactions: RFC 3261 §17.2, with the RFC 6026 Accepted state.

Theory of operation
===================

The core creates a server transaction when a request matches none (§17.2.3, see
table.py) and hands the request to the TU itself; the transaction starts in Proceeding
(INVITE) or Trying (non-INVITE).  From then on:

* retransmissions of the request are fed with ``receive_request(now)``; the transaction
  answers them with the last response it sent, or absorbs them;
* the TU's responses go through ``send_response(status, data, now)``, which returns the
  ``Send`` to carry out, and remembers the bytes for retransmission;
* INVITE: a 300-699 final is retransmitted by timer G (UDP) until the ACK
  (``receive_ack(now)``) or timer H; the ACK moves to Confirmed, where timer I absorbs
  ACK retransmissions.  A 2xx moves to Accepted (RFC 6026): retransmitting the 2xx is
  the TU's job (each one it hands over is sent), INVITE retransmissions are absorbed,
  an ACK that still matches is passed up (``PassRequest``), timer L ends it.

The core's own 100 (Trying) (§16.2) should go through ``send_response`` too, so that
INVITE retransmissions in Proceeding are answered with it.  A late 2xx from another
branch after a 300-699 final went out (§16.7 step 5) has no place in figure 7: in
Completed ``send_response`` answers ``Ignored`` and the core forwards that 2xx directly.
A transaction in Proceeding/Trying waits for the TU without limit (the proxy's Timer C
and its 408/487 bound it), so the TU must always send a final response.

For a TU that might not send a 100 at once, an InviteServer given ``trying=`` bytes
sends them if nothing else went out within ``TimerConfig.trying_delay`` (§17.2.1:
"unless ... within 200 ms").

Rows cite RFC 3261 unless marked 6026.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from proxy.transaction.events import (
    ACK_RECEIVED,
    REQUEST_RECEIVED,
    Action,
    Input,
    PassRequest,
    ResponseSent,
    Send,
    Timeout,
    TransportFailure,
    response_sent,
    send,
)
from proxy.transaction.machine import Row, Table, Transaction, Trigger, absorb
from proxy.transaction.timers import DEFAULT_TIMERS, IdEnum, Timer, TimerConfig


class InviteServerState(IdEnum):
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class NonInviteServerState(IdEnum):
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    TERMINATED = "Terminated"


class _Server(Transaction[Any]):
    """What both server machines share: the last response and answering retransmissions."""

    __slots__ = ("last_response",)

    def __init__(self, initial: Enum, *, reliable: bool, config: TimerConfig, now: float) -> None:
        super().__init__(initial, reliable=reliable, config=config, started=True, now=now)
        self.last_response: bytes | None = None
        """The most recent response sent, resent for request retransmissions."""

    def receive_request(self, now: float) -> list[Action]:
        """A retransmission of the request that created this transaction arrived."""
        return self.handle(REQUEST_RECEIVED, now)

    def send_response(self, status: int, data: bytes, now: float) -> list[Action]:
        """The TU's response: returns the Send for it (or Ignored if the state forbids it)."""
        return self.handle(response_sent(status, data), now)

    def _send(self, inp: Input, now: float) -> list[Action]:
        if not isinstance(inp, ResponseSent):
            return []
        self.last_response = inp.data
        return [send(inp.data)]

    def _resend_last(self, inp: Input, now: float) -> list[Action]:
        return [] if self.last_response is None else [send(self.last_response)]

    def _send_unkept(self, inp: Input, now: float) -> list[Action]:
        """Send without keeping: in Accepted and Confirmed nothing is ever resent, so a
        transaction lingering 64*T1 there holds no message bytes (memory per call)."""
        return [send(inp.data)] if isinstance(inp, ResponseSent) else []

    def _timeout(self, inp: Input, now: float) -> list[Action]:
        return [Timeout()]

    def _transport_failure(self, inp: Input, now: float) -> list[Action]:
        return [TransportFailure()]


# =========================================================================== INVITE


class InviteServer(_Server):
    """INVITE server transaction (RFC 3261 §17.2.1, figure 7; RFC 6026 figure 7)."""

    __slots__ = ("trying",)

    def __init__(
        self,
        *,
        reliable: bool,
        config: TimerConfig = DEFAULT_TIMERS,
        trying: bytes | None = None,
        now: float = 0.0,
    ) -> None:
        super().__init__(InviteServerState.PROCEEDING, reliable=reliable, config=config, now=now)
        self.trying = trying
        """A ready-made 100 (Trying) to send if the TU is silent for ``trying_delay``."""
        if trying is not None:
            self._start_timer(Timer.TRYING, now)

    @property
    def state(self) -> InviteServerState:
        state: InviteServerState = self._state
        return state

    def receive_ack(self, now: float) -> list[Action]:
        """An ACK matching this transaction arrived (§17.2.3)."""
        return self.handle(ACK_RECEIVED, now)

    def _on_enter(self, state: Any, now: float) -> list[Action]:
        if state is InviteServerState.COMPLETED:
            self._start_timer(Timer.G, now)  # unreliable only
            self._start_timer(Timer.H, now)
        elif state is InviteServerState.CONFIRMED:
            self.last_response = self.trying = None  # Confirmed only absorbs ACKs
            if self._start_timer(Timer.I, now) == 0:
                # Reliable transport: I is zero (§17.2.1), Confirmed ends at once.
                return self._goto(InviteServerState.TERMINATED, now)
        elif state is InviteServerState.ACCEPTED:
            self.last_response = self.trying = None  # 2xx retransmissions come from the TU
            self._start_timer(Timer.L, now)
        return []

    def _send_provisional(self, inp: Input, now: float) -> list[Action]:
        self._timers.pop(Timer.TRYING, None)  # the TU spoke: no automatic 100
        return self._send(inp, now)

    def _send_trying(self, inp: Input, now: float) -> list[Action]:
        if self.trying is None or self.last_response is not None:
            return []
        self.last_response = self.trying
        return [Send(self.trying)]

    def _retransmit(self, inp: Input, now: float) -> list[Action]:
        self._restart_doubled(Timer.G, now, cap=self.config.t2)
        return self._resend_last(inp, now)

    def _pass_ack(self, inp: Input, now: float) -> list[Action]:
        return [PassRequest()]


_IS = InviteServerState
_INVITE_SERVER: Table = {
    (_IS.PROCEEDING, Trigger.REQUEST): Row(
        InviteServer._resend_last,
        _IS.PROCEEDING,
        "§17.2.1: INVITE retransmission in Proceeding: resend the last provisional",
    ),
    (_IS.PROCEEDING, Timer.TRYING): Row(
        InviteServer._send_trying,
        _IS.PROCEEDING,
        "§17.2.1: no response from the TU within 200 ms: send 100 (Trying)",
    ),
    (_IS.PROCEEDING, Trigger.SEND_1XX): Row(
        InviteServer._send_provisional, _IS.PROCEEDING, "§17.2.1: provisional from the TU: send it"
    ),
    (_IS.PROCEEDING, Trigger.SEND_2XX): Row(
        InviteServer._send,
        _IS.ACCEPTED,
        "6026 §8.7: 2xx from the TU: send it, enter Accepted, start L = 64*T1",
    ),
    (_IS.PROCEEDING, Trigger.SEND_FINAL): Row(
        InviteServer._send,
        _IS.COMPLETED,
        "§17.2.1: 300-699 from the TU: send it, enter Completed, start G (UDP) and H",
    ),
    (_IS.PROCEEDING, Trigger.TRANSPORT_ERROR): Row(
        InviteServer._transport_failure,
        _IS.TERMINATED,
        "§17.2.1 fig. 7, §17.2.4: transport error: inform the TU",
    ),
    (_IS.COMPLETED, Trigger.REQUEST): Row(
        InviteServer._resend_last,
        _IS.COMPLETED,
        "§17.2.1: INVITE retransmission in Completed: resend the final response",
    ),
    (_IS.COMPLETED, Timer.G): Row(
        InviteServer._retransmit,
        _IS.COMPLETED,
        "§17.2.1: G fires: resend the final response, G = min(2*G, T2)",
    ),
    (_IS.COMPLETED, Timer.H): Row(
        InviteServer._timeout,
        _IS.TERMINATED,
        "§17.2.1: H fires: the ACK never came; tell the TU the transaction failed",
    ),
    (_IS.COMPLETED, Trigger.TRANSPORT_ERROR): Row(
        InviteServer._transport_failure,
        _IS.TERMINATED,
        "§17.2.1 fig. 7, §17.2.4: transport error: inform the TU",
    ),
    (_IS.COMPLETED, Trigger.ACK): Row(
        absorb,
        _IS.CONFIRMED,
        "§17.2.1: ACK in Completed: enter Confirmed, stop G, start I (T4; 0 reliable)",
    ),
    (_IS.CONFIRMED, Trigger.ACK): Row(
        absorb, _IS.CONFIRMED, "§17.2.1: Confirmed absorbs ACK retransmissions"
    ),
    (_IS.CONFIRMED, Trigger.REQUEST): Row(
        absorb, _IS.CONFIRMED, "§17.2.1: Confirmed absorbs stray INVITE retransmissions"
    ),
    (_IS.CONFIRMED, Timer.I): Row(
        absorb, _IS.TERMINATED, "§17.2.1: I fires in Confirmed: terminate"
    ),
    (_IS.ACCEPTED, Trigger.REQUEST): Row(
        absorb, _IS.ACCEPTED, "6026 §8.7: INVITE retransmission in Accepted: absorb"
    ),
    (_IS.ACCEPTED, Trigger.ACK): Row(
        InviteServer._pass_ack,
        _IS.ACCEPTED,
        "6026 §8.7: ACK in Accepted acknowledges the 2xx: pass it to the TU",
    ),
    (_IS.ACCEPTED, Trigger.SEND_2XX): Row(
        InviteServer._send_unkept,
        _IS.ACCEPTED,
        "6026 §8.7: 2xx retransmission (or fork) from the TU in Accepted: send it",
    ),
    (_IS.ACCEPTED, Trigger.TRANSPORT_ERROR): Row(
        InviteServer._transport_failure,
        _IS.ACCEPTED,
        "6026 §8.7: transport error in Accepted: inform the TU, keep the state",
    ),
    (_IS.ACCEPTED, Timer.L): Row(
        absorb, _IS.TERMINATED, "6026 §8.7: L fires in Accepted: terminate"
    ),
}
InviteServer._TABLE = _INVITE_SERVER
InviteServer._KEEP = {_IS.PROCEEDING: frozenset({Timer.TRYING})}
InviteServer._TERMINAL = _IS.TERMINATED


# =========================================================================== non-INVITE


class NonInviteServer(_Server):
    """Non-INVITE server transaction (RFC 3261 §17.2.2, figure 8)."""

    __slots__ = ()

    def __init__(
        self, *, reliable: bool, config: TimerConfig = DEFAULT_TIMERS, now: float = 0.0
    ) -> None:
        super().__init__(NonInviteServerState.TRYING, reliable=reliable, config=config, now=now)

    @property
    def state(self) -> NonInviteServerState:
        state: NonInviteServerState = self._state
        return state

    def _on_enter(self, state: Any, now: float) -> list[Action]:
        if state is NonInviteServerState.COMPLETED and self._start_timer(Timer.J, now) == 0:
            # Reliable transport: J is zero (§17.2.2), Completed ends at once.
            return self._goto(NonInviteServerState.TERMINATED, now)
        return []


_NS = NonInviteServerState
_NON_INVITE_SERVER: Table = {
    (_NS.TRYING, Trigger.REQUEST): Row(
        absorb, _NS.TRYING, "§17.2.2: request retransmission in Trying: discard"
    ),
    (_NS.TRYING, Trigger.SEND_1XX): Row(
        NonInviteServer._send,
        _NS.PROCEEDING,
        "§17.2.2: provisional from the TU in Trying: send it, enter Proceeding",
    ),
    (_NS.TRYING, Trigger.SEND_2XX): Row(
        NonInviteServer._send,
        _NS.COMPLETED,
        "§17.2.2: final (200-699) from the TU: send it, enter Completed, start J",
    ),
    (_NS.TRYING, Trigger.SEND_FINAL): Row(
        NonInviteServer._send,
        _NS.COMPLETED,
        "§17.2.2: final (200-699) from the TU: send it, enter Completed, start J",
    ),
    (_NS.PROCEEDING, Trigger.SEND_1XX): Row(
        NonInviteServer._send,
        _NS.PROCEEDING,
        "§17.2.2: further provisionals from the TU: send them",
    ),
    (_NS.PROCEEDING, Trigger.SEND_2XX): Row(
        NonInviteServer._send,
        _NS.COMPLETED,
        "§17.2.2: final (200-699) from the TU: send it, enter Completed, start J",
    ),
    (_NS.PROCEEDING, Trigger.SEND_FINAL): Row(
        NonInviteServer._send,
        _NS.COMPLETED,
        "§17.2.2: final (200-699) from the TU: send it, enter Completed, start J",
    ),
    (_NS.PROCEEDING, Trigger.REQUEST): Row(
        NonInviteServer._resend_last,
        _NS.PROCEEDING,
        "§17.2.2: request retransmission in Proceeding: resend the last provisional",
    ),
    (_NS.PROCEEDING, Trigger.TRANSPORT_ERROR): Row(
        NonInviteServer._transport_failure,
        _NS.TERMINATED,
        "§17.2.2 fig. 8, §17.2.4: transport error: inform the TU",
    ),
    (_NS.COMPLETED, Trigger.REQUEST): Row(
        NonInviteServer._resend_last,
        _NS.COMPLETED,
        "§17.2.2: request retransmission in Completed: resend the final response",
    ),
    (_NS.COMPLETED, Trigger.TRANSPORT_ERROR): Row(
        NonInviteServer._transport_failure,
        _NS.TERMINATED,
        "§17.2.2 fig. 8, §17.2.4: transport error: inform the TU",
    ),
    (_NS.COMPLETED, Timer.J): Row(
        absorb, _NS.TERMINATED, "§17.2.2: J fires in Completed: terminate"
    ),
}
NonInviteServer._TABLE = _NON_INVITE_SERVER
NonInviteServer._KEEP = {}
NonInviteServer._TERMINAL = _NS.TERMINATED

ServerTransaction = InviteServer | NonInviteServer
"""Either server machine: both have ``receive_request``, ``send_response``, ``transport_error``."""
