"""Every row of the four transition tables, one test each (RFC 3261 §17, RFC 6026).

Why a table of cases: the machines are tables, so the tests are too — each case puts a
transaction in a state by the RFC's own path, feeds one input and checks the actions and
the next state.  ``test_every_row_is_covered`` fails when a row is added without a case.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import pytest

from proxy.transaction import (
    AckBuilt,
    AckReceived,
    Action,
    Ignored,
    Input,
    InviteClient,
    InviteClientState,
    InviteServer,
    InviteServerState,
    NeedAck,
    NonInviteClient,
    NonInviteClientState,
    NonInviteServer,
    NonInviteServerState,
    PassRequest,
    PassResponse,
    RequestReceived,
    ResponseReceived,
    ResponseSent,
    Send,
    Start,
    Terminated,
    Timeout,
    Timer,
    TimerFired,
    TransportError,
    TransportFailure,
)
from proxy.transaction.machine import classify
from tests.transaction.paths import ACK, INVITE, OPTIONS, TRYING, reach, resp

IC, NC, IS, NS = InviteClientState, NonInviteClientState, InviteServerState, NonInviteServerState


@dataclass(frozen=True)
class Case:
    start: Enum
    inp: Input
    actions: list[Action]
    end: Enum
    reliable: bool = False
    setup: dict[str, Any] = field(default_factory=dict)
    fresh: bool = False  # a client not yet started (for the Start row)

    def build(self) -> Any:
        if self.fresh:
            cls = InviteClient if isinstance(self.start, InviteClientState) else NonInviteClient
            body = INVITE if cls is InviteClient else OPTIONS
            return cls(body, reliable=self.reliable)
        return reach(self.start, reliable=self.reliable, **self.setup)


def rx(status: int) -> ResponseReceived:
    return ResponseReceived(status, resp(status))


def tx(status: int) -> ResponseSent:
    return ResponseSent(status, resp(status))


def passed(status: int) -> PassResponse:
    return PassResponse(status, resp(status))


CASES: dict[str, Case] = {
    # ------------------------------------------------------------ INVITE client, §17.1.1
    "ic calling start": Case(IC.CALLING, Start(), [Send(INVITE)], IC.CALLING, fresh=True),
    "ic calling A": Case(IC.CALLING, TimerFired(Timer.A), [Send(INVITE)], IC.CALLING),
    "ic calling B": Case(IC.CALLING, TimerFired(Timer.B), [Timeout(), Terminated()], IC.TERMINATED),
    "ic calling transport": Case(
        IC.CALLING, TransportError(), [TransportFailure(), Terminated()], IC.TERMINATED
    ),
    "ic calling 1xx": Case(IC.CALLING, rx(180), [passed(180)], IC.PROCEEDING),
    "ic proceeding 1xx": Case(IC.PROCEEDING, rx(183), [passed(183)], IC.PROCEEDING),
    "ic calling 2xx": Case(IC.CALLING, rx(200), [passed(200)], IC.ACCEPTED),
    "ic proceeding 2xx": Case(IC.PROCEEDING, rx(202), [passed(202)], IC.ACCEPTED),
    "ic calling 3xx-6xx": Case(IC.CALLING, rx(302), [passed(302), NeedAck(302)], IC.COMPLETED),
    "ic proceeding 3xx-6xx": Case(
        IC.PROCEEDING, rx(603), [passed(603), NeedAck(603)], IC.COMPLETED
    ),
    "ic completed set_ack": Case(
        IC.COMPLETED, AckBuilt(ACK), [Send(ACK)], IC.COMPLETED, setup={"with_ack": False}
    ),
    "ic completed set_ack reliable": Case(
        IC.COMPLETED,
        AckBuilt(ACK),
        [Send(ACK), Terminated()],
        IC.TERMINATED,
        reliable=True,
        setup={"with_ack": False},
    ),
    "ic completed final again": Case(IC.COMPLETED, rx(486), [Send(ACK)], IC.COMPLETED),
    "ic completed final before ack": Case(
        IC.COMPLETED, rx(486), [], IC.COMPLETED, setup={"with_ack": False}
    ),
    "ic completed transport": Case(
        IC.COMPLETED, TransportError(), [TransportFailure(), Terminated()], IC.TERMINATED
    ),
    "ic completed D": Case(IC.COMPLETED, TimerFired(Timer.D), [Terminated()], IC.TERMINATED),
    "ic accepted 2xx": Case(IC.ACCEPTED, rx(200), [passed(200)], IC.ACCEPTED),
    "ic accepted M": Case(IC.ACCEPTED, TimerFired(Timer.M), [Terminated()], IC.TERMINATED),
    # absorbed or refused (no row)
    "ic proceeding A stopped": Case(
        IC.PROCEEDING, TimerFired(Timer.A), [Ignored("timer A is not running")], IC.PROCEEDING
    ),
    "ic completed 1xx absorbed": Case(IC.COMPLETED, rx(180), [], IC.COMPLETED),
    "ic completed 2xx absorbed": Case(IC.COMPLETED, rx(200), [], IC.COMPLETED),
    "ic accepted 1xx absorbed": Case(IC.ACCEPTED, rx(180), [], IC.ACCEPTED),
    "ic accepted final absorbed": Case(IC.ACCEPTED, rx(486), [], IC.ACCEPTED),
    "ic proceeding transport ignored": Case(IC.PROCEEDING, TransportError(), [], IC.PROCEEDING),
    # ------------------------------------------------------------ non-INVITE client, §17.1.2
    "nc trying start": Case(NC.TRYING, Start(), [Send(OPTIONS)], NC.TRYING, fresh=True),
    "nc trying E": Case(NC.TRYING, TimerFired(Timer.E), [Send(OPTIONS)], NC.TRYING),
    "nc proceeding E": Case(NC.PROCEEDING, TimerFired(Timer.E), [Send(OPTIONS)], NC.PROCEEDING),
    "nc trying F": Case(NC.TRYING, TimerFired(Timer.F), [Timeout(), Terminated()], NC.TERMINATED),
    "nc proceeding F": Case(
        NC.PROCEEDING, TimerFired(Timer.F), [Timeout(), Terminated()], NC.TERMINATED
    ),
    "nc trying transport": Case(
        NC.TRYING, TransportError(), [TransportFailure(), Terminated()], NC.TERMINATED
    ),
    "nc proceeding transport": Case(
        NC.PROCEEDING, TransportError(), [TransportFailure(), Terminated()], NC.TERMINATED
    ),
    "nc trying 1xx": Case(NC.TRYING, rx(100), [passed(100)], NC.PROCEEDING),
    "nc proceeding 1xx": Case(NC.PROCEEDING, rx(180), [passed(180)], NC.PROCEEDING),
    "nc trying 2xx": Case(NC.TRYING, rx(200), [passed(200)], NC.COMPLETED),
    "nc trying 2xx reliable": Case(
        NC.TRYING, rx(200), [passed(200), Terminated()], NC.TERMINATED, reliable=True
    ),
    "nc trying final": Case(NC.TRYING, rx(404), [passed(404)], NC.COMPLETED),
    "nc proceeding 2xx": Case(NC.PROCEEDING, rx(200), [passed(200)], NC.COMPLETED),
    "nc proceeding final": Case(NC.PROCEEDING, rx(500), [passed(500)], NC.COMPLETED),
    "nc proceeding final reliable": Case(
        NC.PROCEEDING, rx(500), [passed(500), Terminated()], NC.TERMINATED, reliable=True
    ),
    "nc completed 2xx absorbed": Case(NC.COMPLETED, rx(200), [], NC.COMPLETED),
    "nc completed final absorbed": Case(NC.COMPLETED, rx(503), [], NC.COMPLETED),
    "nc completed K": Case(NC.COMPLETED, TimerFired(Timer.K), [Terminated()], NC.TERMINATED),
    "nc completed 1xx absorbed": Case(NC.COMPLETED, rx(100), [], NC.COMPLETED),
    # ------------------------------------------------------------ INVITE server, §17.2.1
    "is proceeding retransmission, nothing sent": Case(
        IS.PROCEEDING, RequestReceived(), [], IS.PROCEEDING
    ),
    "is proceeding 1xx": Case(IS.PROCEEDING, tx(180), [Send(resp(180))], IS.PROCEEDING),
    "is proceeding trying timer": Case(
        IS.PROCEEDING,
        TimerFired(Timer.TRYING),
        [Send(TRYING)],
        IS.PROCEEDING,
        setup={"trying": TRYING},
    ),
    "is proceeding 2xx": Case(IS.PROCEEDING, tx(200), [Send(resp(200))], IS.ACCEPTED),
    "is proceeding final": Case(IS.PROCEEDING, tx(486), [Send(resp(486))], IS.COMPLETED),
    "is proceeding transport": Case(
        IS.PROCEEDING, TransportError(), [TransportFailure(), Terminated()], IS.TERMINATED
    ),
    "is completed retransmission": Case(
        IS.COMPLETED, RequestReceived(), [Send(resp(486))], IS.COMPLETED
    ),
    "is completed G": Case(IS.COMPLETED, TimerFired(Timer.G), [Send(resp(486))], IS.COMPLETED),
    "is completed H": Case(
        IS.COMPLETED, TimerFired(Timer.H), [Timeout(), Terminated()], IS.TERMINATED
    ),
    "is completed transport": Case(
        IS.COMPLETED, TransportError(), [TransportFailure(), Terminated()], IS.TERMINATED
    ),
    "is completed ack": Case(IS.COMPLETED, AckReceived(), [], IS.CONFIRMED),
    "is completed ack reliable": Case(
        IS.COMPLETED, AckReceived(), [Terminated()], IS.TERMINATED, reliable=True
    ),
    "is confirmed ack": Case(IS.CONFIRMED, AckReceived(), [], IS.CONFIRMED),
    "is confirmed retransmission": Case(IS.CONFIRMED, RequestReceived(), [], IS.CONFIRMED),
    "is confirmed I": Case(IS.CONFIRMED, TimerFired(Timer.I), [Terminated()], IS.TERMINATED),
    "is accepted retransmission": Case(IS.ACCEPTED, RequestReceived(), [], IS.ACCEPTED),
    "is accepted ack": Case(IS.ACCEPTED, AckReceived(), [PassRequest()], IS.ACCEPTED),
    "is accepted 2xx": Case(IS.ACCEPTED, tx(200), [Send(resp(200))], IS.ACCEPTED),
    "is accepted transport": Case(IS.ACCEPTED, TransportError(), [TransportFailure()], IS.ACCEPTED),
    "is accepted L": Case(IS.ACCEPTED, TimerFired(Timer.L), [Terminated()], IS.TERMINATED),
    # absorbed or refused (no row)
    "is proceeding ack absorbed": Case(IS.PROCEEDING, AckReceived(), [], IS.PROCEEDING),
    "is completed final refused": Case(
        IS.COMPLETED,
        tx(500),
        [Ignored("InviteServer takes no '300-699 from TU' in state COMPLETED")],
        IS.COMPLETED,
    ),
    "is accepted final refused": Case(
        IS.ACCEPTED,
        tx(486),
        [Ignored("InviteServer takes no '300-699 from TU' in state ACCEPTED")],
        IS.ACCEPTED,
    ),
    # ------------------------------------------------------------ non-INVITE server, §17.2.2
    "ns trying retransmission": Case(NS.TRYING, RequestReceived(), [], NS.TRYING),
    "ns trying 1xx": Case(NS.TRYING, tx(100), [Send(resp(100))], NS.PROCEEDING),
    "ns trying 2xx": Case(NS.TRYING, tx(200), [Send(resp(200))], NS.COMPLETED),
    "ns trying 2xx reliable": Case(
        NS.TRYING, tx(200), [Send(resp(200)), Terminated()], NS.TERMINATED, reliable=True
    ),
    "ns trying final": Case(NS.TRYING, tx(403), [Send(resp(403))], NS.COMPLETED),
    "ns proceeding 1xx": Case(NS.PROCEEDING, tx(180), [Send(resp(180))], NS.PROCEEDING),
    "ns proceeding 2xx": Case(NS.PROCEEDING, tx(202), [Send(resp(202))], NS.COMPLETED),
    "ns proceeding final": Case(NS.PROCEEDING, tx(481), [Send(resp(481))], NS.COMPLETED),
    "ns proceeding retransmission": Case(
        NS.PROCEEDING, RequestReceived(), [Send(resp(100))], NS.PROCEEDING
    ),
    "ns proceeding transport": Case(
        NS.PROCEEDING, TransportError(), [TransportFailure(), Terminated()], NS.TERMINATED
    ),
    "ns completed retransmission": Case(
        NS.COMPLETED, RequestReceived(), [Send(resp(200))], NS.COMPLETED
    ),
    "ns completed transport": Case(
        NS.COMPLETED, TransportError(), [TransportFailure(), Terminated()], NS.TERMINATED
    ),
    "ns completed J": Case(NS.COMPLETED, TimerFired(Timer.J), [Terminated()], NS.TERMINATED),
    # absorbed or refused (no row)
    "ns completed final refused": Case(
        NS.COMPLETED,
        tx(500),
        [Ignored("NonInviteServer takes no '300-699 from TU' in state COMPLETED")],
        NS.COMPLETED,
    ),
    "ns trying ack absorbed": Case(NS.TRYING, AckReceived(), [], NS.TRYING),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_transition(name: str) -> None:
    case = CASES[name]
    machine = case.build()
    assert machine.handle(case.inp, 1.0) == case.actions
    assert machine.state is case.end
    if case.end.name == "TERMINATED":
        assert machine.terminated and machine.get_timer() is None


@pytest.mark.parametrize(
    "cls",
    [InviteClient, NonInviteClient, InviteServer, NonInviteServer],
    ids=lambda c: c.__name__,
)
def test_every_row_is_covered(cls: Any) -> None:
    covered = {(c.start, classify(c.inp)) for c in CASES.values()}
    missing = [f"{s.name} + {t}" for (s, t) in cls._TABLE if (s, t) not in covered]
    assert not missing, f"rows without a test case: {missing}"


@pytest.mark.parametrize(
    "cls",
    [InviteClient, NonInviteClient, InviteServer, NonInviteServer],
    ids=lambda c: c.__name__,
)
def test_every_row_cites_the_rfc_and_stays_in_its_machine(cls: Any) -> None:
    states = {type(s) for s, _ in cls._TABLE}
    assert len(states) == 1
    for (state, trigger), row in cls._TABLE.items():
        assert "§" in row.cite, (state, trigger)
        assert type(row.target) is type(state)
