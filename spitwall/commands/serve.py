"""`spitwall serve`: run the proxy (and /metrics, /healthz) until SIGTERM or SIGINT.

Prints one machine-readable line per bound socket, after binding, so that tests and
scripts can start it on port 0 and read the real ports::

    listening udp 127.0.0.1:40211
    listening tcp 127.0.0.1:40212
    http 127.0.0.1:8080
    ready

then a human hint on how to send a test call. Exit codes: 0 after a clean shutdown,
2 for an invalid config or option (the key is named), 1 when a socket cannot be bound.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

from proxy.config import parse_listen
from proxy.routing import NextHopError, parse_next_hop
from proxy.transport.tls import TlsSetupError

from ..config import SpitwallConfig, load_config
from ..logs import setup_logging
from ..runtime import (
    Runtime,
    install_uvloop,
    multiprocess_metrics_dir,
    prepare_multiprocess_metrics,
    split_hostport,
    worker_metrics_gone,
)
from ..settings import ConfigError

log = logging.getLogger("spitwall.serve")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="run the SIP proxy (and /metrics, /healthz)",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("--config", metavar="FILE", help="TOML config (default: built-in defaults)")
    p.add_argument(
        "--listen",
        action="append",
        metavar="PROTO:HOST:PORT",
        help="udp:HOST:PORT, tcp:…, tls:… (repeatable; replaces proxy.listen)",
    )
    p.add_argument(
        "--next-hop", metavar="URI", help="default route, e.g. sip:127.0.0.1:5080;transport=tcp"
    )
    p.add_argument("--http", metavar="HOST:PORT", help="HTTP address ('' disables)")
    p.add_argument("--data-dir", metavar="DIR", help="where SQLite files live")
    p.add_argument("--workers", type=int, metavar="N", help="worker processes (UDP SO_REUSEPORT)")
    p.add_argument("--log-format", choices=("text", "json"), help="override log.format")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    p.add_argument(
        "--proxy-only",
        action="store_true",
        help="run the bare proxy (forward-all screener; no stores, API or challenge UA):"
        " for proxy tests and benchmarks",
    )
    p.add_argument(
        "--grace",
        type=float,
        default=3.0,
        help="seconds to let transactions finish on shutdown (default 3)",
    )
    p.set_defaults(func=run)


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    o: dict[str, Any] = {}
    if args.listen:
        for i, spec in enumerate(args.listen):
            parse_listen(spec, f"--listen[{i}]")
        o["proxy.listen"] = list(args.listen)
    if args.next_hop:
        try:
            parse_next_hop(args.next_hop)
        except NextHopError as exc:
            raise ConfigError("--next-hop", str(exc)) from None
        o["proxy.default_next_hop"] = args.next_hop
    if args.http is not None:
        if args.http:
            try:
                split_hostport(args.http)
            except ValueError as exc:
                raise ConfigError("--http", str(exc)) from None
        o["http.listen"] = args.http or None
    if args.data_dir:
        o["data_dir"] = args.data_dir
    if args.workers is not None:
        o["proxy.workers"] = args.workers
    if args.log_format:
        o["log.format"] = args.log_format
    if args.log_level:
        o["log.level"] = args.log_level
    return o


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, overrides_from(args))
    setup_logging(cfg.log.level, cfg.log.format)
    try:
        from proxy.routing import Router

        Router(cfg.proxy.routes, cfg.proxy.default_next_hop)
    except NextHopError as exc:
        raise ConfigError("proxy.routes", str(exc)) from None
    full = not args.proxy_only
    cfg_path = Path(args.config) if args.config else None
    if cfg.proxy.workers > 1:
        return _run_workers(cfg, args.grace, full, cfg_path)
    install_uvloop()
    return asyncio.run(_serve(cfg, args.grace, worker=0, http=True, full=full, cfg_path=cfg_path))


def _build(
    cfg: SpitwallConfig,
    worker: int,
    full: bool,
    cfg_path: Path | None,
    metrics_dir: Path | None = None,
) -> Any:
    """The whole composition (spitwall.compose) or, with --proxy-only, the bare proxy."""
    if full:
        from ..compose import Spitwall

        return Spitwall(cfg, worker=worker, cfg_path=cfg_path, metrics_dir=metrics_dir)
    return Runtime(cfg, worker=worker, metrics_dir=metrics_dir)


async def _serve(
    cfg: SpitwallConfig,
    grace: float,
    worker: int,
    http: bool,
    full: bool = False,
    cfg_path: Path | None = None,
    metrics_dir: Path | None = None,
) -> int:
    rt = _build(cfg, worker, full, cfg_path, metrics_dir)
    try:
        bound = await rt.start(http=http)
    except TlsSetupError as exc:
        print(f"spitwall: config error: {exc}", file=sys.stderr)
        await rt.stop(0)
        return 2
    except OSError as exc:
        print(f"spitwall: cannot listen: {exc}", file=sys.stderr)
        await rt.stop(0)
        return 1
    # Everything allocated at start-up (modules, config, sockets) is permanent: move it out
    # of the collector's sight, and collect young objects less often. A proxy holds tens
    # of thousands of short-lived transaction objects; frequent full collections over
    # them showed up as 100-300 ms stalls (INVITE p99) in the benchmark.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tag = f" worker={worker}" if cfg.proxy.workers > 1 else ""
    for b in bound:
        print(f"listening {b}{tag}", flush=True)
    if rt.http_bound is not None:
        h, p = rt.http_bound
        print(f"http {h}:{p}{tag}", flush=True)
    print("ready" + tag, flush=True)
    if worker == 0:
        _hint(cfg, bound)
    log.info("spitwall serving", extra={"listen": [str(b) for b in bound], "worker": worker})
    await stop.wait()
    log.info("shutting down", extra={"grace": grace, "worker": worker})
    await rt.stop(grace)
    return 0


def _hint(cfg: SpitwallConfig, bound: list[Any]) -> None:
    udp = next((b for b in bound if b.transport == "udp"), None)
    if udp is None:
        return
    target = f"[{udp.host}]:{udp.port}" if ":" in udp.host else f"{udp.host}:{udp.port}"
    hop = cfg.proxy.default_next_hop or "(no default next hop configured: use --next-hop)"
    print(
        f"# next hop: {hop}\n# test call: sipp -sn uac -s 1000 -m 1 {target}\n"
        f"#   (with a callee: sipp -sn uas -p 5080, and --next-hop sip:127.0.0.1:5080)",
        flush=True,
    )


def _prepare_shared_files(cfg: SpitwallConfig) -> None:
    """Create and migrate the files every worker opens, once, before forking: workers that
    start together must not race to migrate the store or to generate the audit key or the
    pass-token secret."""
    from attestation.audit import open_audit_log
    from challenge.passtoken import load_or_create_secret
    from reputation.store import Store, store_path

    from ..compose import challenge_secret_path

    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    Store.open(store_path(cfg.data_dir, cfg.reputation.store), cfg.reputation.store).close()
    open_audit_log(cfg.attestation, cfg.data_dir)
    load_or_create_secret(challenge_secret_path(cfg))


def _run_workers(cfg: SpitwallConfig, grace: float, full: bool, cfg_path: Path | None) -> int:
    """Fork one process per worker; worker 0 also serves HTTP. Ports must be explicit."""
    for spec in cfg.proxy.listen:
        if spec.endswith(":0"):
            raise ConfigError("proxy.workers", "several workers need explicit listen ports (not 0)")
    if full:
        try:
            _prepare_shared_files(cfg)
        except OSError as exc:
            raise ConfigError(
                "data_dir", f"cannot prepare the workers' shared files: {exc}"
            ) from None
    # /metrics (worker 0) must count every worker: metric values go to shared files
    try:
        metrics = prepare_multiprocess_metrics(multiprocess_metrics_dir(cfg.data_dir))
    except OSError as exc:
        why = f"cannot prepare the workers' metrics directory: {exc}"
        raise ConfigError("data_dir", why) from None
    pids: list[int] = []
    for w in range(cfg.proxy.workers):
        pid = os.fork()
        if pid == 0:  # child
            code = 1
            try:
                install_uvloop()
                code = asyncio.run(
                    _serve(
                        cfg,
                        grace,
                        worker=w,
                        http=(w == 0),
                        full=full,
                        cfg_path=cfg_path,
                        metrics_dir=metrics,
                    )
                )
            except BaseException:  # os._exit skips the interpreter's report: say why here
                traceback.print_exc()
                sys.stderr.flush()
            finally:
                os._exit(code)
        pids.append(pid)

    def forward(signum: int, _frame: Any) -> None:
        for p in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    return _reap(pids, forward, metrics)


def _reap(pids: list[int], stop_all: Any, metrics: Path) -> int:
    """Wait for every worker; the worst exit code. One worker failing stops the others:
    half a spitwall (say, without worker 0's HTTP API and challenge reports) would answer
    calls while its outcomes, passes and metrics go nowhere."""
    left = {pid: w for w, pid in enumerate(pids)}
    worst = 0
    while left:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        if pid not in left:
            continue
        worker = left.pop(pid)
        worker_metrics_gone(pid, metrics)
        code = os.waitstatus_to_exitcode(status)
        code = code if code >= 0 else 1  # killed by a signal
        if code and worst == 0 and left:
            print(
                f"spitwall: worker {worker} exited with {code}: stopping the others",
                file=sys.stderr,
                flush=True,
            )
            stop_all(signal.SIGTERM, None)
        worst = max(worst, code)
    return worst
