"""Source-address → name tables (CIDR, most specific prefix wins), shared by the STI-AS
signing trunks (``[attestation.signing_trunks]``), the screening trunks (``[proxy.trunks]``)
and anything else that asks "which configured peer sent this?".

Why one module: the same lookup answered by two copies would drift (one parses ``[::1]``,
the other does not) and a call would be a trunk for signing but not for screening.
A table is compiled once from config; a lookup costs one dict probe per distinct prefix
length, so it stays on the call path.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PrefixTable(Generic[T]):
    """Configured prefixes by IP version and prefix length.

    ``levels`` lists ``(version, prefix length, {network bits: value})`` most specific
    first."""

    levels: tuple[tuple[int, int, Mapping[int, T]], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.levels)

    def lookup(self, source_ip: str) -> T | None:
        """The value of the most specific prefix holding ``source_ip``, or None (also for
        a string that is not an address)."""
        addr = parse_source(source_ip)
        if addr is None:
            return None
        value, bits = int(addr), addr.max_prefixlen
        for version, plen, matches in self.levels:
            if version != addr.version:
                continue
            hit = matches.get(value >> (bits - plen))
            if hit is not None:
                return hit
        return None


def compile_prefixes(
    entries: Iterable[tuple[str, Iterable[str]]],
    make: Callable[[str, str], T],
    section: str,
) -> PrefixTable[T]:
    """A table from ``(name, CIDRs)`` pairs; ``make(name, network)`` builds each value.

    ValueError naming ``section`` when a CIDR is not one, or one prefix is claimed by two
    names (which one applies would be a guess)."""
    by_level: dict[tuple[int, int], dict[int, tuple[str, T]]] = {}
    for name, cidrs in entries:
        for cidr in cidrs:
            try:
                net = ipaddress.ip_network(cidr.strip())
            except ValueError as exc:
                raise ValueError(f"{section}.{name}.sources: {cidr!r}: {exc}") from None
            level = by_level.setdefault((net.version, net.prefixlen), {})
            key = int(net.network_address) >> (net.max_prefixlen - net.prefixlen)
            other = level.get(key)
            if other is not None and other[0] != name:
                raise ValueError(f"{section}: {net} is a source of both {other[0]!r} and {name!r}")
            level[key] = (name, make(name, str(net)))
    levels = sorted(by_level.items(), key=lambda kv: (kv[0][0], -kv[0][1]))
    return PrefixTable(
        tuple((v, plen, {k: value for k, (_, value) in m.items()}) for (v, plen), m in levels)
    )


class HasSources(Protocol):
    """A configured peer with source CIDRs (``proxy.config.TrunkConfig`` fits)."""

    @property
    def sources(self) -> tuple[str, ...]: ...


def compile_trunk_names(trunks: Mapping[str, HasSources]) -> PrefixTable[str]:
    """``[proxy.trunks]`` → a table from source address to trunk name (screening:
    ``InviteFacts.trunk``). ValueError when a prefix is claimed twice or is not a CIDR."""
    return compile_prefixes(
        ((name, trunks[name].sources) for name in sorted(trunks)),
        lambda name, _net: name,
        "trunks",
    )


def parse_source(source_ip: str) -> IpAddress | None:
    """The address of a transport peer string (``127.0.0.1``, ``::1``, ``[::1]``,
    ``fe80::1%eth0``, IPv4-mapped IPv6 as its IPv4 address); None when it is not one."""
    text = source_ip.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.split("%", 1)[0]
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr
