"""TCP and TLS: framed SIP messages over connections, pooled and policed.

Theory of operation. Every connection, accepted or opened, gets an integer id and is
registered under its remote ``(transport, ip, port)``; a request carrying ``;alias`` in its
top Via (RFC 5923) also registers the Via sent-by, so requests toward that peer reuse the
connection. ``send`` reuses a registered connection or opens one (the queued bytes follow
once it is up; a failed connect calls ``on_fail`` so the core can answer 503).

Policing, checked by ``sweep(now)`` once a second from the runtime:
- idle timeout: no bytes either way for ``limits.idle_timeout`` → close;
- read timeout: a partial message older than ``limits.read_timeout`` → close (slowloris);
- caps: ``max_connections`` overall and ``max_connections_per_ip`` per source address;
  accepts beyond them are closed at once and counted.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from itertools import count
from typing import Protocol

from ..config import LimitsConfig
from ..sip import SipParseError
from .base import Peer, Sink, TransportName

log = logging.getLogger("spitwall.transport.stream")


class Framer(Protocol):
    """Splits a byte stream into SIP messages (the SIP core's StreamFramer fits)."""

    def feed(self, data: bytes) -> list[bytes]: ...

    def take_pings(self) -> int: ...

    @property
    def buffered(self) -> int: ...


FramerFactory = Callable[[], Framer]
_ids = count(1)


class StreamConnection(asyncio.Protocol):
    def __init__(self, pool: StreamPool, transport_name: TransportName, outbound: bool) -> None:
        self.pool = pool
        self.name: TransportName = transport_name
        self.id = next(_ids)
        self.outbound = outbound
        self.framer = pool.framer_factory()
        self.transport: asyncio.Transport | None = None
        self.host = ""
        self.port = 0
        self.last_activity = pool.clock()
        self.partial_since: float | None = None
        self.keys: list[tuple[str, str, int]] = []
        self.closed = False

    # asyncio callbacks -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's are not subclasses
        peer = transport.get_extra_info("peername") or ("", 0)
        self.host, self.port = peer[0], peer[1]
        if not self.pool.admit(self):
            transport.abort()  # type: ignore[attr-defined]
            self.closed = True
            return
        self.pool.register(self)

    def data_received(self, data: bytes) -> None:
        now = self.pool.clock()
        self.last_activity = now
        try:
            messages = self.framer.feed(data)
        except SipParseError as exc:  # unframeable stream: answer if possible, then close
            self.pool.sink.on_stream_error(self.peer, exc)
            self.close(graceful=True)
            return
        pings = self.framer.take_pings()
        if pings and self.transport is not None:
            self.transport.write(b"\r\n" * pings)  # RFC 5626 §3.5.1 pong
        self.partial_since = (self.partial_since or now) if self.framer.buffered else None
        for msg in messages:
            self.pool.sink.on_message(msg, self.peer)
            if self.closed:
                return

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.unregister(self)

    # ------------------------------------------------------------------------------------
    @property
    def peer(self) -> Peer:
        return Peer(self.name, self.host, self.port, self.id)

    def send(self, data: bytes) -> bool:
        if self.closed or self.transport is None or self.transport.is_closing():
            return False
        self.transport.write(data)
        self.last_activity = self.pool.clock()
        return True

    def close(self, graceful: bool = False) -> None:
        """Close now (``abort``) or after the queued bytes are written (``graceful``)."""
        if self.transport is not None and not self.closed:
            self.closed = True
            if graceful:
                self.transport.close()
            else:
                self.transport.abort()
            self.pool.unregister(self)


class StreamPool:
    """All TCP/TLS connections of one proxy, their limits and their reuse table."""

    def __init__(
        self,
        sink: Sink,
        limits: LimitsConfig,
        framer_factory: FramerFactory,
        clock: Callable[[], float],
        client_ssl: ssl.SSLContext | None = None,
        on_count: Callable[[str, int], None] | None = None,
        on_refused: Callable[[str], None] | None = None,
    ) -> None:
        self.sink = sink
        self.limits = limits
        self.framer_factory = framer_factory
        self.clock = clock
        self.client_ssl = client_ssl
        self.conns: dict[int, StreamConnection] = {}
        self.by_addr: dict[tuple[str, str, int], StreamConnection] = {}
        self.per_ip: dict[str, int] = {}
        self.servers: list[asyncio.Server] = []
        self._pending: dict[tuple[str, str, int], asyncio.Future[StreamConnection | None]] = {}
        self._on_count = on_count or (lambda t, n: None)
        self._on_refused = on_refused or (lambda r: None)
        self.accepting = True

    # bookkeeping ---------------------------------------------------------------------------
    def admit(self, conn: StreamConnection) -> bool:
        if conn.outbound:
            return True
        if not self.accepting:
            self._on_refused("shutting_down")
            return False
        if len(self.conns) >= self.limits.max_connections:
            self._on_refused("max_connections")
            return False
        if self.per_ip.get(conn.host, 0) >= self.limits.max_connections_per_ip:
            self._on_refused("max_connections_per_ip")
            return False
        return True

    def register(self, conn: StreamConnection) -> None:
        self.conns[conn.id] = conn
        self.per_ip[conn.host] = self.per_ip.get(conn.host, 0) + 1
        self.alias(conn.id, conn.host, conn.port)
        self._on_count(conn.name, self.count(conn.name))

    def unregister(self, conn: StreamConnection) -> None:
        if self.conns.pop(conn.id, None) is None:
            return
        n = self.per_ip.get(conn.host, 1) - 1
        if n > 0:
            self.per_ip[conn.host] = n
        else:
            self.per_ip.pop(conn.host, None)
        for key in conn.keys:
            if self.by_addr.get(key) is conn:
                del self.by_addr[key]
        self._on_count(conn.name, self.count(conn.name))
        self.sink.on_connection_lost(conn.id)

    def count(self, name: str) -> int:
        return sum(1 for c in self.conns.values() if c.name == name)

    def alias(self, conn_id: int, host: str, port: int) -> None:
        """Let requests toward ``host:port`` reuse connection ``conn_id`` (RFC 5923)."""
        conn = self.conns.get(conn_id)
        if conn is None:
            return
        key = (conn.name, host, port)
        if key not in self.by_addr:
            self.by_addr[key] = conn
            conn.keys.append(key)

    # serving and sending ------------------------------------------------------------------
    async def serve(
        self, name: TransportName, host: str, port: int, ssl_ctx: ssl.SSLContext | None = None
    ) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: StreamConnection(self, name, False),
            host,
            port,
            ssl=ssl_ctx,
            reuse_address=True,
            backlog=1024,
        )
        self.servers.append(server)
        return server

    def send(self, peer: Peer, data: bytes, on_fail: Callable[[], None]) -> None:
        """Send on ``peer.conn`` if open, else any connection to the address, else connect."""
        if peer.conn is not None:
            conn = self.conns.get(peer.conn)
            if conn is not None and conn.send(data):
                return
        conn = self.by_addr.get((peer.transport, peer.host, peer.port))
        if conn is not None and conn.send(data):
            return
        asyncio.get_running_loop().create_task(self._connect_and_send(peer, data, on_fail))

    async def _connect_and_send(self, peer: Peer, data: bytes, on_fail: Callable[[], None]) -> None:
        key = (peer.transport, peer.host, peer.port)
        fut = self._pending.get(key)
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            self._pending[key] = fut
            conn = None
            try:
                conn = await self._open(peer)
            except (TimeoutError, OSError, ssl.SSLError) as exc:
                log.info("connect to %s %s failed: %s", peer.transport, peer.hostport, exc)
            finally:
                # also when this opener is cancelled: the sends waiting on it must fail,
                # not wait forever
                self._pending.pop(key, None)
                if not fut.done():
                    fut.set_result(conn)
        else:
            conn = await fut
        if conn is None or not conn.send(data):
            on_fail()

    async def _open(self, peer: Peer) -> StreamConnection:
        loop = asyncio.get_running_loop()
        ctx = self.client_ssl if peer.transport == "tls" else None
        if peer.transport == "tls" and ctx is None:
            raise OSError("no TLS client context configured")
        _, conn = await asyncio.wait_for(
            loop.create_connection(
                lambda: StreamConnection(self, peer.transport, True),
                peer.host,
                peer.port,
                ssl=ctx,
                server_hostname=peer.host if ctx is not None else None,
            ),
            timeout=max(self.limits.read_timeout, 1.0),
        )
        # Register under the address we dialled too (it may be a name, not the peer IP).
        self.alias(conn.id, peer.host, peer.port)
        return conn

    def sweep(self, now: float) -> None:
        """Close idle connections and connections stuck on a partial message."""
        idle, read = self.limits.idle_timeout, self.limits.read_timeout
        for conn in list(self.conns.values()):
            if conn.partial_since is not None and now - conn.partial_since > read:
                self._on_refused("read_timeout")
                conn.close()
            elif now - conn.last_activity > idle:
                conn.close()

    def stop_accepting(self) -> None:
        self.accepting = False
        for s in self.servers:
            s.close()

    def close_all(self) -> None:
        for conn in list(self.conns.values()):
            conn.close()
