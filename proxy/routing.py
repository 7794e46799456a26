"""Static routing: where a request that is not for this proxy goes next.

Pure decisions over plain data (no sockets, no DNS): the Request-URI's host and user part
in, a ``NextHop`` (transport, host, port) or a ``NoRoute`` with its SIP status out. Order of
precedence, most specific first:

1. a route whose ``domain`` equals the Request-URI host (case-insensitive);
2. the route with the longest ``prefix`` of the Request-URI user's digits (``+`` and visual
   separators ignored, as ATIS-1000074 canonicalisation does);
3. the default next hop;
4. otherwise the Request-URI itself when its host is not ours (plain RFC 3261 §16.5
   forwarding to the target), else ``NoRoute(404)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from .config import RouteConfig, Transport

_DEFAULT_PORT = {"udp": 5060, "tcp": 5060, "tls": 5061}
_VISUAL = str.maketrans("", "", "+-.() ")


class NextHopError(ValueError):
    """A next-hop URI in the config cannot be used (raised at start, names the value)."""


@dataclass(frozen=True, slots=True)
class NextHop:
    transport: Transport
    host: str
    """Host name or IP literal without brackets."""
    port: int
    route: str = ""
    """Name of the route that chose this hop (for logs and metrics)."""

    @property
    def hostport(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class NoRoute:
    status: Literal[404, 503]
    reason: str


def parse_next_hop(uri: str, transport: Transport | None = None, name: str = "") -> NextHop:
    """Parse ``sip:HOST[:PORT][;transport=tcp]`` / ``sips:…`` into a NextHop."""
    scheme, sep, rest = uri.strip().partition(":")
    scheme = scheme.lower()
    if not sep or scheme not in ("sip", "sips"):
        raise NextHopError(f"next hop must be a sip: or sips: URI, got {uri!r}")
    rest = rest.split("?", 1)[0]
    hostport, *params = rest.split(";")
    if "@" in hostport:
        hostport = hostport.rsplit("@", 1)[1]
    tparam: str | None = None
    for p in params:
        k, _, v = p.partition("=")
        if k.strip().lower() == "transport":
            tparam = v.strip().lower()
    if hostport.startswith("["):
        host, close, tail = hostport[1:].partition("]")
        if not close:
            raise NextHopError(f"unclosed IPv6 reference in {uri!r}")
        port_s = tail[1:] if tail.startswith(":") else ""
    else:
        host, _, port_s = hostport.partition(":")
    if not host:
        raise NextHopError(f"missing host in {uri!r}")
    chosen = transport or tparam or ("tls" if scheme == "sips" else "udp")
    if chosen not in ("udp", "tcp", "tls"):
        raise NextHopError(f"unsupported transport {chosen!r} in {uri!r}")
    if port_s and (not port_s.isdigit() or not 0 < int(port_s) < 65536):
        raise NextHopError(f"bad port in {uri!r}")
    port = int(port_s) if port_s else _DEFAULT_PORT[chosen]
    return NextHop(chosen, host, port, name)  # type: ignore[arg-type]


def digits(user: str | None) -> str:
    """The dialable digits of a URI user part (``+1 (215) 555-1212`` → ``12155551212``)."""
    if not user:
        return ""
    u = user.split(";", 1)[0].translate(_VISUAL)
    return u if u.isdigit() else ""


class Router:
    """Compiled static routes; build once from config, call ``route`` per request."""

    def __init__(self, routes: Iterable[RouteConfig], default: str | None = None) -> None:
        self._by_domain: dict[str, NextHop] = {}
        self._by_prefix: dict[str, NextHop] = {}
        for i, r in enumerate(routes):
            hop = parse_next_hop(r.next_hop, r.transport, r.name or f"routes[{i}]")
            if r.domain is not None:
                self._by_domain.setdefault(r.domain.lower(), hop)
            if r.prefix is not None:
                self._by_prefix.setdefault(r.prefix.lstrip("+"), hop)
        self._lengths = sorted({len(p) for p in self._by_prefix}, reverse=True)
        self.default = parse_next_hop(default, None, "default") if default else None

    def route(
        self,
        host: str,
        user: str | None,
        *,
        host_is_ours: bool,
        uri_transport: Transport = "udp",
        uri_port: int | None = None,
    ) -> NextHop | NoRoute:
        """Choose the next hop for a Request-URI (``host``, ``user``)."""
        hop = self._by_domain.get(host.lower())
        if hop is not None:
            return hop
        d = digits(user)
        if d:
            for n in self._lengths:
                if n <= len(d):
                    hop = self._by_prefix.get(d[:n])
                    if hop is not None:
                        return hop
        if self.default is not None:
            return self.default
        if not host_is_ours:
            port = uri_port or _DEFAULT_PORT[uri_transport]
            return NextHop(uri_transport, host.strip("[]"), port, "request-uri")
        return NoRoute(404, "No Route")
