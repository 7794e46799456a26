"""Client transactions: RFC 3261 §17.1, with the RFC 6026 Accepted state.

Theory of operation
===================

The core creates a client transaction per request it sends downstream (and per CANCEL),
with the request's bytes, and calls ``start(now)``: the request goes out, and over UDP a
retransmission timer (A for INVITE, doubling; E for the rest, capped at T2) repeats it
until a response arrives or the 64*T1 timeout (B, F) gives up with ``Timeout``.

Responses matched to the transaction (§17.1.3, see table.py) are fed with
``receive_response(status, data, now)``.  What reaches the TU comes out as
``PassResponse``; retransmissions the transaction absorbs come out as nothing.

INVITE specifics:
* A 300-699 final moves to Completed and asks the core for the ACK (``NeedAck``): the ACK
  copies the response's To tag, so only the core can build it.  The core answers with
  ``set_ack(data)``; the transaction sends it and resends it for every retransmission of
  the final response until timer D (32 s over UDP, 0 over TCP/TLS) ends it.
* A 2xx moves to Accepted (RFC 6026): the ACK for a 2xx is the TU's, the transaction
  passes every 2xx retransmission (or a forked 2xx) up until timer M ends it.

Rows cite RFC 3261 unless marked 6026.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from proxy.transaction.events import (
    START,
    AckBuilt,
    Action,
    Ignored,
    Input,
    NeedAck,
    ResponseReceived,
    Send,
    Timeout,
    TransportFailure,
    pass_response,
    response_received,
    send,
)
from proxy.transaction.machine import Row, Table, Transaction, Trigger, absorb
from proxy.transaction.timers import DEFAULT_TIMERS, IdEnum, Timer, TimerConfig


class InviteClientState(IdEnum):
    CALLING = "Calling"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class NonInviteClientState(IdEnum):
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    TERMINATED = "Terminated"


class _Client(Transaction[Any]):
    """What both client machines share: the request, start, and passing responses up."""

    __slots__ = ("request",)

    def __init__(
        self, initial: Enum, request: bytes, *, reliable: bool, config: TimerConfig
    ) -> None:
        super().__init__(initial, reliable=reliable, config=config, started=False)
        self.request = request
        """The request as sent; retransmissions resend exactly these bytes (§17.1.1.2)."""

    def start(self, now: float) -> list[Action]:
        """The TU hands the request over: send it and start the timers."""
        return self.handle(START, now)

    def receive_response(self, status: int, data: bytes, now: float) -> list[Action]:
        """A response matching this transaction arrived (RFC 3261 §17.1.3)."""
        return self.handle(response_received(status, data), now)

    def _pass(self, inp: Input, now: float) -> list[Action]:
        if isinstance(inp, ResponseReceived):
            return [pass_response(inp.status, inp.data)]
        return []

    def _timeout(self, inp: Input, now: float) -> list[Action]:
        return [Timeout()]

    def _transport_failure(self, inp: Input, now: float) -> list[Action]:
        return [TransportFailure()]


# =========================================================================== INVITE


class InviteClient(_Client):
    """INVITE client transaction (RFC 3261 §17.1.1, figure 5; RFC 6026 figure 5)."""

    __slots__ = ("ack",)

    def __init__(
        self, request: bytes, *, reliable: bool, config: TimerConfig = DEFAULT_TIMERS
    ) -> None:
        super().__init__(InviteClientState.CALLING, request, reliable=reliable, config=config)
        self.ack: bytes | None = None
        """The ACK for a non-2xx final response, once the core has built it (§17.1.1.3)."""

    @property
    def state(self) -> InviteClientState:
        state: InviteClientState = self._state
        return state

    def set_ack(self, data: bytes, now: float | None = None) -> list[Action]:
        """The ACK the last ``NeedAck`` asked for: send it now and on every retransmitted
        final response until timer D fires."""
        return self.handle(AckBuilt(data), self._now if now is None else now)

    def _on_enter(self, state: Any, now: float) -> list[Action]:
        if state is InviteClientState.COMPLETED:
            self.request = b""  # a final response arrived: never resent (memory per call)
            self._start_timer(Timer.D, now)
        elif state is InviteClientState.ACCEPTED:
            self.request = b""
            self._start_timer(Timer.M, now)
        return []

    def _start(self, inp: Input, now: float) -> list[Action]:
        if self._started:
            return [Ignored("InviteClient already started")]
        self._started = True
        self._start_timer(Timer.A, now)  # unreliable only
        self._start_timer(Timer.B, now)
        return [send(self.request)]

    def _retransmit(self, inp: Input, now: float) -> list[Action]:
        self._restart_doubled(Timer.A, now, cap=None)  # A doubles without the T2 cap
        return [send(self.request)]

    def _pass_need_ack(self, inp: Input, now: float) -> list[Action]:
        if not isinstance(inp, ResponseReceived):
            return []
        return [pass_response(inp.status, inp.data), NeedAck(inp.status)]

    def _resend_ack(self, inp: Input, now: float) -> list[Action]:
        return [] if self.ack is None else [Send(self.ack)]

    def _store_ack(self, inp: Input, now: float) -> list[Action]:
        if not isinstance(inp, AckBuilt):
            return []
        if self.ack is not None:
            return [Ignored("InviteClient already has its ACK")]
        self.ack = inp.data
        actions: list[Action] = [Send(inp.data)]
        if self.config.duration(Timer.D, reliable=self.reliable) == 0:
            # Reliable transport: timer D is zero; it only waited for this ACK.
            actions.extend(self._goto(InviteClientState.TERMINATED, now))
        return actions


_IC = InviteClientState
_INVITE_CLIENT: Table = {
    (_IC.CALLING, Trigger.START): Row(
        InviteClient._start,
        _IC.CALLING,
        "§17.1.1.2: send the INVITE; start A (unreliable) = T1 and B = 64*T1",
    ),
    (_IC.CALLING, Timer.A): Row(
        InviteClient._retransmit,
        _IC.CALLING,
        "§17.1.1.2: A fires: retransmit, restart A at twice its last value",
    ),
    (_IC.CALLING, Timer.B): Row(
        InviteClient._timeout,
        _IC.TERMINATED,
        "§17.1.1.2: B fires in Calling: inform the TU of the timeout",
    ),
    (_IC.CALLING, Trigger.TRANSPORT_ERROR): Row(
        InviteClient._transport_failure,
        _IC.TERMINATED,
        "§17.1.1.2 fig. 5, §17.1.4: transport error: inform the TU",
    ),
    (_IC.CALLING, Trigger.RESPONSE_1XX): Row(
        InviteClient._pass,
        _IC.PROCEEDING,
        "§17.1.1.2: 1xx in Calling: to the TU, stop retransmitting (A, B stop)",
    ),
    (_IC.PROCEEDING, Trigger.RESPONSE_1XX): Row(
        InviteClient._pass, _IC.PROCEEDING, "§17.1.1.2: further provisional responses go to the TU"
    ),
    (_IC.CALLING, Trigger.RESPONSE_2XX): Row(
        InviteClient._pass,
        _IC.ACCEPTED,
        "6026 §8.4: 2xx in Calling: to the TU, enter Accepted, start M = 64*T1",
    ),
    (_IC.PROCEEDING, Trigger.RESPONSE_2XX): Row(
        InviteClient._pass,
        _IC.ACCEPTED,
        "6026 §8.4: 2xx in Proceeding: to the TU, enter Accepted, start M = 64*T1",
    ),
    (_IC.CALLING, Trigger.RESPONSE_FINAL): Row(
        InviteClient._pass_need_ack,
        _IC.COMPLETED,
        "§17.1.1.2: 300-699: to the TU, ACK it, enter Completed, start D",
    ),
    (_IC.PROCEEDING, Trigger.RESPONSE_FINAL): Row(
        InviteClient._pass_need_ack,
        _IC.COMPLETED,
        "§17.1.1.2: 300-699: to the TU, ACK it, enter Completed, start D",
    ),
    (_IC.COMPLETED, Trigger.ACK_BUILT): Row(
        InviteClient._store_ack,
        _IC.COMPLETED,
        "§17.1.1.3: send the ACK the core built (reliable: D = 0, so terminate)",
    ),
    (_IC.COMPLETED, Trigger.RESPONSE_FINAL): Row(
        InviteClient._resend_ack,
        _IC.COMPLETED,
        "§17.1.1.2: retransmitted final in Completed: resend the ACK, not to the TU",
    ),
    (_IC.COMPLETED, Trigger.TRANSPORT_ERROR): Row(
        InviteClient._transport_failure,
        _IC.TERMINATED,
        "§17.1.1.2 fig. 5: transport error sending the ACK: inform the TU",
    ),
    (_IC.COMPLETED, Timer.D): Row(
        absorb, _IC.TERMINATED, "§17.1.1.2: D fires in Completed: terminate"
    ),
    (_IC.ACCEPTED, Trigger.RESPONSE_2XX): Row(
        InviteClient._pass,
        _IC.ACCEPTED,
        "6026 §8.4: 2xx in Accepted (retransmission or fork): to the TU",
    ),
    (_IC.ACCEPTED, Timer.M): Row(
        absorb, _IC.TERMINATED, "6026 §8.4: M fires in Accepted: terminate"
    ),
}
InviteClient._TABLE = _INVITE_CLIENT
InviteClient._KEEP = {}  # no timer survives a change of state in figure 5
InviteClient._TERMINAL = _IC.TERMINATED


# =========================================================================== non-INVITE


class NonInviteClient(_Client):
    """Non-INVITE client transaction (RFC 3261 §17.1.2, figure 6)."""

    __slots__ = ()

    def __init__(
        self, request: bytes, *, reliable: bool, config: TimerConfig = DEFAULT_TIMERS
    ) -> None:
        super().__init__(NonInviteClientState.TRYING, request, reliable=reliable, config=config)

    @property
    def state(self) -> NonInviteClientState:
        state: NonInviteClientState = self._state
        return state

    def _on_enter(self, state: Any, now: float) -> list[Action]:
        if state is NonInviteClientState.COMPLETED:
            self.request = b""  # a final response arrived: never resent (memory per call)
        if state is NonInviteClientState.COMPLETED and self._start_timer(Timer.K, now) == 0:
            # Reliable transport: K is zero (§17.1.2.2), Completed ends at once.
            return self._goto(NonInviteClientState.TERMINATED, now)
        return []

    def _start(self, inp: Input, now: float) -> list[Action]:
        if self._started:
            return [Ignored("NonInviteClient already started")]
        self._started = True
        self._start_timer(Timer.E, now)  # unreliable only
        self._start_timer(Timer.F, now)
        return [send(self.request)]

    def _retransmit_trying(self, inp: Input, now: float) -> list[Action]:
        self._restart_doubled(Timer.E, now, cap=self.config.t2)
        return [send(self.request)]

    def _retransmit_proceeding(self, inp: Input, now: float) -> list[Action]:
        self._restart_at(Timer.E, now, self.config.t2)
        return [send(self.request)]


_NC = NonInviteClientState
_NON_INVITE_CLIENT: Table = {
    (_NC.TRYING, Trigger.START): Row(
        NonInviteClient._start,
        _NC.TRYING,
        "§17.1.2.2: send the request; start E (unreliable) = T1 and F = 64*T1",
    ),
    (_NC.TRYING, Timer.E): Row(
        NonInviteClient._retransmit_trying,
        _NC.TRYING,
        "§17.1.2.2: E fires in Trying: retransmit, E = min(2*E, T2)",
    ),
    (_NC.PROCEEDING, Timer.E): Row(
        NonInviteClient._retransmit_proceeding,
        _NC.PROCEEDING,
        "§17.1.2.2: E fires in Proceeding: retransmit, E = T2",
    ),
    (_NC.TRYING, Timer.F): Row(
        NonInviteClient._timeout,
        _NC.TERMINATED,
        "§17.1.2.2: F fires in Trying: inform the TU of the timeout",
    ),
    (_NC.PROCEEDING, Timer.F): Row(
        NonInviteClient._timeout,
        _NC.TERMINATED,
        "§17.1.2.2: F fires in Proceeding: inform the TU of the timeout",
    ),
    (_NC.TRYING, Trigger.TRANSPORT_ERROR): Row(
        NonInviteClient._transport_failure,
        _NC.TERMINATED,
        "§17.1.2.2 fig. 6, §17.1.4: transport error: inform the TU",
    ),
    (_NC.PROCEEDING, Trigger.TRANSPORT_ERROR): Row(
        NonInviteClient._transport_failure,
        _NC.TERMINATED,
        "§17.1.2.2 fig. 6, §17.1.4: transport error: inform the TU",
    ),
    (_NC.TRYING, Trigger.RESPONSE_1XX): Row(
        NonInviteClient._pass,
        _NC.PROCEEDING,
        "§17.1.2.2: 1xx in Trying: to the TU, enter Proceeding (E, F keep running)",
    ),
    (_NC.PROCEEDING, Trigger.RESPONSE_1XX): Row(
        NonInviteClient._pass, _NC.PROCEEDING, "§17.1.2.2: 1xx in Proceeding: to the TU"
    ),
    (_NC.TRYING, Trigger.RESPONSE_2XX): Row(
        NonInviteClient._pass,
        _NC.COMPLETED,
        "§17.1.2.2: final (200-699) in Trying: to the TU, enter Completed, start K",
    ),
    (_NC.TRYING, Trigger.RESPONSE_FINAL): Row(
        NonInviteClient._pass,
        _NC.COMPLETED,
        "§17.1.2.2: final (200-699) in Trying: to the TU, enter Completed, start K",
    ),
    (_NC.PROCEEDING, Trigger.RESPONSE_2XX): Row(
        NonInviteClient._pass,
        _NC.COMPLETED,
        "§17.1.2.2: final (200-699) in Proceeding: to the TU, enter Completed, start K",
    ),
    (_NC.PROCEEDING, Trigger.RESPONSE_FINAL): Row(
        NonInviteClient._pass,
        _NC.COMPLETED,
        "§17.1.2.2: final (200-699) in Proceeding: to the TU, enter Completed, start K",
    ),
    (_NC.COMPLETED, Trigger.RESPONSE_2XX): Row(
        absorb, _NC.COMPLETED, "§17.1.2.2: response retransmissions in Completed: absorb"
    ),
    (_NC.COMPLETED, Trigger.RESPONSE_FINAL): Row(
        absorb, _NC.COMPLETED, "§17.1.2.2: response retransmissions in Completed: absorb"
    ),
    (_NC.COMPLETED, Timer.K): Row(
        absorb, _NC.TERMINATED, "§17.1.2.2: K fires in Completed: terminate"
    ),
}
NonInviteClient._TABLE = _NON_INVITE_CLIENT
NonInviteClient._KEEP = {_NC.PROCEEDING: frozenset({Timer.E, Timer.F})}
NonInviteClient._TERMINAL = _NC.TERMINATED

ClientTransaction = InviteClient | NonInviteClient
"""Either client machine: both have ``start``, ``receive_response`` and ``transport_error``."""
