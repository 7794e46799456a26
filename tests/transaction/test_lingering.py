"""What a transaction keeps while it lingers after its final response (64*T1 in Accepted,
Timer D/K in Completed): only what it may still have to send. At 1,500 calls/s a proxy
holds about 48,000 lingering transactions per 32 s, so message bytes kept there are most
of its memory; these tests hold the machines to "nothing that is never resent"."""

from __future__ import annotations

from proxy.transaction import (
    InviteClientState,
    InviteServerState,
    NonInviteClientState,
    NonInviteServerState,
)
from proxy.transaction.events import Send

from .paths import TRYING, invite_client, invite_server, non_invite_client, non_invite_server, resp


def test_clients_forget_the_request_once_a_final_response_arrived() -> None:
    assert invite_client(InviteClientState.PROCEEDING).request  # still resent on Timer A
    assert invite_client(InviteClientState.ACCEPTED).request == b""
    assert invite_client(InviteClientState.COMPLETED).request == b""
    assert non_invite_client(NonInviteClientState.PROCEEDING).request
    assert non_invite_client(NonInviteClientState.COMPLETED).request == b""


def test_invite_server_in_accepted_keeps_no_response_yet_relays_2xx_retransmissions() -> None:
    tx = invite_server(InviteServerState.ACCEPTED, trying=TRYING)
    assert tx.last_response is None and tx.trying is None
    assert tx.receive_request(1.0) == []  # an INVITE retransmission is absorbed
    out = tx.send_response(200, resp(200), 2.0)  # the UAS's 2xx retransmission
    assert [a.data for a in out if isinstance(a, Send)] == [resp(200)]
    assert tx.last_response is None


def test_servers_that_may_resend_keep_their_final_response() -> None:
    completed = invite_server(InviteServerState.COMPLETED)
    assert [a.data for a in completed.receive_request(1.0) if isinstance(a, Send)] == [resp(486)]
    assert invite_server(InviteServerState.CONFIRMED).last_response is None  # absorbs ACKs only
    done = non_invite_server(NonInviteServerState.COMPLETED)
    assert [a.data for a in done.receive_request(1.0) if isinstance(a, Send)] == [resp(200)]
