"""Transports with real sockets on loopback: IPv6, TCP policing (slowloris read timeout,
idle timeout, connection caps), oversized stream messages, flood shedding per source."""

from __future__ import annotations

import asyncio
import socket

import pytest

from tests.sipp.harness import in_process_proxy

pytestmark = pytest.mark.timeout(30)


def options(via: str, branch: str, ruri: str = "sip:127.0.0.1") -> bytes:
    return (
        f"OPTIONS {ruri} SIP/2.0\r\nVia: SIP/2.0/{via};branch={branch};rport\r\n"
        f"From: <sip:ping@example.com>;tag=p1\r\nTo: <{ruri}>\r\nCall-ID: {branch}@x\r\n"
        "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()


async def _tcp(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


def _port(p, transport: str) -> int:
    return int(p.addr(transport).rsplit(":", 1)[1])


async def test_ipv6_udp_options_answered() -> None:
    async with in_process_proxy({"proxy.listen": ["udp:[::1]:0"]}) as p:
        port = p.server.bound[0].port
        loop = asyncio.get_running_loop()
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind(("::1", 0))
        s.setblocking(False)
        me = s.getsockname()[1]
        s.sendto(options(f"UDP [::1]:{me}", "z9hG4bK-v6", f"sip:[::1]:{port}"), ("::1", port))
        data = await asyncio.wait_for(loop.sock_recv(s, 65536), 5)
        s.close()
    assert data.startswith(b"SIP/2.0 200 OK")


async def test_tcp_slowloris_closed_by_read_timeout_others_served() -> None:
    o = {"proxy.limits.read_timeout": 0.5}
    async with in_process_proxy(o) as p:
        port = _port(p, "tcp")
        slow_r, slow_w = await _tcp(port)
        slow_w.write(
            options("TCP 127.0.0.1:1", "z9hG4bK-slow", f"sip:127.0.0.1:{port}")[:60]
        )  # never finished
        good_r, good_w = await _tcp(port)
        good_w.write(options("TCP 127.0.0.1:2", "z9hG4bK-good", f"sip:127.0.0.1:{port}"))
        assert (await asyncio.wait_for(good_r.read(65536), 5)).startswith(b"SIP/2.0 200")
        assert await asyncio.wait_for(slow_r.read(65536), 5) == b""  # closed by the proxy
        assert p.server.metrics.connections_refused.labels("read_timeout")._value.get() == 1
        good_w.close()


async def test_tcp_idle_connection_closed() -> None:
    async with in_process_proxy({"proxy.limits.idle_timeout": 0.5}) as p:
        r, _ = await _tcp(_port(p, "tcp"))
        assert await asyncio.wait_for(r.read(65536), 5) == b""


async def test_tcp_connection_caps() -> None:
    o = {"proxy.limits.max_connections": 3}
    async with in_process_proxy(o) as p:
        port = _port(p, "tcp")
        keep = [await _tcp(port) for _ in range(3)]
        await asyncio.sleep(0.1)
        r, _ = await _tcp(port)
        assert await asyncio.wait_for(r.read(65536), 5) == b""
        assert p.server.metrics.connections_refused.labels("max_connections")._value.get() == 1
        # the admitted ones still work
        keep[0][1].write(options("TCP 127.0.0.1:3", "z9hG4bK-cap", f"sip:127.0.0.1:{port}"))
        assert (await asyncio.wait_for(keep[0][0].read(65536), 5)).startswith(b"SIP/2.0 200")


async def test_tcp_oversized_message_gets_513_then_close() -> None:
    async with in_process_proxy({"proxy.limits.max_message_size": 2000}) as p:
        r, w = await _tcp(_port(p, "tcp"))
        big = options("TCP 127.0.0.1:4", "z9hG4bK-big").replace(
            b"Content-Length: 0", b"X-Pad: " + b"a" * 3000 + b"\r\nContent-Length: 0"
        )
        w.write(big)
        data = await asyncio.wait_for(r.read(65536), 5)
        assert data.startswith(b"SIP/2.0 513")
        assert await asyncio.wait_for(r.read(65536), 5) == b""


async def test_flooding_source_shed_real_sockets_other_source_unaffected() -> None:
    o = {"proxy.rate_limit.max_requests": 50, "proxy.rate_limit.window": 5.0}
    async with in_process_proxy(o) as p:
        port = _port(p, "udp")
        loop = asyncio.get_running_loop()
        flood = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        flood.bind(("127.0.0.2", 0))  # another loopback source address
        flood.setblocking(False)
        fport = flood.getsockname()[1]
        for i in range(500):
            flood.sendto(
                options(f"UDP 127.0.0.2:{fport}", f"z9hG4bK-f{i}", f"sip:127.0.0.1:{port}"),
                ("127.0.0.1", port),
            )
            if i % 50 == 0:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        got = 0
        while True:
            try:
                flood.recv(65536)
                got += 1
            except BlockingIOError:
                break
        assert got == 50
        good = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        good.bind(("127.0.0.1", 0))
        good.setblocking(False)
        gport = good.getsockname()[1]
        good.sendto(
            options(f"UDP 127.0.0.1:{gport}", "z9hG4bK-g", f"sip:127.0.0.1:{port}"),
            ("127.0.0.1", port),
        )
        assert (await asyncio.wait_for(loop.sock_recv(good, 65536), 5)).startswith(b"SIP/2.0 200")
        flood.close()
        good.close()
        assert p.server.metrics.rate_limited._value.get() == 450
