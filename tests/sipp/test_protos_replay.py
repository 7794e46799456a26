"""PROTOS c07-sip replayed against the running ``spitwall serve`` over UDP.

All 4,527 test cases (malformed INVITEs plus their CANCEL teardowns, OUSPG's GPL-2.0 test
material, unpacked from the team's shared corpus into a temp dir) go to the proxy. Each
case gets its own branch and Call-ID so the proxy treats it as a new transaction rather
than a retransmission. Afterwards the proxy must still be alive, have bounded memory,
answer an OPTIONS ping and carry a SIPp call end to end.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import tarfile
import urllib.request
from pathlib import Path

import pytest

from tests.sip.test_protos import SUBSTITUTIONS, TAR_SHA256, TARBALL, records

from .harness import ServeProcess, Sipp, free_port, run_sipp

pytestmark = [pytest.mark.sipp, pytest.mark.slow, pytest.mark.timeout(180)]


MAX_DATAGRAM = 65507


def _fill(record: bytes, i: int, port: int) -> bytes:
    subst = dict(SUBSTITUTIONS)
    subst[b"<Branch-ID>"] = f"{i:06d}".encode()
    subst[b"<Call-ID>"] = f"protos-{i}".encode()
    subst[b"<Local-Port>"] = str(port).encode()
    for key, value in subst.items():
        record = record.replace(key, value)
    if b"<Content-Length>" in record:
        end = record.find(b"\r\n\r\n")
        body = len(record) - (end + 4) if end >= 0 else 0
        record = record.replace(b"<Content-Length>", str(body).encode())
    return record


def _cases(tmp: Path) -> list[Path]:
    if not TARBALL.is_file():
        pytest.fail(f"PROTOS corpus missing: {TARBALL}")
    assert hashlib.sha256(TARBALL.read_bytes()).hexdigest() == TAR_SHA256
    with tarfile.open(TARBALL) as tar:
        tar.extractall(tmp, filter="data")
    files = sorted((tmp / "testcases").iterdir())
    assert len(files) == 4527
    return files


async def test_protos_replay_no_crash_no_hang_bounded_memory_then_calls_work(
    tmp_path: Path,
) -> None:
    cases = _cases(tmp_path)
    sink_port, uas_port = free_port(), free_port()
    conf = tmp_path / "protos.toml"
    # PROTOS INVITEs (user "callee") go to a silent default next hop; the check call after
    # the replay (user 12155550123) is routed by prefix to a fresh SIPp callee.
    conf.write_text(
        '[proxy.rate_limit]\nallow = ["127.0.0.0/8"]\n'
        "[proxy.timers]\nt1 = 0.05\nt2 = 0.2\nt4 = 0.2\ntimer_c = 5.0\n"
        f'[[proxy.routes]]\nprefix = "1215"\nnext_hop = "sip:127.0.0.1:{uas_port}"\n'
    )
    sp = await ServeProcess.start(
        "--proxy-only",
        "--config",
        str(conf),
        "--listen",
        "udp:127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--next-hop",
        f"sip:127.0.0.1:{sink_port}",
        "--log-level",
        "warning",
    )
    try:
        target = ("127.0.0.1", sp.ports["udp"])
        rss_before = sp.rss_kib()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        port = sock.getsockname()[1]
        replies = 0
        sent = 0
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for i, path in enumerate(cases):
            for rec in records(path.read_bytes()):
                # A few cases exceed what one datagram can carry: they go truncated, as a
                # network would deliver the first fragment's worth.
                sock.sendto(_fill(rec, i, port)[:MAX_DATAGRAM], target)
                sent += 1
            if i % 20 == 19:
                await asyncio.sleep(0.01)
                while True:
                    try:
                        sock.recv(65536)
                        replies += 1
                    except BlockingIOError:
                        break
        elapsed = loop.time() - t0
        await asyncio.sleep(1.0)
        assert sp.proc.returncode is None, "".join(sp.lines[-50:])
        rss_after = sp.rss_kib()
        sock.close()
        assert sent == 2 * 4527 and replies > 1000, (sent, replies)
        assert elapsed < 60
        assert rss_after - rss_before < 150 * 1024, (rss_before, rss_after)
        # Still serving: a ping and a full call.
        res = await run_sipp("uac_options.xml", target=sp.addr("udp"))
        assert res.ok, res.why
        uas = await Sipp.start("uas_call.xml", port=uas_port)
        res = await run_sipp("uac_call.xml", target=sp.addr("udp"))
        assert res.ok, res.why
        assert (await uas.wait(20)).ok
        assert sp.http is not None
        url = f"http://{sp.http[0]}:{sp.http[1]}/metrics"
        body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
        assert b'spitwall_sip_drops_total{reason="bad_request"}' in body
    finally:
        rc = await sp.stop()
    assert rc == 0
    if os.environ.get("SPITWALL_SHOW_RSS"):
        print(f"rss before {rss_before} KiB, after {rss_after} KiB")
