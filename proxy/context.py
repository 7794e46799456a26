"""The state one proxied transaction carries across its two sides (RFC 3261 §16).

A ``CallContext`` ties one server transaction to its single client branch (spitwall does
not fork): the request as received and as forwarded, where responses go, Timer C, the
CANCEL state and the screening decision. It is filed under both transactions' keys (and
the branch id) in ``proxy.engine.CoreEngine``; once the final response has gone upstream
``CoreEngine._finished`` drops the requests, so a context kept alive only to absorb
retransmissions holds no message.
"""

from __future__ import annotations

from .routing import NextHop, NoRoute
from .screen import InviteFacts
from .sip import Request
from .transaction import InviteServer, NonInviteServer
from .transaction.machine import Transaction
from .transport.base import LocalAddress, Peer


class CallContext:
    """One server transaction and its (single) client branch."""

    __slots__ = (
        "branch",
        "cancel_client",
        "cancel_deadline",
        "cancel_sent",
        "cancel_wanted",
        "client",
        "decision_id",
        "dest",
        "facts",
        "final_code",
        "final_sent",
        "fwd",
        "hop",
        "id",
        "in_local",
        "initial",
        "invite",
        "provisional",
        "received",
        "request",
        "server",
        "stamped",
        "timer_c",
        "to_tag",
        "upstream",
    )

    def __init__(
        self,
        cid: int,
        request: Request,
        received: Request,
        stamped: Request,
        server: InviteServer | NonInviteServer,
        upstream: Peer,
        in_local: LocalAddress | None,
        hop: NextHop | NoRoute | None,
    ) -> None:
        self.id = str(cid)
        self.request = request
        """After route preprocessing and Via stamping: what we forward."""
        self.received = received
        """As received (branch computation uses it)."""
        self.stamped = stamped
        """As received plus received/rport on the top Via: what local responses copy."""
        self.server = server
        self.upstream = upstream
        self.in_local = in_local
        self.hop = hop
        self.invite = request.method == "INVITE"
        self.initial = received.to.tag is None  # received: its To view is parsed already
        self.client: Transaction | None = None
        self.cancel_client: Transaction | None = None
        self.fwd: Request | None = None
        self.dest: Peer | None = None
        self.branch = ""
        self.provisional = False
        self.final_sent = False
        self.final_code = 0
        self.cancel_wanted = False
        self.cancel_sent = False
        self.timer_c: float | None = None
        self.cancel_deadline: float | None = None
        self.facts: InviteFacts | None = None
        self.decision_id: str | None = None
        self.to_tag: str | None = None
