"""Shared fixtures for the transaction tests: opaque messages, ways to reach each state,
and a virtual clock that steps a transaction (or a table) from timer to timer.

Why: every test needs "a transaction in state X" and "what happens as time passes"; doing
it one way keeps the tests about the RFC rows rather than about setup.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any

from proxy.transaction import (
    Action,
    InviteClient,
    InviteClientState,
    InviteServer,
    InviteServerState,
    NonInviteClient,
    NonInviteClientState,
    NonInviteServer,
    NonInviteServerState,
    Transaction,
)

INVITE = b"INVITE sip:bob@example.com SIP/2.0\r\nCSeq: 1 INVITE\r\n\r\n"
OPTIONS = b"OPTIONS sip:bob@example.com SIP/2.0\r\nCSeq: 1 OPTIONS\r\n\r\n"
ACK = b"ACK sip:bob@example.com SIP/2.0\r\nCSeq: 1 ACK\r\n\r\n"
TRYING = b"SIP/2.0 100 Trying\r\n\r\n"


def resp(status: int) -> bytes:
    """An opaque response: the machines only ever look at the status argument."""
    return f"SIP/2.0 {status} X\r\n\r\n".encode()


Machine = Transaction[Any]


def invite_client(
    state: InviteClientState, *, reliable: bool = False, now: float = 0.0, with_ack: bool = True
) -> InviteClient:
    tx = InviteClient(INVITE, reliable=reliable)
    tx.start(now)
    if state is InviteClientState.PROCEEDING:
        tx.receive_response(180, resp(180), now)
    elif state is InviteClientState.ACCEPTED:
        tx.receive_response(200, resp(200), now)
    elif state is InviteClientState.COMPLETED:
        tx.receive_response(486, resp(486), now)
        if with_ack:
            tx.set_ack(ACK, now)
    assert tx.state is state
    return tx


def non_invite_client(
    state: NonInviteClientState, *, reliable: bool = False, now: float = 0.0
) -> NonInviteClient:
    tx = NonInviteClient(OPTIONS, reliable=reliable)
    tx.start(now)
    if state is NonInviteClientState.PROCEEDING:
        tx.receive_response(100, resp(100), now)
    elif state is NonInviteClientState.COMPLETED:
        tx.receive_response(200, resp(200), now)
    assert tx.state is state
    return tx


def invite_server(
    state: InviteServerState,
    *,
    reliable: bool = False,
    now: float = 0.0,
    trying: bytes | None = None,
) -> InviteServer:
    tx = InviteServer(reliable=reliable, trying=trying, now=now)
    if state is InviteServerState.COMPLETED:
        tx.send_response(486, resp(486), now)
    elif state is InviteServerState.CONFIRMED:
        tx.send_response(486, resp(486), now)
        tx.receive_ack(now)
    elif state is InviteServerState.ACCEPTED:
        tx.send_response(200, resp(200), now)
    assert tx.state is state
    return tx


def non_invite_server(
    state: NonInviteServerState, *, reliable: bool = False, now: float = 0.0
) -> NonInviteServer:
    tx = NonInviteServer(reliable=reliable, now=now)
    if state is NonInviteServerState.PROCEEDING:
        tx.send_response(100, resp(100), now)
    elif state is NonInviteServerState.COMPLETED:
        tx.send_response(200, resp(200), now)
    assert tx.state is state
    return tx


REACH: dict[type, Callable[..., Machine]] = {
    InviteClientState: invite_client,
    NonInviteClientState: non_invite_client,
    InviteServerState: invite_server,
    NonInviteServerState: non_invite_server,
}


def reach(state: Enum, **kw: Any) -> Machine:
    return REACH[type(state)](state, **kw)


def step(tx: Machine, until: float) -> list[tuple[float, list[Action]]]:
    """Advance virtual time timer by timer up to ``until``; return (time, actions) pairs."""
    out: list[tuple[float, list[Action]]] = []
    while (deadline := tx.get_timer()) is not None and deadline <= until:
        out.append((deadline, tx.handle_timer(deadline)))
    return out


def times_of(trace: list[tuple[float, list[Action]]], kind: type) -> list[float]:
    """The instants at which an action of ``kind`` came out."""
    return [t for t, actions in trace for a in actions if isinstance(a, kind)]
