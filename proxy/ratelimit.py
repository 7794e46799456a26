"""Per-source flood protection, in the spirit of Kamailio's pike module.

Theory of operation: each source IP has a counter over a fixed sampling window
(``window`` seconds). A source that sends more than ``max_requests`` requests in one window
is *shed* for ``block_seconds``: its requests are dropped (or answered 503) without
parsing cost beyond the first line, and without touching any other source's budget.
Sources in the allow-list (trunks, SBCs) are never counted. Time is passed in (``now``),
so the limiter is a pure object tested with virtual time.

Memory is bounded: idle entries are swept once per window, and at most ``max_sources``
sources are tracked (the oldest are forgotten first, which can only make a flooder's count
restart, never block an innocent source).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from .config import RateLimitConfig


class Verdict(Enum):
    ALLOW = "allow"
    SHED = "shed"
    """Over the limit: drop (or 503) this request."""
    BLOCK_START = "block_start"
    """This request pushed the source over the limit (log it once)."""


@dataclass(slots=True)
class _Source:
    window_start: float
    count: int
    blocked_until: float


class AllowList:
    """CIDR membership with a per-address cache (the hot path asks for the same IPs)."""

    def __init__(self, cidrs: Iterable[str]) -> None:
        self._nets = [ipaddress.ip_network(c, strict=False) for c in cidrs]
        self._cache: dict[str, bool] = {}

    def __contains__(self, ip: str) -> bool:
        hit = self._cache.get(ip)
        if hit is None:
            try:
                addr = ipaddress.ip_address(ip.split("%", 1)[0])
            except ValueError:
                return False
            hit = any(addr in n for n in self._nets)
            if len(self._cache) > 65536:
                self._cache.clear()
            self._cache[ip] = hit
        return hit


class RateLimiter:
    def __init__(self, cfg: RateLimitConfig, max_sources: int = 100_000) -> None:
        self.cfg = cfg
        self.allow_list = AllowList(cfg.allow)
        self._sources: dict[str, _Source] = {}
        self._max_sources = max_sources
        self._next_sweep = 0.0

    def check(self, ip: str, now: float) -> Verdict:
        """Count one request from ``ip`` at ``now`` and say whether to serve it."""
        cfg = self.cfg
        if not cfg.enabled or ip in self.allow_list:
            return Verdict.ALLOW
        if now >= self._next_sweep:
            self._sweep(now)
        s = self._sources.get(ip)
        if s is None:
            if len(self._sources) >= self._max_sources:
                self._sources.pop(next(iter(self._sources)))
            self._sources[ip] = _Source(now, 1, 0.0)
            return Verdict.ALLOW
        if now < s.blocked_until:
            return Verdict.SHED
        if now - s.window_start >= cfg.window:
            s.window_start, s.count = now, 0
        s.count += 1
        if s.count > cfg.max_requests:
            s.blocked_until = now + cfg.block_seconds
            return Verdict.BLOCK_START
        return Verdict.ALLOW

    def blocked(self, now: float) -> list[str]:
        """Sources currently shed (for /healthz and logs)."""
        return [ip for ip, s in self._sources.items() if now < s.blocked_until]

    def _sweep(self, now: float) -> None:
        horizon = self.cfg.window
        stale = [
            ip
            for ip, s in self._sources.items()
            if now - s.window_start >= horizon and now >= s.blocked_until
        ]
        for ip in stale:
            del self._sources[ip]
        self._next_sweep = now + horizon
