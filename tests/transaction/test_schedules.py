"""Retransmission and timeout schedules, checked by stepping virtual time.

Why: the RFC states the schedules as arithmetic (A doubles from T1; E and G double from
T1 up to T2; B, F, H, J, L, M are 64*T1; D is 32 s; I and K are T4), and interop depends
on getting them exactly — too eager floods a peer, too lazy loses calls.  Each test
starts a machine at a non-zero time and walks ``get_timer()``/``handle_timer()``.
"""

from __future__ import annotations

import pytest

from proxy.transaction import (
    InviteClient,
    InviteClientState,
    InviteServer,
    InviteServerState,
    NonInviteClient,
    NonInviteClientState,
    NonInviteServerState,
    Send,
    Terminated,
    Timeout,
    TimerConfig,
)
from tests.transaction.paths import (
    INVITE,
    OPTIONS,
    TRYING,
    invite_client,
    invite_server,
    non_invite_client,
    non_invite_server,
    resp,
    step,
    times_of,
)

T0 = 100.0


def offsets(times: list[float]) -> list[float]:
    return [round(t - T0, 9) for t in times]


def test_timer_a_doubles_without_cap_until_b() -> None:
    tx = InviteClient(INVITE, reliable=False)
    assert tx.start(T0) == [Send(INVITE)]
    assert tx.get_timer() == T0 + 0.5
    trace = step(tx, T0 + 1000)
    assert offsets(times_of(trace, Send)) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert offsets(times_of(trace, Timeout)) == [32.0]
    assert tx.state is InviteClientState.TERMINATED


def test_timer_e_doubles_to_t2_until_f() -> None:
    tx = NonInviteClient(OPTIONS, reliable=False)
    tx.start(T0)
    trace = step(tx, T0 + 1000)
    assert offsets(times_of(trace, Send)) == [
        0.5,
        1.5,
        3.5,
        7.5,
        11.5,
        15.5,
        19.5,
        23.5,
        27.5,
        31.5,
    ]
    assert offsets(times_of(trace, Timeout)) == [32.0]
    assert offsets(times_of(trace, Terminated)) == [32.0]


def test_timer_e_is_t2_in_proceeding() -> None:
    # §17.1.2.2: after a provisional, E restarts at T2 each time it fires.
    tx = non_invite_client(NonInviteClientState.TRYING, now=T0)
    step(tx, T0 + 0.5)  # first retransmission at +0.5; next E due at +1.5
    tx.receive_response(100, resp(100), T0 + 0.7)
    trace = step(tx, T0 + 1000)
    assert offsets(times_of(trace, Send)) == [1.5, 5.5, 9.5, 13.5, 17.5, 21.5, 25.5, 29.5]
    assert offsets(times_of(trace, Timeout)) == [32.0]


def test_timer_g_doubles_to_t2_until_h() -> None:
    tx = InviteServer(reliable=False, now=T0)
    assert tx.send_response(486, resp(486), T0) == [Send(resp(486))]
    trace = step(tx, T0 + 1000)
    assert offsets(times_of(trace, Send)) == [
        0.5,
        1.5,
        3.5,
        7.5,
        11.5,
        15.5,
        19.5,
        23.5,
        27.5,
        31.5,
    ]
    assert offsets(times_of(trace, Timeout)) == [32.0]
    assert tx.state is InviteServerState.TERMINATED


@pytest.mark.parametrize(
    ("reach", "state", "ends_at"),
    [
        (invite_client, InviteClientState.COMPLETED, 32.0),  # D
        (invite_client, InviteClientState.ACCEPTED, 32.0),  # M = 64*T1
        (non_invite_client, NonInviteClientState.COMPLETED, 5.0),  # K = T4
        (invite_server, InviteServerState.CONFIRMED, 5.0),  # I = T4
        (invite_server, InviteServerState.ACCEPTED, 32.0),  # L = 64*T1
        (non_invite_server, NonInviteServerState.COMPLETED, 32.0),  # J = 64*T1
    ],
    ids=["D", "M", "K", "I", "L", "J"],
)
def test_wait_timers_unreliable(reach, state, ends_at) -> None:  # type: ignore[no-untyped-def]
    tx = reach(state, now=T0)
    trace = step(tx, T0 + 1000)
    assert offsets(times_of(trace, Terminated)) == [ends_at]
    assert times_of(trace, Send) == []  # waiting states never retransmit on their own


