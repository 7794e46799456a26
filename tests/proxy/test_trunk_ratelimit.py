"""``[proxy.trunks]`` kinds in the rate limiter (virtual time): a carrier is never counted,
a pbx trunk's addresses share one budget, everything else stays per address."""

from __future__ import annotations

import asyncio
import socket

import pytest

from proxy.config import ProxyConfig, RateLimitConfig, TrunkConfig
from proxy.ratelimit import RateLimiter, Verdict, limiter_for
from tests.sipp.harness import in_process_proxy

TRUNKS = {
    "carrier1": TrunkConfig(sources=("198.51.100.0/24",)),
    "pbx7": TrunkConfig(sources=("198.51.100.7", "2001:db8::7"), kind="pbx", max_requests=4),
    "pbx9": TrunkConfig(sources=("203.0.113.9",), kind="pbx"),
}
CFG = RateLimitConfig(window=2.0, max_requests=3, block_seconds=10.0, allow=("203.0.113.0/24",))


def burst(rl: RateLimiter, ips: list[str], t: float = 100.0) -> list[Verdict]:
    return [rl.check(ip, t + 0.01 * i) for i, ip in enumerate(ips)]


def test_carrier_never_counted_pbx_shares_one_budget() -> None:
    rl = RateLimiter(CFG, trunks=TRUNKS)
    assert set(burst(rl, ["198.51.100.20"] * 50)) == {Verdict.ALLOW}
    # pbx7 (most specific prefix inside carrier1's /24): 4 per window over both addresses
    got = burst(rl, ["198.51.100.7", "2001:db8::7"] * 3)
    assert got[:4] == [Verdict.ALLOW] * 4 and got[4] is Verdict.BLOCK_START
    assert got[5] is Verdict.SHED
    assert rl.blocked(101.0) == ["trunk:pbx7"]
    assert rl.check("198.51.100.7", 111.0) is Verdict.ALLOW  # block over


def test_pbx_limited_even_inside_the_allow_list() -> None:
    """An allow-listed address that belongs to a pbx trunk is still limited: the kind decides."""
    rl = RateLimiter(CFG, trunks=TRUNKS)
    got = burst(rl, ["203.0.113.9"] * 5)
    assert got[3] is Verdict.BLOCK_START  # rate_limit.max_requests (3) when unset
    assert set(burst(rl, ["203.0.113.10"] * 20)) == {Verdict.ALLOW}  # plain allow-list
    assert burst(rl, ["192.0.2.1"] * 4)[3] is Verdict.BLOCK_START  # anybody else: per IP


def test_limiter_for_uses_the_trunks_and_budget_is_cached() -> None:
    rl = limiter_for(ProxyConfig(rate_limit=CFG, trunks=TRUNKS))
    assert rl.budget("198.51.100.7") == ("trunk:pbx7", 4)
    assert rl.budget("198.51.100.8") is None
    assert rl.budget("::ffff:198.51.100.7") == ("trunk:pbx7", 4)
    assert rl.budget("192.0.2.5") == ("192.0.2.5", 3)
    assert rl.budget("not an address") == ("not an address", 3)
    assert RateLimiter(CFG).budget("198.51.100.7") == ("198.51.100.7", 3)  # no trunks given


def _udp_from(host: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, 0))
    s.setblocking(False)
    return s


def _options(s: socket.socket, port: int, i: int) -> None:
    me = s.getsockname()
    s.sendto(
        (
            f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {me[0]}:{me[1]};branch=z9hG4bK-t{me[0]}-{i};rport\r\n"
            f"From: <sip:ping@example.com>;tag=p1\r\nTo: <sip:127.0.0.1>\r\n"
            f"Call-ID: t{i}@{me[0]}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode(),
        ("127.0.0.1", port),
    )


def _answers(s: socket.socket) -> int:
    got = 0
    while True:
        try:
            s.recv(65536)
        except BlockingIOError:
            return got
        got += 1


@pytest.mark.timeout(30)
async def test_running_proxy_sheds_a_pbx_trunk_as_one_source_never_a_carrier() -> None:
    """Real sockets through ``spitwall``'s server: the pbx's two addresses share one budget
    of 10, the carrier's address is never shed, and the server's limiter is limiter_for."""
    o = {
        "proxy.rate_limit.max_requests": 50,
        "proxy.rate_limit.window": 5.0,
        "proxy.trunks": {
            "acme": {"sources": ["127.0.0.2", "127.0.0.3"], "kind": "pbx", "max_requests": 10},
            "carrier1": {"sources": ["127.0.0.4"]},
        },
    }
    async with in_process_proxy(o) as p:
        port = int(p.addr("udp").rsplit(":", 1)[1])
        pbx = [_udp_from("127.0.0.2"), _udp_from("127.0.0.3")]
        carrier = _udp_from("127.0.0.4")
        for i in range(15):
            _options(pbx[i % 2], port, i)
        for i in range(80):  # above rate_limit.max_requests: a carrier is never counted
            _options(carrier, port, i)
            if i % 20 == 0:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        assert _answers(pbx[0]) + _answers(pbx[1]) == 10
        assert _answers(carrier) == 80
        for s in (*pbx, carrier):
            s.close()
