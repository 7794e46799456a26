"""TransactionTable: RFC 3261 §17.1.3/§17.2.3 keys, admission, and the shared timer heap.

Why: the table is what the asyncio side re-arms its single timer from, so its
``get_timer`` must never be late (a missed retransmission) and should rarely be early
(a wasted wakeup), and its cost must not grow with the number of live transactions.
"""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.transaction import (
    AckReceived,
    Admission,
    ClientKey,
    InviteClient,
    InviteServer,
    NonInviteClient,
    NonInviteServer,
    RequestReceived,
    ResponseReceived,
    ResponseSent,
    Send,
    ServerKey,
    Start,
    Terminated,
    Timeout,
    TransactionTable,
    TransportError,
    client_key,
    is_rfc3261_branch,
    legacy_server_key,
    server_key,
)
from tests.transaction.paths import ACK, INVITE, OPTIONS, resp

# ------------------------------------------------------------------------------ keys


def test_client_key_is_branch_and_cseq_method() -> None:
    # §17.1.3: CANCEL shares the INVITE's branch; the CSeq method tells them apart.
    assert client_key("z9hG4bK1", "INVITE") == ClientKey("z9hG4bK1", "INVITE")
    assert client_key("z9hG4bK1", "INVITE") != client_key("z9hG4bK1", "CANCEL")
    assert client_key("z9hG4bK1", "INVITE") != client_key("z9hG4bK2", "INVITE")


def test_server_key_files_ack_under_invite_and_cancel_apart() -> None:
    invite = server_key("z9hG4bKa", "host.example.com:5060", "INVITE")
    assert server_key("z9hG4bKa", "host.example.com:5060", "ACK") == invite
    assert server_key("z9hG4bKa", "host.example.com:5060", "CANCEL") != invite
    assert server_key("z9hG4bKa", "HOST.Example.com:5060", "INVITE") == invite
    assert server_key("z9hG4bKa", "other.example.com:5060", "INVITE") != invite
    assert server_key("z9hG4bKa", "host.example.com:5060", "invite") != invite  # §7.1
    assert invite == ServerKey("z9hG4bKa", "host.example.com:5060", "INVITE")


def test_magic_cookie_decides_between_branch_and_legacy_matching() -> None:
    assert is_rfc3261_branch("z9hG4bK776asdhds")
    assert not is_rfc3261_branch("776asdhds")
    assert not is_rfc3261_branch("")
    fields = (
        "sip:bob@example.com",
        "1928301774",
        "a84b4c76e66710",
        "314159",
        "SIP/2.0/UDP pc33.example.com",
    )
    assert legacy_server_key(fields, "ACK") == legacy_server_key(fields, "INVITE")
    assert legacy_server_key(fields, "BYE") != legacy_server_key(fields, "INVITE")
    assert legacy_server_key(fields, "INVITE") != legacy_server_key((*fields[:-1], "x"), "INVITE")


# ------------------------------------------------------------------------------ admission


def test_add_get_duplicate_remove() -> None:
    table = TransactionTable()
    key = server_key("z9hG4bK1", "a:5060", "INVITE")
    tx = InviteServer(reliable=False)
    assert table.add(key, tx) is Admission.ADDED
    assert table.get(key) is tx and key in table and len(table) == 1 and tx.key == key
    assert table.add(key, InviteServer(reliable=False)) is Admission.DUPLICATE
    assert table.get(server_key("z9hG4bK1", "a:5060", "ACK")) is tx
    assert table.remove(key) is tx
    assert table.remove(key) is None
    assert len(table) == 0 and table.get_timer() is None


def test_cap_answers_full_until_one_ends() -> None:
    table = TransactionTable(max_transactions=2)
    servers = [NonInviteServer(reliable=True) for _ in range(3)]
    keys = [server_key(f"z9hG4bK{i}", "a", "OPTIONS") for i in range(3)]
    assert table.add(keys[0], servers[0]) is Admission.ADDED
    assert table.add(keys[1], servers[1]) is Admission.ADDED
    assert table.full
    assert table.add(keys[2], servers[2]) is Admission.FULL  # the core answers 503
    # a reliable non-INVITE server ends the moment its final goes out (J = 0)
    assert servers[0].send_response(200, resp(200), 0.0) == [Send(resp(200)), Terminated()]
    assert keys[0] not in table and not table.full
    assert table.add(keys[2], servers[2]) is Admission.ADDED