@pytest.mark.parametrize(
    ("reach", "state", "ends_at"),
    [
        (invite_client, InviteClientState.ACCEPTED, 32.0),  # M does not depend on transport
        (invite_server, InviteServerState.ACCEPTED, 32.0),  # nor L
    ],
    ids=["M", "L"],
)
def test_accepted_timers_reliable(reach, state, ends_at) -> None:  # type: ignore[no-untyped-def]
    tx = reach(state, now=T0, reliable=True)
    trace = step(tx, T0 + 1000)
    assert offsets(times_of(trace, Terminated)) == [ends_at]


def test_reliable_clients_never_retransmit_but_time_out() -> None:
    for tx in (InviteClient(INVITE, reliable=True), NonInviteClient(OPTIONS, reliable=True)):
        assert len(tx.start(T0)) == 1
        assert tx.get_timer() == T0 + 32.0  # only B / F
        trace = step(tx, T0 + 1000)
        assert times_of(trace, Send) == []
        assert offsets(times_of(trace, Timeout)) == [32.0]


def test_reliable_invite_server_waits_for_ack_without_retransmitting() -> None:
    tx = InviteServer(reliable=True, now=T0)
    tx.send_response(503, resp(503), T0)
    assert tx.get_timer() == T0 + 32.0  # only H
    trace = step(tx, T0 + 1000)
    assert times_of(trace, Send) == []
    assert offsets(times_of(trace, Timeout)) == [32.0]


def test_reliable_zero_timers_terminate_at_once() -> None:
    ic = invite_client(InviteClientState.COMPLETED, reliable=True, with_ack=False, now=T0)
    assert ic.get_timer() == T0  # D = 0, waiting only for the core's ACK
    assert ic.set_ack(b"ACK") == [Send(b"ACK"), Terminated()]
    # a core that never builds the ACK still sees the transaction end when D fires
    ic2 = invite_client(InviteClientState.COMPLETED, reliable=True, with_ack=False, now=T0)
    assert ic2.handle_timer(T0) == [Terminated()]


def test_custom_t1_scales_every_timer() -> None:
    cfg = TimerConfig(t1=0.1, t2=0.4, t4=1.0, timer_d=6.4)
    tx = NonInviteClient(OPTIONS, reliable=False, config=cfg)
    tx.start(T0)
    trace = step(tx, T0 + 100)
    assert offsets(times_of(trace, Send))[:5] == [0.1, 0.3, 0.7, 1.1, 1.5]
    assert offsets(times_of(trace, Timeout)) == pytest.approx([6.4])


def test_auto_trying_after_200ms_unless_the_tu_spoke() -> None:
    tx = InviteServer(reliable=False, trying=TRYING, now=T0)
    assert tx.get_timer() == T0 + 0.2
    assert tx.handle_timer(T0 + 0.2) == [Send(TRYING)]
    assert tx.receive_request(T0 + 0.5) == [Send(TRYING)]  # retransmission: resend the 100
    quiet = InviteServer(reliable=False, trying=TRYING, now=T0)
    quiet.send_response(180, resp(180), T0 + 0.1)
    assert quiet.get_timer() is None  # the TU answered within 200 ms: no 100 from us
    no_option = InviteServer(reliable=False, now=T0)
    assert no_option.get_timer() is None


def test_late_wakeup_sends_one_copy_not_a_burst() -> None:
    tx = InviteClient(INVITE, reliable=False)
    tx.start(T0)
    actions = tx.handle_timer(T0 + 20.0)  # A was due at +0.5; the loop slept
    assert actions == [Send(INVITE)]
    assert tx.get_timer() == T0 + 21.0  # restarted from now with the doubled interval


def test_handle_timer_leaves_nothing_due() -> None:
    tx = InviteClient(INVITE, reliable=False)
    tx.start(T0)
    for now in (T0 + 0.5, T0 + 0.6, T0 + 3.0, T0 + 3.5):
        tx.handle_timer(now)
        timer = tx.get_timer()
        assert timer is None or timer > now


@pytest.mark.parametrize(
    "bad",
    [
        {"t1": 0},
        {"t1": -1},
        {"t2": 0.1},
        {"t4": -1},
        {"timer_d": -1},
        {"trying_delay": -0.1},
        {"t1": float("nan")},
    ],
)
def test_timer_config_refuses_values_that_would_spin(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        TimerConfig(**bad)
