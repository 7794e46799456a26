"""Loss scenarios: a client and a server machine talking over a lossy virtual wire.

Why: retransmission rules only matter when something is lost.  The harness below plays
the part of two proxy cores (creating the server transaction on the first request,
building ACKs when asked, answering as a TU would) over a wire with 50 ms latency whose
n-th message in a direction can be dropped, all in virtual time — the same way aioquic's
``test_connect_with_loss_*`` drive two connections.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

from proxy.transaction import (
    Action,
    InviteClient,
    InviteServer,
    NeedAck,
    NonInviteClient,
    NonInviteServer,
    PassRequest,
    PassResponse,
    Send,
    Terminated,
    Timeout,
)
from tests.transaction.paths import ACK, INVITE, OPTIONS, resp

LATENCY = 0.05


@dataclass
class Wire:
    """Client <-> server datagrams; ``drop`` holds (direction, n) to lose (n from 1)."""

    invite: bool
    reliable: bool = False
    answers: tuple[int, ...] = (200,)  # what the server's TU sends, in order, at once
    drop: set[tuple[str, int]] = field(default_factory=set)
    now: float = 0.0
    client: Any = None
    server: Any = None
    queue: list[tuple[float, int, str, bytes]] = field(default_factory=list)
    sent: dict[str, int] = field(default_factory=lambda: {"up": 0, "down": 0})
    log: list[tuple[float, str]] = field(default_factory=list)
    to_tu: list[int] = field(default_factory=list)  # statuses the client TU received
    client_end: list[str] = field(default_factory=list)
    server_end: list[str] = field(default_factory=list)
    server_tu_acks: int = 0
    _seq: int = 0

    def start(self) -> None:
        cls = InviteClient if self.invite else NonInviteClient
        self.client = cls(INVITE if self.invite else OPTIONS, reliable=self.reliable)
        self.on_client(self.client.start(self.now))

    # ---- plumbing
    def transmit(self, direction: str, data: bytes) -> None:
        self.sent[direction] += 1
        n = self.sent[direction]
        lost = (direction, n) in self.drop
        self.log.append((self.now, f"{direction}#{n} {data[:14]!r}{' LOST' if lost else ''}"))
        if not lost:
            self._seq += 1
            heapq.heappush(self.queue, (self.now + LATENCY, self._seq, direction, data))

    def on_client(self, actions: list[Action]) -> None:
        for a in actions:
            if isinstance(a, Send):
                self.transmit("up", a.data)
            elif isinstance(a, PassResponse):
                self.to_tu.append(a.status)
            elif isinstance(a, NeedAck):
                self.on_client(self.client.set_ack(ACK, self.now))
            elif isinstance(a, Timeout | Terminated):
                self.client_end.append(type(a).__name__)

    def on_server(self, actions: list[Action]) -> None:
        for a in actions:
            if isinstance(a, Send):
                self.transmit("down", a.data)
            elif isinstance(a, PassRequest):
                self.server_tu_acks += 1
            elif isinstance(a, Timeout | Terminated):
                self.server_end.append(type(a).__name__)

    def deliver(self, direction: str, data: bytes) -> None:
        if direction == "down":
            status = int(data.split()[1])
            if not self.client.terminated:
                self.on_client(self.client.receive_response(status, data, self.now))
            return
        if self.server is None:  # first copy of the request: new server transaction
            cls = InviteServer if self.invite else NonInviteServer
            self.server = cls(reliable=self.reliable, now=self.now)
            for status in self.answers:
                self.on_server(self.server.send_response(status, resp(status), self.now))
        elif self.server.terminated:
            return  # the core would treat it as new or stray; not this test's business
        elif data == ACK:
            self.on_server(self.server.receive_ack(self.now))
        else:
            self.on_server(self.server.receive_request(self.now))

    def run(self, until: float = 200.0) -> None:
        self.start()
        while True:
            candidates = [self.queue[0][0]] if self.queue else []
            for tx in (self.client, self.server):
                if tx is not None and tx.get_timer() is not None:
                    candidates.append(tx.get_timer())
            if not candidates or min(candidates) > until:
                break
            self.now = min(candidates)
            if self.queue and self.queue[0][0] <= self.now:
                _, _, direction, data = heapq.heappop(self.queue)
                self.deliver(direction, data)
                continue
            if self.client.get_timer() is not None and self.client.get_timer() <= self.now:
                self.on_client(self.client.handle_timer(self.now))
            if (
                self.server is not None
                and (t := self.server.get_timer()) is not None
                and t <= self.now
            ):
                self.on_server(self.server.handle_timer(self.now))


def test_no_loss_non_invite() -> None:
    w = Wire(invite=False)
    w.run()
    assert w.to_tu == [200]
    assert w.sent == {"up": 1, "down": 1}
    assert w.client_end == ["Terminated"] and w.server_end == ["Terminated"]


def test_request_lost_then_retransmitted() -> None:
    w = Wire(invite=False, drop={("up", 1)})
    w.run()
    assert w.to_tu == [200]
    assert w.sent == {"up": 2, "down": 1}  # E resent it at T1
    assert w.log[1][0] == 0.5


def test_final_response_lost_request_retransmission_gets_it_again() -> None:
    w = Wire(invite=False, drop={("down", 1)})
    w.run()
    assert w.to_tu == [200]  # exactly once, from the resent copy
    assert w.sent["down"] == 2  # the server's Completed state answered the retransmission
    assert w.client_end == ["Terminated"]


def test_every_request_lost_times_out() -> None:
    w = Wire(invite=False, drop={("up", n) for n in range(1, 100)})
    w.run()
    assert w.to_tu == []
    assert w.client_end == ["Timeout", "Terminated"]
    assert w.sent["up"] == 11  # the request and 10 retransmissions within 64*T1


def test_invite_rejected_response_lost_g_resends_it() -> None:
    w = Wire(invite=True, answers=(486,), drop={("down", 1)})
    w.run()
    assert w.to_tu == [486]
    # the client's A also resent the INVITE at 0.5; the server answered that with the 486
    assert w.sent["up"] >= 2
    assert w.client_end == ["Terminated"] and w.server_end == ["Terminated"]


def test_ack_lost_server_resends_final_client_resends_ack() -> None:
    w = Wire(invite=True, answers=(180, 486), drop={("up", 2)})  # up#2 is the first ACK
    w.run()
    assert w.to_tu == [180, 486]  # the retransmitted 486 is absorbed, not passed up twice
    acks = [entry for entry in w.log if "ACK" in entry[1]]
    assert len(acks) == 2 and "LOST" in acks[0][1] and "LOST" not in acks[1][1]
    assert w.server_end == ["Terminated"]  # Confirmed, then I
    assert w.client_end == ["Terminated"]  # D


def test_provisional_lost_invite_retransmission_gets_it_again() -> None:
    w = Wire(invite=True, answers=(180,), drop={("down", 1)})
    w.run(until=40.0)
    assert w.to_tu == [180]
    assert w.client.state.name == "PROCEEDING"
    assert w.client_end == []  # no timeout in Proceeding: Timer C is the proxy core's


def test_invite_2xx_retransmission_is_absorbed_not_a_new_request() -> None:
    w = Wire(invite=True, answers=(200,), drop={("down", 1)})
    w.run()
    # the 2xx was lost; A resent the INVITE, which Accepted absorbed (RFC 6026), so the
    # client never learns — resending the 2xx is the TU's job, not the transaction's
    assert w.to_tu == []
    assert w.sent["down"] == 1
    assert w.server_end == ["Terminated"]  # L
    assert w.client_end == ["Timeout", "Terminated"]  # B


def test_reliable_invite_reject_no_retransmissions() -> None:
    w = Wire(invite=True, reliable=True, answers=(486,))
    w.run()
    assert w.to_tu == [486]
    assert w.sent == {"up": 2, "down": 1}  # INVITE, ACK; 486
    assert w.client_end == ["Terminated"] and w.server_end == ["Terminated"]
    assert w.now < 1.0  # D = I = 0: both gone right after the ACK