def test_terminated_transactions_leave_by_themselves() -> None:
    table = TransactionTable()
    tx = InviteClient(INVITE, reliable=True)
    key = client_key("z9hG4bK1", "INVITE")
    table.add(key, tx)
    tx.start(0.0)
    tx.receive_response(486, resp(486), 1.0)
    assert key in table
    tx.set_ack(ACK)
    assert key not in table and tx.key == key


# ------------------------------------------------------------------------------ timers


def test_get_timer_follows_timers_that_start_move_earlier_and_later() -> None:
    table = TransactionTable()
    server = NonInviteServer(reliable=False)  # Trying: no timer
    table.add(server_key("z9hG4bK1", "a", "OPTIONS"), server)
    assert table.get_timer() is None
    server.send_response(200, resp(200), 10.0)  # J starts: from nothing to 42
    assert table.get_timer() == 42.0
    client = InviteClient(INVITE, reliable=False)
    table.add(client_key("z9hG4bK2", "INVITE"), client)
    client.start(20.0)  # A at 20.5: earlier than J
    assert table.get_timer() == 20.5
    client.receive_response(180, resp(180), 20.1)  # Proceeding: no timers; A's entry stale
    assert table.get_timer() == 42.0
    assert table.handle_timer(41.0) == []
    assert table.handle_timer(42.0) == [(server, [Terminated()])]
    assert len(table) == 1 and table.get_timer() is None


def test_handle_timer_reports_actions_per_transaction_in_deadline_order() -> None:
    table = TransactionTable()
    a = NonInviteClient(OPTIONS, reliable=False)
    b = NonInviteClient(OPTIONS, reliable=False)
    table.add(client_key("z9hG4bKa", "OPTIONS"), a)
    table.add(client_key("z9hG4bKb", "OPTIONS"), b)
    a.start(0.2)
    b.start(0.0)
    # b was due at 0.5, a at 0.7: both fire, b first; each restarts from the late wakeup
    assert table.handle_timer(1.0) == [(b, [Send(OPTIONS)]), (a, [Send(OPTIONS)])]
    assert table.get_timer() == 2.0


def test_timeout_reaches_the_core_and_the_table_empties() -> None:
    table = TransactionTable()
    tx = InviteClient(INVITE, reliable=True)
    table.add(client_key("z9hG4bK1", "INVITE"), tx)
    tx.start(0.0)
    assert table.get_timer() == 32.0
    assert table.handle_timer(32.0) == [(tx, [Timeout(), Terminated()])]
    assert len(table) == 0 and table.get_timer() is None


def test_heap_stays_bounded_under_churn() -> None:
    table = TransactionTable()
    now = 0.0
    for i in range(30_000):
        tx = NonInviteClient(OPTIONS, reliable=False)
        key = client_key(f"z9hG4bK{i}", "OPTIONS")
        table.add(key, tx)
        tx.start(now)
        if i % 3:
            tx.receive_response(200, resp(200), now)  # Completed: K later than E
        if i % 2:
            table.remove(key)  # leaves a stale heap entry behind
        now += 0.001
        if i % 1000 == 0:
            table.handle_timer(now)
    table.handle_timer(now)
    assert len(table._heap) <= 2 * len(table) + 1024 + 1000


def _schedule(start: float, reliable: bool) -> list[float]:
    """Expected Send instants of a NonInviteClient started at ``start`` (§17.1.2.2)."""
    if reliable:
        return []
    out, t, interval = [], start, 0.5
    while t + interval < start + 32.0:
        t += interval
        out.append(t)
        interval = min(2 * interval, 4.0)
    return out


