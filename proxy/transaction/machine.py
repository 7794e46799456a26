"""The table-driven engine shared by the four transaction machines.

Theory of operation
===================

Each machine (client.py, server.py) is a table of rows

    (state, trigger) -> Row(effect, next state, RFC section)

where a trigger is what an input means in SIP terms: a response *class* (1xx, 2xx,
300-699) rather than the response, a request retransmission, an ACK, a timer, a
transport error.  Feeding an input:

1. classify it into a trigger (a malformed value, e.g. status 42, becomes ``Ignored``);
2. look the row up: no row means the RFC gives that trigger no meaning in that state —
   network noise is absorbed (``[]``), a caller mistake is reported (``Ignored``);
3. run the row's effect, which returns the actions (send, pass up, ...) and does the
   bookkeeping inside the state (retransmission intervals, the last response);
4. move to the row's next state: timers the new state does not keep are cancelled,
   the state's entry timers are started, and entering Terminated emits ``Terminated``.

A few rows' next state depends on the transport: timers D, I, J and K are zero on
reliable transports, so "wait in Completed/Confirmed" collapses to "terminate now".
Those effects call ``_goto`` themselves; the engine then leaves the state alone.

Timers are absolute deadlines computed from the ``now`` passed in with each input;
``get_timer()`` is the earliest, ``handle_timer(now)`` fires every timer due by ``now``
in deadline order (a timer that ends a state before a retransmission timer due at the
same instant).  Retransmission timers restart from the ``now`` they fire at, so a caller
that wakes late sends one copy, not a burst.

Nothing here reads a clock or touches a socket; nothing raises for any input in any state.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, Generic, TypeVar

from proxy.transaction.events import (
    TERMINATED,
    AckBuilt,
    AckReceived,
    Action,
    Ignored,
    Input,
    RequestReceived,
    ResponseReceived,
    ResponseSent,
    Start,
    TimerFired,
    TransportError,
    timer_fired,
)
from proxy.transaction.timers import IdEnum, Timer, TimerConfig

S = TypeVar("S", bound=Enum)


class Trigger(IdEnum):
    """What an input means to a machine; timers are triggers in their own right (Timer)."""

    START = "start"  # TU: send the request
    RESPONSE_1XX = "1xx received"
    RESPONSE_2XX = "2xx received"
    RESPONSE_FINAL = "300-699 received"
    ACK_BUILT = "ACK built"  # TU: set_ack
    REQUEST = "request retransmission received"
    ACK = "ACK received"
    SEND_1XX = "1xx from TU"
    SEND_2XX = "2xx from TU"
    SEND_FINAL = "300-699 from TU"
    TRANSPORT_ERROR = "transport error"


TriggerKey = Trigger | Timer

# Triggers that come from the caller rather than the network: a missing row for one of
# these is a caller mistake worth an ``Ignored`` with its reason.
_FROM_TU = frozenset(
    {Trigger.START, Trigger.ACK_BUILT, Trigger.SEND_1XX, Trigger.SEND_2XX, Trigger.SEND_FINAL}
)


def _status_class(status: int) -> int | None:
    """1, 2 or 3 (300-699) for a valid status code, None otherwise (§7.2: 100-699)."""
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 699:
        return None
    return min(status // 100, 3)


_RECEIVED = {1: Trigger.RESPONSE_1XX, 2: Trigger.RESPONSE_2XX, 3: Trigger.RESPONSE_FINAL}
_SENT = {1: Trigger.SEND_1XX, 2: Trigger.SEND_2XX, 3: Trigger.SEND_FINAL}


_BY_TYPE: dict[type, Trigger] = {
    Start: Trigger.START,
    AckBuilt: Trigger.ACK_BUILT,
    RequestReceived: Trigger.REQUEST,
    AckReceived: Trigger.ACK,
    TransportError: Trigger.TRANSPORT_ERROR,
}
"""Inputs whose trigger does not depend on their content (one dict lookup, not a match
over every case)."""


def classify(inp: Input) -> TriggerKey | Ignored:
    """The trigger an input stands for, or why it cannot stand for any."""
    kind = type(inp)
    fixed = _BY_TYPE.get(kind)
    if fixed is not None:
        return fixed
    if kind is ResponseReceived or kind is ResponseSent:  # the common case, without match
        status = inp.status  # type: ignore[union-attr]
        if type(status) is int and 100 <= status <= 699:
            return (_RECEIVED if kind is ResponseReceived else _SENT)[
                3 if status >= 300 else status // 100
            ]
    elif kind is TimerFired:
        return inp.timer  # type: ignore[union-attr]
    match inp:
        case TimerFired(timer=timer):
            return timer
        case ResponseReceived(status=status) | ResponseSent(status=status):
            cls = _status_class(status)
            if cls is None:
                return Ignored(f"status {status!r} is outside 100-699 (RFC 3261 §7.2)")
            return (_RECEIVED if isinstance(inp, ResponseReceived) else _SENT)[cls]
        case Start():
            return Trigger.START
        case AckBuilt():
            return Trigger.ACK_BUILT
        case RequestReceived():
            return Trigger.REQUEST
        case AckReceived():
            return Trigger.ACK
        case TransportError():
            return Trigger.TRANSPORT_ERROR
    return Ignored(f"{inp!r} is not a transaction input")


Effect = Callable[[Any, Input, float], list[Action]]
_KEEP_NONE: frozenset[Timer] = frozenset()
_RANK = {t: (not t.ends_state, t.value) for t in Timer}
"""Order among timers due at one instant: those that end a state first, then by name."""
_isfinite = math.isfinite


@dataclass(frozen=True, slots=True)
class Row(Generic[S]):
    """One transition: what to do, where to go, and the RFC text that says so."""

    effect: Effect
    target: S
    cite: str


Table = Mapping[tuple[Any, TriggerKey], Row[Any]]
Listener = Callable[["Transaction[Any]"], None]


class Transaction(Generic[S]):
    """Base of the four machines: the dispatch loop, the timers and the table hook.

    Subclasses set the class-level ``_TABLE`` (rows), ``_KEEP`` (timers that survive the
    move into a state), ``_TERMINAL`` and implement ``_on_enter``.
    """

    _TABLE: ClassVar[Table]
    _KEEP: ClassVar[Mapping[Any, frozenset[Timer]]]
    _TERMINAL: ClassVar[Any]

    __slots__ = (
        "_intervals",
        "_listener",
        "_now",
        "_started",
        "_state",
        "_timers",
        "config",
        "key",
        "reliable",
    )

    def __init__(
        self, initial: S, *, reliable: bool, config: TimerConfig, started: bool, now: float = 0.0
    ) -> None:
        self._state: S = initial
        self.reliable = reliable
        """TCP, TLS or SCTP: no retransmissions, zero wait timers (§17.1.1.2)."""
        self.config = config
        self.key: object = None
        """The table key this transaction is filed under (set by TransactionTable.add)."""
        self._timers: dict[Timer, float] = {}
        self._intervals: dict[Timer, float] = {}
        self._listener: Listener | None = None
        self._started = started
        self._now = now

    # ----------------------------------------------------------------- public surface

    @property
    def state(self) -> S:
        return self._state

    @property
    def terminated(self) -> bool:
        return self._state is self._TERMINAL

    def get_timer(self) -> float | None:
        """Absolute time of the next timer, or None when no timer runs."""
        return min(self._timers.values(), default=None)

    def handle_timer(self, now: float) -> list[Action]:
        """Fire every timer due by ``now``; call when ``now >= get_timer()``.

        Each timer fires at most once per call, so a caller that wakes late gets one
        retransmission rather than a burst (and a huge ``now`` cannot spin the loop).
        """
        if not _isfinite(now):
            return [Ignored(f"now must be a finite number of seconds, got {now!r}")]
        if now > self._now:
            self._now = now
        actions: list[Action] = []
        fired: set[Timer] = set()
        timers = self._timers
        while self._state is not self._TERMINAL:
            due = [(d, _RANK[t], t) for t, d in timers.items() if d <= now and t not in fired]
            if not due:
                break
            timer = min(due)[2] if len(due) > 1 else due[0][2]
            fired.add(timer)
            del timers[timer]
            actions.extend(self._dispatch(timer_fired(timer), now))
        listener = self._listener
        if listener is not None:
            listener(self)
        return actions

    def handle(self, inp: Input, now: float) -> list[Action]:
        """Feed any input; the named methods are shorthands for this.

        ``TimerFired(t)`` fires ``t`` now if it is running, whatever its deadline (tests
        use it to take one row); normal callers use ``handle_timer``.
        """
        if not _isfinite(now):
            return [Ignored(f"now must be a finite number of seconds, got {now!r}")]
        if now > self._now:
            self._now = now
        if isinstance(inp, TimerFired):
            if inp.timer not in self._timers:
                return [Ignored(f"timer {inp.timer.value} is not running")]
            del self._timers[inp.timer]
        actions = self._dispatch(inp, now)
        listener = self._listener
        if listener is not None:
            listener(self)
        return actions

    def transport_error(self, now: float) -> list[Action]:
        """The transport failed to send this transaction's last message (§17.1.4, §17.2.4)."""
        return self.handle(TransportError(), now)

    # ----------------------------------------------------------------- engine

    def _dispatch(self, inp: Input, now: float) -> list[Action]:
        trigger = classify(inp)
        if isinstance(trigger, Ignored):
            return [trigger]
        if not self._started and trigger is not Trigger.START:
            return [Ignored(f"{type(self).__name__} not started: call start(now) first")]
        if self._state is self._TERMINAL:
            return [Ignored(f"{type(self).__name__} is terminated")] if trigger in _FROM_TU else []
        row = self._TABLE.get((self._state, trigger))
        if row is None:
            if trigger in _FROM_TU:
                return [
                    Ignored(
                        f"{type(self).__name__} takes no '{trigger.value}' "
                        f"in state {self._state.name}"
                    )
                ]
            return []  # network noise the RFC absorbs
        before = self._state
        actions = row.effect(self, inp, now)
        if self._state is before and row.target is not before:
            actions.extend(self._goto(row.target, now))
        return actions

    def _goto(self, state: S, now: float) -> list[Action]:
        """Enter ``state``: cancel the timers it does not keep, run its entry actions."""
        self._state = state
        timers = self._timers
        if timers:
            keep = self._KEEP.get(state, _KEEP_NONE)
            for timer in [t for t in timers if t not in keep]:
                del timers[timer]
        if state is self._TERMINAL:
            return [TERMINATED]
        return self._on_enter(state, now)

    def _on_enter(self, state: S, now: float) -> list[Action]:
        """Start the timers of ``state``; may terminate at once (zero-length timers)."""
        raise NotImplementedError

    def _start_timer(self, timer: Timer, now: float) -> float | None:
        """Start ``timer`` with its initial duration; None when the transport turns it off."""
        duration = self.config._durations[timer, self.reliable]  # config.duration(...)
        if duration is not None:
            self._timers[timer] = now + duration
            self._intervals[timer] = duration
        return duration

    def _restart_doubled(self, timer: Timer, now: float, cap: float | None) -> None:
        """Restart a retransmission timer with twice its last interval, at most ``cap``."""
        interval = 2 * self._intervals.get(timer, self.config.t1)
        if cap is not None:
            interval = min(interval, cap)
        self._intervals[timer] = interval
        self._timers[timer] = now + interval

    def _restart_at(self, timer: Timer, now: float, interval: float) -> None:
        self._intervals[timer] = interval
        self._timers[timer] = now + interval

    # ----------------------------------------------------------------- table hook

    def _attach(self, listener: Listener | None) -> None:
        """Called by TransactionTable: be told after every input and timer."""
        self._listener = listener

    def _changed(self) -> None:
        if self._listener is not None:
            self._listener(self)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self._state.name} key={self.key!r} "
            f"timer={self.get_timer()!r}>"
        )


def absorb(tx: Transaction[Any], inp: Input, now: float) -> list[Action]:
    """Effect of rows that only change state, or that swallow a retransmission."""
    return []
