"""Property tests over the whole state x input space of the four machines.

Why: the tables say what the RFC wants for the inputs it expects; the network and the
core's bugs produce every other input too.  Hypothesis drives each machine, over either
transport, with arbitrary sequences of every input (including nonsense status codes,
timers that are not running, time jumps) and checks the invariants:

* no input in any state raises; every output is an action value;
* after ``Terminated`` nothing is ever sent again, and ``Terminated`` comes once;
* ``handle_timer(now)`` leaves no timer due at ``now``;
* once the other side (or the TU) has said its last word, advancing time far enough
  ends every transaction — within 64*T1 plus the longest wait timer.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.transaction import (
    AckBuilt,
    AckReceived,
    Ignored,
    Input,
    InviteClient,
    InviteClientState,
    InviteServer,
    NonInviteClient,
    NonInviteServer,
    RequestReceived,
    ResponseReceived,
    ResponseSent,
    Send,
    Start,
    Terminated,
    Timer,
    TimerFired,
    TransportError,
)
from proxy.transaction.events import Action
from tests.transaction.paths import ACK, INVITE, OPTIONS, TRYING

ACTION_TYPES = Action.__args__

statuses = st.one_of(
    st.sampled_from([100, 180, 183, 199, 200, 202, 299, 300, 302, 404, 486, 487, 500, 603, 699]),
    st.integers(min_value=-10, max_value=1000),
)
inputs: st.SearchStrategy[Input] = st.one_of(
    st.just(Start()),
    st.builds(ResponseReceived, statuses, st.binary(max_size=8)),
    st.builds(ResponseSent, statuses, st.binary(max_size=8)),
    st.builds(AckBuilt, st.just(ACK)),
    st.just(RequestReceived()),
    st.just(AckReceived()),
    st.just(TransportError()),
    st.builds(TimerFired, st.sampled_from(list(Timer))),
)
steps = st.lists(
    st.tuples(st.one_of(inputs, st.just("timer")), st.floats(min_value=0, max_value=40)),
    max_size=25,
)


def make(kind: str, reliable: bool) -> Any:
    if kind == "ic":
        return InviteClient(INVITE, reliable=reliable)
    if kind == "nc":
        return NonInviteClient(OPTIONS, reliable=reliable)
    if kind == "is":
        return InviteServer(reliable=reliable, trying=TRYING)
    return NonInviteServer(reliable=reliable)


class Checker:
    """Feeds a machine and asserts the per-step invariants."""

    def __init__(self, tx: Any) -> None:
        self.tx = tx
        self.now = 0.0
        self.terminated_seen = 0

    def feed(self, what: Input | str, dt: float) -> list[Action]:
        self.now += dt
        was_terminated = self.tx.terminated
        if what == "timer":
            actions = self.tx.handle_timer(self.now)
            deadline = self.tx.get_timer()
            assert deadline is None or deadline > self.now
        else:
            assert not isinstance(what, str)
            actions = self.tx.handle(what, self.now)
        assert isinstance(actions, list)
        for action in actions:
            assert isinstance(action, ACTION_TYPES), action
        if was_terminated:
            assert all(isinstance(a, Ignored) for a in actions), actions
        n = sum(isinstance(a, Terminated) for a in actions)
        self.terminated_seen += n
        assert self.terminated_seen <= 1
        if n:
            assert isinstance(actions[-1], Terminated)  # nothing after it in the same list
            assert self.tx.terminated and self.tx.get_timer() is None
        assert self.tx.terminated == (self.terminated_seen == 1)
        return actions

    def settle(self) -> None:
        """The peer / TU says its last word, then time runs out."""
        tx = self.tx
        if isinstance(tx, InviteClient | NonInviteClient):
            self.feed(Start(), 0)
            if isinstance(tx, InviteClient) and tx.state is InviteClientState.PROCEEDING:
                self.feed(ResponseReceived(487, b"487"), 0)  # the CANCEL's effect
            if isinstance(tx, InviteClient) and tx.ack is None:
                self.feed(AckBuilt(ACK), 0)
        else:
            self.feed(ResponseSent(500, b"500"), 0)
        limit = self.now + 64 * 0.5 + 32.0 + 1.0
        while (deadline := tx.get_timer()) is not None:
            assert deadline <= limit, (tx, deadline)
            self.feed("timer", deadline - self.now)
        assert tx.terminated, tx
        for later in (
            Start(),
            RequestReceived(),
            ResponseSent(200, b"x"),
            ResponseReceived(200, b"x"),
            TimerFired(Timer.A),
        ):
            actions = self.feed(later, 1.0)
            assert not any(isinstance(a, Send) for a in actions)


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(["ic", "nc", "is", "ns"]), reliable=st.booleans(), seq=steps)
def test_any_input_sequence_keeps_the_invariants_and_ends(
    kind: str, reliable: bool, seq: list[Any]
) -> None:
    checker = Checker(make(kind, reliable))
    for what, dt in seq:
        checker.feed(what, dt)
    checker.settle()


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(["ic", "nc", "is", "ns"]),
    reliable=st.booleans(),
    seq=steps,
    jump=st.floats(min_value=0, max_value=1e12),
)
def test_time_jumps_never_spin_or_burst(
    kind: str, reliable: bool, seq: list[Any], jump: float
) -> None:
    checker = Checker(make(kind, reliable))
    checker.feed(Start(), 0)
    for what, dt in seq:
        checker.feed(what, dt)
    actions = checker.feed("timer", jump)
    assert sum(isinstance(a, Send) for a in actions) <= 1  # one copy at most per wakeup


@given(
    kind=st.sampled_from(["ic", "nc", "is", "ns"]),
    now=st.sampled_from([float("nan"), float("inf"), float("-inf")]),
)
def test_non_finite_time_is_refused_as_a_value(kind: str, now: float) -> None:
    tx = make(kind, False)
    assert isinstance(tx.handle_timer(now)[0], Ignored)
    assert isinstance(tx.handle(Start(), now)[0], Ignored)
