"""RFC 3261 §17 SIP transactions as sans-IO state machines (with RFC 6026's Accepted state).

Theory of operation
===================

A transaction is the request, its responses and (for a non-2xx INVITE answer) the ACK.
Four machines implement it: ``InviteClient`` and ``NonInviteClient`` for requests the
proxy sends, ``InviteServer`` and ``NonInviteServer`` for requests it receives.  Each is
a table of ``(state, trigger) -> (effect, next state)`` rows citing the RFC (machine.py
explains the engine; client.py and server.py hold the tables).

They are sans-IO: every input carries ``now`` (seconds, any monotonic origin) and
returns a list of actions for the caller to carry out in order (events.py): ``Send``
bytes, ``PassResponse`` / ``PassRequest`` to the TU, ``NeedAck`` (build an ACK, hand it
back with ``set_ack``), ``Timeout``, ``TransportFailure``, ``Terminated``, or ``Ignored``
with a reason when the caller fed something the state cannot take.  Messages are opaque
bytes plus a status code: parsing and building stay in ``proxy.sip``/``proxy.core``.

Time: ``get_timer()`` is the absolute time of the next timer, ``handle_timer(now)``
fires what is due.  ``TransactionTable`` does the same over every live transaction
(a lazily invalidated heap), files them under RFC 3261 §17.1.3/§17.2.3 keys, drops them
when they terminate and refuses new ones past a cap (the core answers 503).

Typical core loop (UDP, one INVITE forwarded)::

    server = InviteServer(reliable=False); table.add(server_key(...), server)
    client = InviteClient(invite_bytes, reliable=False); table.add(client_key(...), client)
    for action in client.start(now): ...          # Send(invite_bytes)
    for action in client.receive_response(486, data, now): ...
        # PassResponse(486, data) -> server.send_response(486, data', now) -> Send
        # NeedAck(486)            -> client.set_ack(build_ack(response)) -> Send(ack)
    at table.get_timer(): for tx, actions in table.handle_timer(now): ...
"""

from proxy.transaction.client import (
    ClientTransaction,
    InviteClient,
    InviteClientState,
    NonInviteClient,
    NonInviteClientState,
)
from proxy.transaction.events import (
    AckBuilt,
    AckReceived,
    Action,
    Ignored,
    Input,
    NeedAck,
    PassRequest,
    PassResponse,
    RequestReceived,
    ResponseReceived,
    ResponseSent,
    Send,
    Start,
    Terminated,
    Timeout,
    TimerFired,
    TransportError,
    TransportFailure,
)
from proxy.transaction.machine import Row, Transaction, Trigger
from proxy.transaction.server import (
    InviteServer,
    InviteServerState,
    NonInviteServer,
    NonInviteServerState,
    ServerTransaction,
)
from proxy.transaction.table import (
    MAGIC_COOKIE,
    Admission,
    ClientKey,
    Key,
    LegacyServerKey,
    ServerKey,
    TransactionTable,
    client_key,
    is_rfc3261_branch,
    legacy_server_key,
    server_key,
)
from proxy.transaction.timers import DEFAULT_TIMERS, Timer, TimerConfig

__all__ = [
    "DEFAULT_TIMERS",
    "MAGIC_COOKIE",
    "AckBuilt",
    "AckReceived",
    "Action",
    "Admission",
    "ClientKey",
    "ClientTransaction",
    "Ignored",
    "Input",
    "InviteClient",
    "InviteClientState",
    "InviteServer",
    "InviteServerState",
    "Key",
    "LegacyServerKey",
    "NeedAck",
    "NonInviteClient",
    "NonInviteClientState",
    "NonInviteServer",
    "NonInviteServerState",
    "PassRequest",
    "PassResponse",
    "RequestReceived",
    "ResponseReceived",
    "ResponseSent",
    "Row",
    "Send",
    "ServerKey",
    "ServerTransaction",
    "Start",
    "Terminated",
    "Timeout",
    "Timer",
    "TimerConfig",
    "TimerFired",
    "Transaction",
    "TransactionTable",
    "TransportError",
    "TransportFailure",
    "Trigger",
    "client_key",
    "is_rfc3261_branch",
    "legacy_server_key",
    "server_key",
]
