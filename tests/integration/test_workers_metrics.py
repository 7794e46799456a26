"""``spitwall serve --workers 2``: /metrics counts the whole proxy, not worker 0 alone.

Each worker records its metrics into memory-mapped files under ``<data_dir>/metrics``;
worker 0's /metrics merges them. OPTIONS requests sent from many source sockets spread over
both workers (the kernel hashes SO_REUSEPORT datagrams by source address); the merged
counter must equal the number sent, and each worker's own file must hold a share of it.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import socket
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

from prometheus_client.multiprocess import MultiProcessCollector

from tests.sipp.harness import ServeProcess, free_port

REQUESTS = 40


def _options(port: int, src_port: int, n: int) -> bytes:
    branch = "z9hG4bK" + secrets.token_hex(8)
    return (
        f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{src_port};branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@127.0.0.1>;tag=t{n}\r\n"
        f"To: <sip:127.0.0.1:{port}>\r\n"
        f"Call-ID: metrics-{n}-{secrets.token_hex(4)}@127.0.0.1\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def _probe(port: int, n: int) -> int:
    """One OPTIONS from its own socket; the status code of the answer."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(5.0)
        s.sendto(_options(port, s.getsockname()[1], n), ("127.0.0.1", port))
        data = s.recv(65536)
    return int(data.split(b" ", 2)[1])


def _scrape(http: tuple[str, int]) -> str:
    with urllib.request.urlopen(f"http://{http[0]}:{http[1]}/metrics", timeout=5) as r:
        return str(r.read().decode())


def _options_count(text: str) -> float:
    m = re.search(r'^spitwall_sip_requests_total\{method="OPTIONS"\} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


def per_worker(metrics_dir: Path, method: str) -> dict[str, float]:
    """Each worker's own count of ``method`` requests, read from its counter file alone."""
    out: dict[str, float] = {}
    for f in sorted(metrics_dir.glob("counter_*.db")):
        for fam in MultiProcessCollector.merge([str(f)], accumulate=False):
            for s in fam.samples:
                if s.name == "spitwall_sip_requests_total" and s.labels == {"method": method}:
                    out[f.stem] = s.value
    return out


def two_workers(port: int, http: str, data: Path) -> list[str]:
    """``spitwall serve`` options for two workers sharing UDP ``port`` (explicit ports)."""
    listen = f"udp:127.0.0.1:{port}"
    return ["--workers", "2", "--listen", listen, "--http", http, "--data-dir", str(data)]


async def _until(cond: Callable[[], bool], timeout: float) -> None:
    async def poll() -> None:
        while not cond():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


async def wait_ready(sp: ServeProcess, workers: int, timeout: float = 20.0) -> None:
    async def both() -> None:
        while not all(
            any(line.strip() == f"ready worker={w}" for line in sp.lines) for w in range(workers)
        ):
            await asyncio.sleep(0.05)

    await asyncio.wait_for(both(), timeout)


async def test_metrics_count_every_workers_requests(tmp_path: Path) -> None:
    port, http_port = free_port(), free_port(socket.SOCK_STREAM)
    data = tmp_path / "data"
    stale = data / "metrics"
    stale.mkdir(parents=True)
    (stale / "counter_999999.db").write_bytes(b"left over from an earlier run")
    sp = await ServeProcess.start(
        "--proxy-only", *two_workers(port, f"127.0.0.1:{http_port}", data)
    )
    try:
        await wait_ready(sp, 2)
        assert not (stale / "counter_999999.db").exists(), "an earlier run's file is merged"
        codes = await asyncio.gather(*(asyncio.to_thread(_probe, port, n) for n in range(REQUESTS)))
        assert codes == [200] * REQUESTS
        # the transaction gauge is published once a second by each worker
        await _until(lambda: len(list(stale.glob("gauge_livesum_*.db"))) == 2, 5.0)
        text = await asyncio.to_thread(_scrape, sp.http or ("127.0.0.1", http_port))
        assert _options_count(text) == REQUESTS, text
        shares = per_worker(stale, "OPTIONS")
        assert len(shares) == 2 and all(v > 0 for v in shares.values()), shares
        assert sum(shares.values()) == REQUESTS
        # live gauges are summed over live workers: one series, no per-process label
        assert 'pid="' not in text
        assert re.search(r"^spitwall_sip_transactions\{", text, re.M), text
        ok = r'^spitwall_sip_responses_total\{code="200",origin="local"\} 40\.0$'
        assert re.search(ok, text, re.M), text
    finally:
        assert await sp.stop() == 0
    # a worker that exits leaves no live gauges behind
    assert not list(stale.glob("gauge_livesum_*.db"))


async def _serve_to_exit(args: list[str]) -> tuple[int | None, bytes, bytes]:
    """``spitwall serve --proxy-only ARGS`` expected to fail: (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "spitwall", "serve", "--proxy-only", *args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode, out, err


async def test_an_unusable_metrics_directory_is_a_config_error(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "data"
    not_a_dir.write_text("a file where the data directory should be")
    code, _, err = await _serve_to_exit(two_workers(free_port(), "", not_a_dir))
    assert code == 2, err
    assert b"data_dir" in err and b"metrics directory" in err, err


async def test_an_unusable_data_dir_is_a_config_error_with_the_whole_spitwall(
    tmp_path: Path,
) -> None:
    not_a_dir = tmp_path / "data"
    not_a_dir.write_text("a file where the data directory should be")
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "spitwall", "serve", *two_workers(free_port(), "", not_a_dir)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2, err
    assert b"data_dir" in err and b"shared files" in err and b"Traceback" not in err, err


async def test_a_worker_that_cannot_start_stops_the_others(tmp_path: Path) -> None:
    # worker 0 cannot bind HTTP (the port is taken); worker 1 alone would take calls whose
    # metrics and API nobody serves: serve stops it and exits with worker 0's code
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        http = f"127.0.0.1:{taken.getsockname()[1]}"
        code, out, err = await _serve_to_exit(two_workers(free_port(), http, tmp_path / "data"))
    assert code == 1, (out, err)
    assert b"cannot listen" in err and b"worker 0 exited with 1: stopping the others" in err
