"""What the sans-IO proxy core asks its runtime to do.

The core never touches sockets, tasks or clocks: it appends effects to a list that the
runtime drains after every input (a message, a timer, a screening result). Keeping the
effects small frozen values is what lets the core's tests feed bytes and time and assert on
the bytes that come out.
"""

from __future__ import annotations

from dataclasses import dataclass

from .screen import InviteFacts
from .transport.base import Peer


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``data`` to ``peer``. ``key`` names the client branch, so a connect failure can
    be reported back with ``ProxyCore.send_failed(key)`` (→ 503 to the caller)."""

    data: bytes
    peer: Peer
    key: str | None = None
    request: bool = False
    """A request this proxy forwards: sent from the socket whose port is in our Via (with
    several workers that is the worker's private port, so responses come back to it)."""


@dataclass(frozen=True, slots=True)
class Screen:
    """Run the screener on ``facts``; report with ``ProxyCore.screened(key, action)``."""

    key: str
    facts: InviteFacts


@dataclass(frozen=True, slots=True)
class Alias:
    """Register ``host:port`` as reachable over stream connection ``conn`` (RFC 5923)."""

    conn: int
    host: str
    port: int


Effect = Send | Screen | Alias
