"""A tiny HTTPS server for x5u chains and CRLs on 127.0.0.1 (tests and ``make run``).

Why here: the test PKI is only useful if the verifier fetches it exactly as it fetches a
real certificate repository: HTTPS, a real TLS handshake, real HTTP status codes and
headers. Each path maps to a :class:`Route` whose knobs produce the misbehaving servers the
tests need (404, redirect, oversized body, a server that never answers, caching headers),
and every request is counted per path so tests can prove cache hits and single flight.

:class:`X5UServer` runs on the caller's event loop; :class:`X5UServerThread` runs one on its
own thread and loop, so synchronous tests, subprocess CLIs and any pytest event-loop scope
can share one server.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web


@dataclass(frozen=True, slots=True)
class Route:
    """How the server answers one path."""

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/x-pem-file"
    delay: float = 0.0
    """Seconds to wait before answering."""
    hang: bool = False
    """Never answer (the handler waits until the server stops)."""
    redirect_to: str | None = None
    """Answer 302 with this Location."""


def tls_context(cert_file: str | Path, key_file: str | Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert_file), str(key_file))
    return ctx


class X5UServer:
    """Serves ``routes`` over HTTPS; ``hits[path]`` counts requests per path."""

    def __init__(self, tls: ssl.SSLContext, routes: dict[str, Route] | None = None) -> None:
        self._tls = tls
        self.routes: dict[str, Route] = dict(routes or {})
        self.hits: collections.Counter[str] = collections.Counter()
        self.host = "127.0.0.1"
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._stop = asyncio.Event()

    @property
    def base_url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.hits[path] += 1
        route = self.routes.get(path)
        if route is None:
            return web.Response(status=404, text="not found\n")
        if route.hang:
            await self._stop.wait()
            return web.Response(status=503)
        if route.delay:
            await asyncio.sleep(route.delay)
        if route.redirect_to is not None:
            return web.Response(status=302, headers={"Location": route.redirect_to})
        return web.Response(
            status=route.status,
            body=route.body,
            headers=route.headers,
            content_type=route.content_type,
        )

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._stop = asyncio.Event()
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=self._tls)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.host = host
        self.port = sockets[0].getsockname()[1] if sockets else port

    async def stop(self) -> None:
        self._stop.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def routes_from_directory(directory: str | Path) -> dict[str, Route]:
    """Every regular file in ``directory`` (not keys) as ``/<name>``, with a content type
    that matches what it holds."""
    routes: dict[str, Route] = {}
    for p in sorted(Path(directory).iterdir()):
        if not p.is_file() or p.suffix == ".key":
            continue
        ctype = "application/pkix-crl" if p.suffix == ".crl" else "application/x-pem-file"
        if p.suffix == ".json":
            ctype = "application/json"
        routes["/" + p.name] = Route(p.read_bytes(), content_type=ctype)
    return routes


class X5UServerThread:
    """An :class:`X5UServer` on its own thread and event loop.

    ``set_route``/``hits`` are safe to use from any thread: routes are a plain dict
    replaced item by item, counters are read as a snapshot."""

    def __init__(self, tls: ssl.SSLContext, routes: dict[str, Route] | None = None) -> None:
        self.server = X5UServer(tls, routes)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="x5u-server", daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.server.start())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self.server.stop())
        self._loop.close()

    def start(self) -> X5UServerThread:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise RuntimeError(f"x5u server failed to start: {self._error!r}")
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def port(self) -> int:
        return self.server.port

    def url(self, path: str) -> str:
        return self.server.url(path)

    def set_route(self, path: str, route: Route) -> str:
        self.server.routes[path] = route
        return self.url(path)

    def hits(self, path: str) -> int:
        return self.server.hits[path]

    def __enter__(self) -> X5UServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def manifest_port(base_url: str) -> int:
    """The port of a manifest's ``base_url`` (443 when it names none)."""
    hostport = base_url.split("://", 1)[-1].split("/", 1)[0]
    tail = hostport.rsplit("]", 1)[-1]
    return int(tail.rsplit(":", 1)[1]) if ":" in tail else 443


async def serve_pki(
    directory: str | Path, *, host: str = "127.0.0.1", port: int | None = None
) -> X5UServer:
    """Serve a ``spitwall pki init`` directory over HTTPS on the caller's loop, on the port
    of its manifest's ``base_url`` unless ``port`` is given (the composition root starts
    this for ``make run``; stop it with ``await server.stop()``)."""
    from ..pki import PkiManifest

    m = PkiManifest.load(directory)
    server = X5UServer(tls_context(m.tls_cert, m.tls_key), routes_from_directory(directory))
    await server.start(host, manifest_port(m.base_url) if port is None else port)
    return server
