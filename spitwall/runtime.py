"""The composition root of one running spitwall: proxy + HTTP (/metrics, /healthz).

``build_http_app`` makes the aiohttp Application that serves ``/metrics`` and ``/healthz``;
the HTTP API adds its routes to the same app (``app.router.add_routes(...)`` or a
``sub_app``) through the ``extend`` callbacks of ``Runtime``, so there is one HTTP server
and one event loop. ``Runtime`` wires config → ProxyServer (+ screener, observer, metrics
registry) → HTTP, starts and stops them, and reports what listens where.

Several worker processes (``proxy.workers`` > 1) are one proxy to the outside, so
``/metrics`` (served by worker 0) must count every worker's traffic. prometheus_client's
multiprocess mode does that: each process writes its values to memory-mapped files in
one directory and the scrape merges them. :func:`prepare_multiprocess_metrics` empties
the directory and switches the value class before the fork, :func:`worker_metrics_gone`
drops a dead worker's live gauges, and a ``Runtime`` given ``metrics_dir`` serves the
merged view (its own ``registry`` still records; in one process nothing changes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client import values as prom_values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from proxy.metrics import ProxyMetrics
from proxy.screen import OutcomeObserver, Screener
from proxy.server import Bound, ProxyServer

from .config import SpitwallConfig

log = logging.getLogger("spitwall.runtime")

REGISTRY_KEY = web.AppKey("registry", CollectorRegistry)
HealthFn = Callable[[], dict[str, object]]
HEALTH_KEY: web.AppKey[HealthFn] = web.AppKey("health")

AppExtension = Callable[[web.Application], None]
"""Adds routes (or sub-apps, middlewares, cleanup contexts) to the shared HTTP app."""

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRICS_SUBDIR = "metrics"


def multiprocess_metrics_dir(data_dir: Path) -> Path:
    """Where the workers' metric files live: ``<data_dir>/metrics``."""
    return Path(data_dir) / METRICS_SUBDIR


def prepare_multiprocess_metrics(path: Path) -> Path:
    """Before forking the workers: an empty metrics directory, named in the environment,
    and prometheus_client's file-backed value class.

    prometheus_client picks its value class when it is first imported (by then this
    process has imported it), so the class is chosen again here; every metric a worker
    creates after the fork then writes to ``<path>/<type>_<pid>.db``. Files of an earlier
    run are removed: their counters would add to this run's, and their pids are gone."""
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.db"):
        old.unlink(missing_ok=True)
    os.environ[MULTIPROC_ENV] = str(path)
    prom_values.ValueClass = prom_values.get_value_class()
    return path


def worker_metrics_gone(pid: int, path: Path) -> None:
    """A worker exited: its live gauges (open transactions, connections) leave the sum;
    its counters stay, since what it counted did happen."""
    with contextlib.suppress(OSError):
        mark_process_dead(pid, str(path))


def merged_registry(path: Path) -> CollectorRegistry:
    """A registry whose one collector merges every worker's metric files at each scrape."""
    registry = CollectorRegistry(auto_describe=False)
    MultiProcessCollector(registry, path=str(path))
    return registry


async def _metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[REGISTRY_KEY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _healthz(request: web.Request) -> web.Response:
    info = request.app[HEALTH_KEY]()
    status = 200 if info.get("status") == "ok" else 503
    return web.json_response(info, status=status)


def build_http_app(
    registry: CollectorRegistry,
    health: Callable[[], dict[str, object]],
    extensions: list[AppExtension] | None = None,
) -> web.Application:
    """The aiohttp app with ``/metrics`` and ``/healthz``; ``extensions`` add the rest."""
    app = web.Application()
    app[REGISTRY_KEY] = registry
    app[HEALTH_KEY] = health
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/healthz", _healthz)
    for ext in extensions or []:
        ext(app)
    return app


def split_hostport(spec: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` → (host, port); ValueError names the problem."""
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        port = rest.lstrip(":")
    else:
        host, _, port = spec.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {spec!r}")
    return host, int(port)


@dataclass
class Runtime:
    """One process's proxy and HTTP server, built from config."""

    cfg: SpitwallConfig
    screener: Screener | None = None
    observer: OutcomeObserver | None = None
    extensions: list[AppExtension] = field(default_factory=list)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    """Where this process's metrics are recorded."""
    worker: int = 0
    metrics_dir: Path | None = None
    """Set with several workers (:func:`prepare_multiprocess_metrics`): ``/metrics`` and
    the API's stats then show every worker's metrics merged from this directory."""
    proxy: ProxyServer | None = None
    http_bound: tuple[str, int] | None = None
    _runner: web.AppRunner | None = None
    _merged: CollectorRegistry | None = None

    async def start(self, http: bool = True) -> list[Bound]:
        metrics = ProxyMetrics(self.registry)
        self.proxy = ProxyServer(
            self.cfg.proxy, screener=self.screener, observer=self.observer, metrics=metrics
        )
        bound = await self.proxy.start()
        if http and self.cfg.http.listen:
            host, port = split_hostport(self.cfg.http.listen)
            app = build_http_app(self.exposed_registry, self.health, self.extensions)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, host, port, reuse_port=self.cfg.proxy.workers > 1)
            await site.start()
            server = site._server
            sockets = getattr(server, "sockets", None) or []
            self.http_bound = (host, sockets[0].getsockname()[1] if sockets else port)
        return bound

    @property
    def exposed_registry(self) -> CollectorRegistry:
        """What ``/metrics`` shows: the whole proxy (all workers), not just this process."""
        if self.metrics_dir is None:
            return self.registry
        if self._merged is None:
            self._merged = merged_registry(self.metrics_dir)
        return self._merged

    def health(self) -> dict[str, object]:
        core = self.proxy.core if self.proxy is not None else None
        if core is None:
            return {"status": "starting"}
        return {
            "status": "draining" if core.draining else "ok",
            "worker": self.worker,
            "transactions": core.live,
            "listen": [str(b) for b in (self.proxy.bound if self.proxy else [])],
        }

    async def stop(self, grace: float = 3.0) -> None:
        if self.proxy is not None:
            await self.proxy.stop(grace)
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await self._runner.cleanup()


def install_uvloop() -> bool:
    """Use uvloop when it is installed (≈5x cheaper per datagram than the default loop)."""
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True
