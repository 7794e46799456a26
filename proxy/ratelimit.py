"""Per-source flood protection, in the spirit of Kamailio's pike module.

Theory of operation: each source IP has a counter over a fixed sampling window
(``window`` seconds). A source that sends more than ``max_requests`` requests in one window
is *shed* for ``block_seconds``: its requests are dropped (or answered 503) without
parsing cost beyond the first line, and without touching any other source's budget.
Sources in the allow-list (SBCs) are never counted. Time is passed in (``now``), so the
limiter is a pure object tested with virtual time.

Trunks (``[proxy.trunks]``, given as ``trunks=``) are resolved first, by the same most
specific prefix as screening: a ``carrier`` trunk's sources are never counted (an
interconnect carries everybody's calls); a ``pbx`` trunk's sources share one counter,
``trunk:NAME``, with the trunk's own ``max_requests`` (one customer, however many
addresses it sends from). :func:`limiter_for` builds the proxy's limiter this way.

Memory is bounded: idle entries are swept once per window, and at most ``max_sources``
sources are tracked (the oldest are forgotten first, which can only make a flooder's count
restart, never block an innocent source).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from .config import ProxyConfig, RateLimitConfig, TrunkConfig
from .prefixes import compile_prefixes


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


_Budget = tuple[str, int]
"""The counter a request is charged to and its limit per window."""


class RateLimiter:
    def __init__(
        self,
        cfg: RateLimitConfig,
        max_sources: int = 100_000,
        *,
        trunks: Mapping[str, TrunkConfig] | None = None,
    ) -> None:
        self.cfg = cfg
        self.allow_list = AllowList(cfg.allow)
        self._trunks = compile_prefixes(
            ((name, t.sources) for name, t in sorted((trunks or {}).items())),
            lambda name, _net: _trunk_budget(name, (trunks or {})[name], cfg),
            "trunks",
        )
        self._budgets: dict[str, _Budget | None] = {}
        self._sources: dict[str, _Source] = {}
        self._max_sources = max_sources
        self._next_sweep = 0.0

    def budget(self, ip: str) -> _Budget | None:
        """``(counter, limit)`` a request from ``ip`` is charged to; None = never limited
        (allow-list, carrier trunk). Cached per address: the hot path asks for few IPs."""
        if ip in self._budgets:
            return self._budgets[ip]
        trunk = self._trunks.lookup(ip) if self._trunks else None
        budget: _Budget | None
        if trunk is not None:
            budget = trunk[0]
        elif ip in self.allow_list:
            budget = None
        else:
            budget = (ip, self.cfg.max_requests)
        if len(self._budgets) > 65536:
            self._budgets.clear()
        self._budgets[ip] = budget
        return budget

    def check(self, ip: str, now: float) -> Verdict:
        """Count one request from ``ip`` at ``now`` and say whether to serve it."""
        cfg = self.cfg
        if not cfg.enabled:
            return Verdict.ALLOW
        budget = self.budget(ip)
        if budget is None:
            return Verdict.ALLOW
        key, limit = budget
        if now >= self._next_sweep:
            self._sweep(now)
        s = self._sources.get(key)
        if s is None:
            if len(self._sources) >= self._max_sources:
                self._sources.pop(next(iter(self._sources)))
            self._sources[key] = _Source(now, 1, 0.0)
            return Verdict.ALLOW
        if now < s.blocked_until:
            return Verdict.SHED
        if now - s.window_start >= cfg.window:
            s.window_start, s.count = now, 0
        s.count += 1
        if s.count > limit:
            s.blocked_until = now + cfg.block_seconds
            return Verdict.BLOCK_START
        return Verdict.ALLOW

    def blocked(self, now: float) -> list[str]:
        """Sources currently shed (for /healthz and logs); a pbx trunk as ``trunk:NAME``."""
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


def _trunk_budget(name: str, trunk: TrunkConfig, cfg: RateLimitConfig) -> tuple[_Budget | None]:
    """A trunk's entry in the limiter's prefix table: a 1-tuple, so that "never limited"
    (a carrier's ``(None,)``) is told apart from "no trunk" (the lookup's None)."""
    if not trunk.rate_limited:
        return (None,)
    return ((f"trunk:{name}", trunk.max_requests or cfg.max_requests),)


def limiter_for(cfg: ProxyConfig, max_sources: int = 100_000) -> RateLimiter:
    """The proxy's limiter: ``rate_limit`` plus the trunks' kinds (carrier sources never
    counted, each pbx trunk one counter). The live server and ``spitwall replay`` share it,
    so a replay sheds what the proxy would shed."""
    return RateLimiter(cfg.rate_limit, max_sources, trunks=cfg.trunks)
