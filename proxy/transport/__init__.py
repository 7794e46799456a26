"""Thin asyncio transports (UDP, TCP, TLS): bytes in and out, no SIP rules.

They hand complete messages to a ``Sink`` (the proxy runtime) with the ``Peer`` they came
from, and send bytes to a ``Peer``. Stream transports frame messages by Content-Length,
reuse connections per peer address (RFC 5923-style aliases), and enforce the connection
cap, idle timeout and read timeout so that one slow or hostile peer cannot hurt others.
"""

from .base import Peer, Sink

__all__ = ["Peer", "Sink"]
