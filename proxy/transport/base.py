"""Values shared by the transports and the proxy core: who sent a message, where to send one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

TransportName = Literal["udp", "tcp", "tls"]


@dataclass(frozen=True, slots=True)
class Peer:
    """The far end of one message.

    ``conn`` names the stream connection a message arrived on (responses go back on it,
    RFC 3261 §18.2.2); ``None`` for UDP or when any connection to ``host:port`` will do.
    """

    transport: TransportName
    host: str
    """IP literal (no brackets) or, for configured next hops, a host name."""
    port: int
    conn: int | None = None

    @property
    def hostport(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def reliable(self) -> bool:
        return self.transport != "udp"


class Sink(Protocol):
    """What a transport calls when something arrives (the runtime implements it)."""

    def on_message(self, data: bytes, peer: Peer) -> None:
        """A complete SIP message (a datagram, or one framed stream message)."""

    def on_stream_error(self, peer: Peer, error: Exception) -> None:
        """A stream could not be framed (oversized, bad Content-Length); it closes next."""

    def on_connection_lost(self, conn: int) -> None:
        """A stream connection closed (by either side)."""


def strip_brackets(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


@dataclass(frozen=True, slots=True)
class LocalAddress:
    """One address this proxy is reachable at, as written in Via and Record-Route."""

    transport: TransportName
    host: str
    """Advertised host (IP literal without brackets, or a name)."""
    port: int
    """Port written in Via (with several workers: the worker's private UDP port)."""
    rr_port: int
    """Port written in Record-Route (the shared listen port)."""
    listening: bool = True
    """False for a stand-in: a TCP/TLS connection we open without a listener of that
    transport (responses come back on the connection; it is never Record-Routed)."""

    @property
    def ipv6(self) -> bool:
        return ":" in self.host

    def hostport(self, port: int | None = None) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port if port is None else port}"
