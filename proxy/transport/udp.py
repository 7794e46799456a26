"""UDP: one datagram is one SIP message (RFC 3261 §18.1.1/§18.2.1).

The endpoint is as thin as asyncio allows: ``datagram_received`` hands bytes straight to
the sink. Oversized datagrams are dropped by the sink's parser limits, not here. With
several worker processes the shared listen port is bound with SO_REUSEPORT and each worker
also binds its own private port for the Via of requests it forwards, so responses come
back to the worker holding the transaction.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

from .base import Peer, Sink

log = logging.getLogger("spitwall.transport.udp")


class UdpEndpoint(asyncio.DatagramProtocol):
    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.transport: asyncio.DatagramTransport | None = None
        self.host = ""
        self.port = 0
        self.family = socket.AF_INET
        self.send_errors = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sockname = transport.get_extra_info("sockname")
        self.host, self.port = sockname[0], sockname[1]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            self.family = sock.family

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.sink.on_message(data, Peer("udp", addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        # ICMP errors for earlier sends; transaction timers handle the consequences.
        self.send_errors += 1
        log.debug("udp error: %s", exc)

    def send(self, data: bytes, host: str, port: int) -> None:
        if self.transport is not None and not self.transport.is_closing():
            try:
                self.transport.sendto(data, (host, port))
            except OSError as exc:  # e.g. EINVAL for an address of the other family
                self.send_errors += 1
                log.debug("udp send to %s:%s failed: %s", host, port, exc)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def bind_socket(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    """A bound non-blocking UDP socket (IPv6 when ``host`` contains a colon)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            try:
                sock.setsockopt(socket.SOL_SOCKET, opt, 4 * 1024 * 1024)
            except OSError:
                pass
        sock.bind((host, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def open_udp(sink: Sink, host: str, port: int, reuse_port: bool = False) -> UdpEndpoint:
    loop = asyncio.get_running_loop()
    sock = bind_socket(host, port, reuse_port)
    _, proto = await loop.create_datagram_endpoint(lambda: UdpEndpoint(sink), sock=sock)
    return proto
