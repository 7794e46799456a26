"""What goes into a transaction (inputs) and what comes out (actions).

Why values and not callbacks: a transaction never does anything itself.  Every input
returns a list of actions that the caller (proxy/core.py) carries out in order — send
these bytes, hand this response up, build an ACK — so the machines can be tested by
comparing lists, and the same input in the same state always yields the same list.

Messages are opaque here: a transaction holds the ``bytes`` it may have to send again
and looks only at the status code of responses.  Parsing and building SIP belongs to
``proxy.sip`` and ``proxy.core``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from proxy.transaction.timers import Timer

# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class Start:
    """The TU starts a client transaction: send the request (RFC 3261 §17.1.1.2, §17.1.2.2)."""


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A response matching this client transaction arrived from the network (§17.1.3)."""

    status: int
    data: bytes


@dataclass(frozen=True, slots=True)
class AckBuilt:
    """The core built the ACK a NeedAck asked for (§17.1.1.3); the transaction keeps it."""

    data: bytes


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A retransmission of the request that created this server transaction (§17.2.3)."""


@dataclass(frozen=True, slots=True)
class AckReceived:
    """An ACK matching this INVITE server transaction (§17.2.3: method ACK matches INVITE)."""


@dataclass(frozen=True, slots=True)
class ResponseSent:
    """The TU hands a response to this server transaction for sending (§17.2.1, §17.2.2)."""

    status: int
    data: bytes


@dataclass(frozen=True, slots=True)
class TimerFired:
    """One of the transaction's timers fell due (fed by ``handle_timer``)."""

    timer: Timer


@dataclass(frozen=True, slots=True)
class TransportError:
    """The transport could not send this transaction's message (§17.1.4, §17.2.4)."""


Input = (
    Start
    | ResponseReceived
    | AckBuilt
    | RequestReceived
    | AckReceived
    | ResponseSent
    | TimerFired
    | TransportError
)

# --------------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class Send:
    """Pass these bytes to the transport, to the transaction's peer (§18)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class PassResponse:
    """Hand this response up to the TU (client transactions, §17.1.1.2, §17.1.2.2)."""

    status: int
    data: bytes


@dataclass(frozen=True, slots=True)
class PassRequest:
    """Hand the request just fed in up to the TU.

    Emitted for an ACK that reaches an INVITE server transaction in the Accepted state
    (RFC 6026 §8.7): it acknowledges a 2xx, so it belongs to the TU, not the transaction.
    """


@dataclass(frozen=True, slots=True)
class NeedAck:
    """Build the ACK for the non-2xx final response just passed up and call ``set_ack``.

    RFC 3261 §17.1.1.3: the ACK copies the response's To header (with its tag), so only
    the core, which owns parsing and building, can make it.
    """

    status: int


@dataclass(frozen=True, slots=True)
class Timeout:
    """Timer B, F or H fired: the TU must act as if a 408 (Request Timeout) arrived
    (client, §8.1.3.1) or learn that the ACK never came (server, §17.2.1)."""


@dataclass(frozen=True, slots=True)
class TransportFailure:
    """The transport failed: a client TU acts as if a 503 arrived (§8.1.3.1, §17.1.4)."""


@dataclass(frozen=True, slots=True)
class Terminated:
    """The transaction reached Terminated; drop it (§17.1.1.2: "destroyed immediately")."""


@dataclass(frozen=True, slots=True)
class Ignored:
    """The caller fed an input this transaction cannot take; nothing happened.

    Network noise that the RFC says to absorb (a stray 1xx, a retransmitted request with
    nothing to resend) yields an empty list instead; ``Ignored`` flags caller mistakes and
    malformed values (a status outside 100-699, a response after the final one, ``start``
    twice) with the reason, so they show up in logs rather than as exceptions.
    """

    reason: str


Action = (
    Send | PassResponse | PassRequest | NeedAck | Timeout | TransportFailure | Terminated | Ignored
)


# --------------------------------------------------------------------------- fast builders
# The machines make a few of these per message. A frozen dataclass's __init__ sets each
# field through object.__setattr__; the slot's own setter on object.__new__ gives the same
# value in about half the time, and the field-less ones are shared (equal, immutable).
_new = object.__new__
T = TypeVar("T")

START = Start()
REQUEST_RECEIVED = RequestReceived()
ACK_RECEIVED = AckReceived()
TERMINATED = Terminated()


def _status_data(cls: type[T]) -> Callable[[int, bytes], T]:
    """A fast ``cls(status, data)`` for the two-field events and actions."""
    set_status = cls.__dict__["status"].__set__
    set_data = cls.__dict__["data"].__set__

    def build(status: int, data: bytes) -> T:
        obj: T = _new(cls)
        set_status(obj, status)
        set_data(obj, data)
        return obj

    return build


pass_response = _status_data(PassResponse)
response_sent = _status_data(ResponseSent)
response_received = _status_data(ResponseReceived)
_send_data = Send.__dict__["data"].__set__
_fired_timer = TimerFired.__dict__["timer"].__set__


def send(data: bytes) -> Send:
    """``Send(data)``."""
    action: Send = _new(Send)
    _send_data(action, data)
    return action


def timer_fired(timer: Timer) -> TimerFired:
    """``TimerFired(timer)``."""
    inp: TimerFired = _new(TimerFired)
    _fired_timer(inp, timer)
    return inp