def test_fifty_thousand_transactions_fire_in_order_on_schedule() -> None:
    rng = random.Random(3261)
    table = TransactionTable(max_transactions=50_000)
    starts: dict[int, tuple[float, bool]] = {}
    for i in range(50_000):
        reliable = rng.random() < 0.3
        tx: Any = NonInviteClient(OPTIONS, reliable=reliable)
        start = round(rng.uniform(0, 10), 3)
        assert table.add(client_key(f"z9hG4bK{i}", "OPTIONS"), tx) is Admission.ADDED
        tx.start(start)
        starts[id(tx)] = (start, reliable)
    assert (
        table.add(client_key("z9hG4bKx", "OPTIONS"), NonInviteClient(OPTIONS, reliable=True))
        is Admission.FULL
    )
    sends: dict[int, list[float]] = {k: [] for k in starts}
    timeouts: dict[int, float] = {}
    last = -1.0
    began = time.perf_counter()
    while (deadline := table.get_timer()) is not None:
        assert deadline >= last  # never goes back in time
        last = deadline
        for tx, actions in table.handle_timer(deadline):
            for action in actions:
                if isinstance(action, Send):
                    sends[id(tx)].append(deadline)
                elif isinstance(action, Timeout):
                    timeouts[id(tx)] = deadline
    elapsed = time.perf_counter() - began
    assert len(table) == 0
    assert len(timeouts) == 50_000
    for key, (start, reliable) in starts.items():
        assert sends[key] == pytest.approx(_schedule(start, reliable)), key
        assert timeouts[key] == pytest.approx(start + 32.0)
    assert elapsed < 20.0, f"{elapsed:.1f} s for 50k transactions"


# ------------------------------------------------------------------------------ model check

_ops = st.lists(
    st.tuples(
        st.sampled_from(["add", "feed", "tick", "remove"]),
        st.integers(min_value=0, max_value=10_000),
        st.floats(min_value=0, max_value=5),
        st.sampled_from(
            [
                Start(),
                ResponseReceived(180, b"r"),
                ResponseReceived(200, b"r"),
                ResponseReceived(486, b"r"),
                ResponseSent(100, b"s"),
                ResponseSent(200, b"s"),
                ResponseSent(486, b"s"),
                RequestReceived(),
                AckReceived(),
                TransportError(),
            ]
        ),
    ),
    max_size=60,
)


@settings(max_examples=400, deadline=None)
@given(ops=_ops)
def test_table_timer_always_equals_the_brute_force_minimum(ops: list[Any]) -> None:
    table = TransactionTable(max_transactions=8)
    live: dict[Any, Any] = {}
    now, serial = 0.0, 0
    for op, pick, dt, inp in ops:
        now += dt
        keys = sorted(live, key=repr)
        if op == "add":
            serial += 1
            kind = pick % 4
            tx: Any = (
                InviteClient(INVITE, reliable=pick % 3 == 0),
                NonInviteClient(OPTIONS, reliable=pick % 3 == 0),
                InviteServer(reliable=pick % 3 == 0, now=now),
                NonInviteServer(reliable=pick % 3 == 0, now=now),
            )[kind]
            key = client_key(f"z9hG4bK{serial}", "X")
            admission = table.add(key, tx)
            assert admission is (Admission.FULL if len(live) >= 8 else Admission.ADDED)
            if admission is Admission.ADDED:
                live[key] = tx
                if kind < 2:
                    tx.start(now)
        elif op == "feed" and keys:
            live[keys[pick % len(keys)]].handle(inp, now)
        elif op == "tick":
            for tx, _ in table.handle_timer(now):
                assert tx.key in live
        elif op == "remove" and keys:
            assert table.remove(keys[pick % len(keys)]) is live[keys[pick % len(keys)]]
        live = {k: t for k, t in live.items() if not t.terminated and k in table}
        assert len(table) == len(live)
        assert all(table.get(k) is t for k, t in live.items())
        timers = [t.get_timer() for t in live.values() if t.get_timer() is not None]
        assert table.get_timer() == (min(timers) if timers else None)


def test_timer_moving_earlier_is_seen_behind_another_transaction() -> None:
    # A reliable INVITE client: B at 32; a 486 at 1.0 starts D = 0 (the core has not
    # built the ACK yet).  Another transaction's timer at 10 sits between the two: the
    # table must report 1.0, not 10 (nor 32).
    table = TransactionTable()
    other = NonInviteServer(reliable=False)
    table.add(server_key("z9hG4bKo", "a", "OPTIONS"), other)
    other.send_response(200, resp(200), -22.0)  # J due at 10.0
    tx = InviteClient(INVITE, reliable=True)
    table.add(client_key("z9hG4bK1", "INVITE"), tx)
    tx.start(0.0)
    assert table.get_timer() == 10.0
    tx.receive_response(486, resp(486), 1.0)
    assert table.get_timer() == 1.0
    assert table.handle_timer(1.0) == [(tx, [Terminated()])]
    assert table.get_timer() == 10.0
