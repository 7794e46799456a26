"""The proxy runtime: binds the transports, feeds the sans-IO core, runs screening tasks.

Theory of operation (the aioquic adapter shape). Every input — a datagram, a framed stream
message, a timer, a finished screening — is fed to ``ProxyCore`` with ``loop.time()``; then
``_flush`` drains the core's effects (``Send``, ``Screen``, ``Alias``) and re-arms the one
timer at ``core.get_timer()``. The runtime owns no SIP rules, so everything it does is
"move bytes and await the screener under a timeout".

With several workers (``proxy.workers``) each process runs one ProxyServer: the shared UDP
listen port is bound with SO_REUSEPORT (the kernel spreads callers by source address, so a
caller's retransmissions and CANCEL reach the same worker), and each worker binds a private
UDP port that it writes in the Via of the requests it forwards, so the responses come back
to the worker holding the client transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from dataclasses import dataclass

from .config import ProxyConfig, parse_listen
from .core import ProxyCore
from .effects import Alias, Effect, Screen, Send
from .metrics import ProxyMetrics
from .ratelimit import limiter_for
from .routing import Router
from .screen import Action, Forward, ForwardAll, IgnoreOutcomes, OutcomeObserver, Screener
from .sip import SipParseError
from .sip.framing import StreamFramer
from .transport.base import LocalAddress, Peer, TransportName
from .transport.stream import StreamPool
from .transport.tls import client_context, server_context
from .transport.udp import UdpEndpoint, open_udp

log = logging.getLogger("spitwall.proxy")


@dataclass(frozen=True, slots=True)
class Bound:
    """One listening socket, with the port the OS actually gave (port 0 → ephemeral)."""

    transport: TransportName
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport} {host}:{self.port}"


_IP_CACHE: dict[str, bool] = {}


def _is_ip(host: str) -> bool:
    """True for an IP literal (cached: the same few peers come up on every send)."""
    hit = _IP_CACHE.get(host)
    if hit is None:
        try:
            ipaddress.ip_address(host)
            hit = True
        except ValueError:
            hit = False
        if len(_IP_CACHE) > 100_000:
            _IP_CACHE.clear()
        _IP_CACHE[host] = hit
    return hit


class ProxyServer:
    """One running proxy (one worker). ``await start()``, then ``await stop()``."""

    def __init__(
        self,
        cfg: ProxyConfig,
        *,
        screener: Screener | None = None,
        observer: OutcomeObserver | None = None,
        metrics: ProxyMetrics | None = None,
        reuse_port: bool = False,
    ) -> None:
        self.cfg = cfg
        self.screener: Screener = screener or ForwardAll()
        self.observer: OutcomeObserver = observer or IgnoreOutcomes()
        self.metrics = metrics or ProxyMetrics()
        self.reuse_port = reuse_port or cfg.workers > 1
        self.router = Router(cfg.routes, cfg.default_next_hop)
        self.bound: list[Bound] = []
        self.core: ProxyCore | None = None
        self._udp: list[UdpEndpoint] = []
        self._udp_private: list[UdpEndpoint] = []
        self._pool: StreamPool | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._names: dict[str, str] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # lifecycle ---------------------------------------------------------------------------
    async def start(self) -> list[Bound]:
        loop = self._loop = asyncio.get_running_loop()
        cfg = self.cfg
        tls_server = None
        if cfg.tls.cert_file is not None and cfg.tls.key_file is not None:
            tls_server = server_context(cfg.tls)
        tls_client = client_context(cfg.tls)  # outgoing TLS works without a certificate of ours
        m = self.metrics
        limits = cfg.limits.parse_limits()
        self._pool = StreamPool(
            self,
            cfg.limits,
            lambda: StreamFramer(limits),
            loop.time,
            tls_client,
            on_count=lambda t, n: m.connections.labels(t).set(n),
            on_refused=lambda r: m.connections_refused.labels(r).inc(),
        )
        locals_: list[LocalAddress] = []
        try:
            for i, spec in enumerate(cfg.listen):
                proto, host, port = parse_listen(spec, f"proxy.listen[{i}]")
                adv = cfg.advertised_host or (
                    host if host not in ("0.0.0.0", "::") else "127.0.0.1"
                )
                if proto == "udp":
                    ep = await open_udp(self, host, port, self.reuse_port)
                    self._udp.append(ep)
                    via_port = ep.port
                    if self.reuse_port:
                        priv = await open_udp(self, host, 0)
                        self._udp_private.append(priv)
                        via_port = priv.port
                    self.bound.append(Bound("udp", host, ep.port))
                    locals_.append(LocalAddress("udp", adv, via_port, ep.port))
                else:
                    ctx = tls_server if proto == "tls" else None
                    server = await self._pool.serve(proto, host, port, ctx)
                    actual = server.sockets[0].getsockname()[1]
                    self.bound.append(Bound(proto, host, actual))
                    locals_.append(LocalAddress(proto, adv, actual, actual))
        except BaseException:
            await self.stop(0)
            raise
        self.core = ProxyCore(
            cfg,
            local=locals_,
            router=self.router,
            metrics=m,
            observer=self.observer,
            # a carrier's addresses carry many callers: never shed as one flooding source;
            # a pbx trunk's addresses share one budget (the same limiter replay uses)
            limiter=limiter_for(cfg),
            wall_offset=time.time() - loop.time(),
        )
        self._sweeper = loop.create_task(self._sweep_loop())
        return self.bound

    async def stop(self, grace: float = 3.0) -> None:
        """Stop accepting, let live transactions finish for up to ``grace`` s, then close."""
        if self._pool is not None:
            self._pool.stop_accepting()
        if self.core is not None:
            self.core.draining = True
            deadline = asyncio.get_running_loop().time() + grace
            while self.core.live > 0 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
        if self._sweeper is not None:
            self._sweeper.cancel()
        for t in list(self._tasks):
            t.cancel()
        if self._timer is not None:
            self._timer.cancel()
        for ep in self._udp + self._udp_private:
            ep.close()
        if self._pool is not None:
            self._pool.close_all()
            for s in self._pool.servers:
                s.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(s.wait_closed(), 1.0)

    async def _sweep_loop(self) -> None:
        """Every 100 ms: measure event-loop lag (overload signal); every second: police
        connections and publish the transaction gauge.

        Overload is *sustained* lag: two samples in a row over ``max_loop_lag``. One stall
        (a GC pass, a slow start-up step, the machine's neighbours) must not cost a good
        call a 503; a loop that keeps lagging is shedding load within ~0.3 s."""
        loop = asyncio.get_running_loop()
        tick, n, lagging = 0.1, 0, 0
        max_lag = self.cfg.limits.max_loop_lag
        while True:
            expected = loop.time() + tick
            await asyncio.sleep(tick)
            lag = loop.time() - expected
            lagging = lagging + 1 if lag > max_lag else 0
            if self.core is not None:
                was = self.core.overloaded
                self.core.overloaded = lagging >= 2
                if self.core.overloaded and not was:
                    log.warning(
                        "overloaded: event loop lags %.0f ms; new calls get 503", lag * 1000
                    )
            n += 1
            if n % 10 == 0:
                if self._pool is not None:
                    self._pool.sweep(loop.time())
                if self.core is not None:
                    self.metrics.transactions.labels("all").set(self.core.live)

    # Sink (called by transports) -------------------------------------------------------------
    def on_message(self, data: bytes, peer: Peer) -> None:
        core = self.core
        if core is None:
            return
        try:
            core.receive(data, peer, self._loop.time())  # type: ignore[union-attr]
        except Exception:  # a bug must cost one message, never the proxy
            self.metrics.drop("internal_error")
            log.exception("error handling a message from %s", peer.hostport)
        self._flush()

    def on_stream_error(self, peer: Peer, error: Exception) -> None:
        self.metrics.drop("stream_framing")
        log.info("closing %s connection from %s: %s", peer.transport, peer.hostport, error)
        if self.core is not None and isinstance(error, SipParseError):
            self.core.stream_error(error, peer)
            self._flush()

    def on_connection_lost(self, conn: int) -> None:
        return None

    # effects --------------------------------------------------------------------------------
    def _flush(self) -> None:
        core = self.core
        assert core is not None
        effects = core.drain()
        while effects:  # applying one (a synchronous screening) can produce more
            for eff in effects:
                self._apply(eff)
            effects = core.drain()
        t = core.get_timer()
        if t is not None and (self._timer_at is None or t < self._timer_at):
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = t
            self._timer = self._loop.call_at(t, self._on_timer)  # type: ignore[union-attr]

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        assert self.core is not None
        try:
            self.core.handle_timer(self._loop.time())  # type: ignore[union-attr]
        except Exception:
            self.metrics.drop("internal_error")
            log.exception("error handling timers")
        self._flush()

    def _apply(self, eff: Effect) -> None:
        if isinstance(eff, Send):
            self._send(eff)
        elif isinstance(eff, Screen):
            if type(self.screener) is ForwardAll and self.core is not None:
                # The default screener decides synchronously: skip the task round trip.
                self.metrics.screening.observe(0.0)
                self.core.screened(eff.key, Forward(note="default screener"), self._loop.time())  # type: ignore[union-attr]
                return
            task = self._loop.create_task(self._screen(eff))  # type: ignore[union-attr]
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif isinstance(eff, Alias) and self._pool is not None:
            self._pool.alias(eff.conn, eff.host, eff.port)

    def _send(self, eff: Send) -> None:
        peer = eff.peer
        if not _is_ip(peer.host):
            addr = self._names.get(peer.host)
            if addr is None:
                task = self._loop.create_task(self._resolve_and_send(eff))  # type: ignore[union-attr]
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                return
            peer = Peer(peer.transport, addr, peer.port, peer.conn)
        if peer.transport == "udp":
            v6 = ":" in peer.host
            eps = self._udp_private if eff.request and self._udp_private else self._udp
            for ep in eps:
                if (ep.family == 10) == v6:  # AF_INET6
                    ep.send(eff.data, peer.host, peer.port)
                    return
            self._fail(eff)
        elif self._pool is not None:
            self._pool.send(peer, eff.data, lambda: self._fail(eff))

    async def _resolve_and_send(self, eff: Send) -> None:
        try:
            infos = await self._loop.getaddrinfo(eff.peer.host, eff.peer.port)  # type: ignore[union-attr]
            self._names[eff.peer.host] = str(infos[0][4][0])
        except OSError as exc:
            log.info("cannot resolve %s: %s", eff.peer.host, exc)
            self._fail(eff)
            return
        self._send(eff)

    def _fail(self, eff: Send) -> None:
        if self.core is not None and eff.key is not None:
            self.core.send_failed(eff.key, self._loop.time())  # type: ignore[union-attr]
            self._flush()

    async def _screen(self, eff: Screen) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        action: Action | None = None
        timed_out = False
        try:
            action = await asyncio.wait_for(
                self.screener.screen(eff.facts), self.cfg.screening_timeout
            )
        except TimeoutError:
            timed_out = True
            self.metrics.screening_timeouts.inc()
            log.warning("screening timed out; forwarding", extra={"call_id": eff.facts.call_id})
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("screener failed; forwarding", extra={"call_id": eff.facts.call_id})
        latency = loop.time() - t0
        self.metrics.screening.observe(latency)
        if self.core is not None:
            self.core.screened(eff.key, action, loop.time(), latency=latency, timed_out=timed_out)
            self._flush()
