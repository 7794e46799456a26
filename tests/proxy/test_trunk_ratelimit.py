"""``[proxy.trunks]`` kinds in the rate limiter (virtual time): a carrier is never counted,
a pbx trunk's addresses share one budget, everything else stays per address."""

from __future__ import annotations

from proxy.config import ProxyConfig, RateLimitConfig, TrunkConfig
from proxy.ratelimit import RateLimiter, Verdict, limiter_for

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
    """The server puts every trunk source in ``allow`` today; the trunk's kind decides."""
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
