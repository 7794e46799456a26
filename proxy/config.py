"""Proxy configuration (the ``[proxy]`` table). Documented key by key in config/spitwall.toml.

Why one frozen tree: the proxy, its transports, the router and the rate limiter each get the
sub-object they need, passed in; nothing reads TOML or global state but the config loader.
Cross-field checks (a route needs a match and a next hop, TLS needs a certificate) happen in
``__post_init__`` so an invalid file fails at start with the key named.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from spitwall.settings import ConfigError

from .prefixes import compile_trunk_names
from .sip import Limits

Transport = Literal["udp", "tcp", "tls"]


def _Invalid(key: str, message: str) -> ValueError:
    """A cross-field error; the loader prefixes the table's dotted key (``proxy.limits``)."""
    return ValueError(f"{key}: {message}")


def parse_listen(spec: str, key: str = "proxy.listen") -> tuple[Transport, str, int]:
    """Split ``udp:HOST:PORT`` (``tls:[::1]:5061``) into its parts, naming ``key`` on error."""
    proto, sep, rest = spec.partition(":")
    if not sep or proto not in ("udp", "tcp", "tls"):
        raise ConfigError(
            key, f"expected udp:HOST:PORT, tcp:HOST:PORT or tls:HOST:PORT, got {spec!r}"
        )
    if rest.startswith("["):
        host, close, tail = rest[1:].partition("]")
        if not close or not tail.startswith(":"):
            raise ConfigError(key, f"bad IPv6 listen address {spec!r}")
        port_s = tail[1:]
    else:
        host, sep2, port_s = rest.rpartition(":")
        if not sep2:
            raise ConfigError(key, f"missing port in {spec!r}")
    if not host or not port_s.isdigit() or int(port_s) > 65535:
        raise ConfigError(key, f"bad host or port in {spec!r}")
    return proto, host, int(port_s)  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class RouteConfig:
    """One static route: a Request-URI domain or a number prefix, and where to send it."""

    next_hop: str = ""
    """SIP URI of the next hop: ``sip:HOST:PORT`` with optional ``;transport=tcp|tls|udp``."""
    domain: str | None = None
    """Request-URI host this route serves (case-insensitive exact match)."""
    prefix: str | None = None
    """Leading digits of the Request-URI user part (a ``+`` is ignored); longest prefix wins."""
    transport: Transport | None = None
    """Transport toward the next hop; overrides the URI's ``transport`` parameter."""
    name: str = ""
    """Label shown in logs and metrics."""

    def __post_init__(self) -> None:
        if not self.next_hop:
            raise _Invalid("next_hop", "required key is missing")
        if self.domain is None and self.prefix is None:
            raise _Invalid("domain", "a route needs a domain or a prefix")
        if self.prefix is not None and not self.prefix.lstrip("+").isdigit():
            raise _Invalid("prefix", f"expected digits, got {self.prefix!r}")


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    """What one message or one peer may cost the proxy."""

    max_message_size: int = 65535
    """Largest SIP message in bytes (a datagram or a framed stream message)."""
    max_headers: int = 128
    """Most header fields in one message."""
    max_header_length: int = 8192
    """Longest header line in bytes (after unfolding)."""
    max_connections: int = 1024
    """Most simultaneous TCP/TLS connections; new ones beyond are refused."""
    max_connections_per_ip: int = 64
    """Most simultaneous TCP/TLS connections from one IP address."""
    idle_timeout: float = 120.0
    """Seconds a TCP/TLS connection may sit without traffic before it is closed."""
    read_timeout: float = 10.0
    """Seconds a partly received message may stay incomplete (slowloris guard)."""
    max_transactions: int = 200_000
    """Live transactions (per worker) beyond which new requests get 503 with Retry-After.
    Finished transactions linger 64*T1 (32 s) over UDP to absorb retransmissions, so a full
    call (INVITE and BYE, server and client side: 4 transactions) occupies about
    ``4 * 32 * calls/s`` slots: 1,500 calls/s need 192,000. A lingering transaction keeps
    no message bytes it will never resend (about 1.8 KB each), so the default costs at most
    ~400 MB per worker."""
    retry_after: int = 5
    """Seconds in the Retry-After header of an overload 503."""
    max_loop_lag: float = 0.15
    """Event-loop lag (seconds) above which new calls get 503 + Retry-After until it recovers."""

    def parse_limits(self) -> Limits:
        """The parser's limits (message size, header count and length) from this config."""
        return Limits(self.max_message_size, self.max_headers, self.max_header_length)

    def __post_init__(self) -> None:
        for name in (
            "max_message_size",
            "max_headers",
            "max_header_length",
            "max_connections",
            "max_connections_per_ip",
            "max_transactions",
        ):
            if getattr(self, name) <= 0:
                raise _Invalid(name, "must be positive")


@dataclass(frozen=True, slots=True)
class TimersConfig:
    """RFC 3261 §17.1.1.1 timer bases and the proxy's Timer C (§16.6 item 11)."""

    t1: float = 0.5
    """RTT estimate, seconds (retransmission base; Timer B/F/H are 64*T1)."""
    t2: float = 4.0
    """Maximum retransmit interval for non-INVITE requests and INVITE responses."""
    t4: float = 5.0
    """Maximum time a message stays in the network (Timer I/K)."""
    timer_c: float = 180.0
    """Seconds an INVITE branch may stay without a final response before it is CANCELled."""

    def __post_init__(self) -> None:
        if not 0 < self.t1 <= self.t2:
            raise _Invalid("t1", "must be positive and not above t2")
        if self.timer_c <= 0 or self.t4 <= 0:
            raise _Invalid("timer_c", "timers must be positive")


@dataclass(frozen=True, slots=True)
class TlsConfig:
    cert_file: Path | None = None
    """PEM certificate (chain) presented on ``tls:`` listeners and outgoing TLS connections."""
    key_file: Path | None = None
    """PEM private key for ``cert_file``."""
    ca_file: Path | None = None
    """PEM CA bundle used to verify TLS peers; absent = peers are not verified."""
    verify_peer: bool = False
    """Require and verify the peer's certificate (needs ``ca_file``)."""


@dataclass(frozen=True, slots=True)
class RateLimitConfig:
    """Per-source flood protection, in the spirit of Kamailio's pike module."""

    enabled: bool = True
    """Turn per-source rate limiting on."""
    window: float = 2.0
    """Sampling window in seconds."""
    max_requests: int = 400
    """Requests one source IP may send in one window before it is shed."""
    block_seconds: float = 10.0
    """How long a source stays shed after exceeding the limit."""
    action: Literal["drop", "503"] = "drop"
    """``drop`` silently, or answer ``503`` with Retry-After = block_seconds."""
    allow: tuple[str, ...] = ()
    """CIDRs never limited (trunks, SBCs): ``["192.0.2.0/24", "2001:db8::/32"]``."""

    def __post_init__(self) -> None:
        for i, cidr in enumerate(self.allow):
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"allow[{i}]: not a CIDR: {cidr!r}") from None
        if self.window <= 0 or self.max_requests <= 0:
            raise _Invalid("window", "window and max_requests must be positive")


@dataclass(frozen=True, slots=True)
class TrunkConfig:
    """A peer that carries calls from a known place (``[proxy.trunks.NAME]``): a carrier
    interconnect / SBC, or a customer's PBX. Calls from its ``sources`` get
    ``CallFacts.trunk = NAME`` (the call records and ``spitwall replay`` reports name it).

    ``kind`` says what one source address of the trunk means, and so how it is treated:

    - ``carrier``: an interconnect carrying many unrelated callers. Its address is nobody's
      identity: never rate-limited (``proxy.ratelimit``), and the scoring engine does not
      count its calls under the source address (``reputation.patterns.count_trunk_ips``).
    - ``pbx``: one customer's PBX. Its addresses are one customer: flood protection applies
      to the trunk as a whole (all its sources share one budget of ``max_requests`` per
      ``proxy.rate_limit.window``), so a hijacked PBX cannot flood the proxy. This is
      :func:`proxy.ratelimit.limiter_for`, which the running server and ``spitwall
      replay`` both use.

    What the kind does *not* change today: scoring treats both kinds alike (no source-IP
    key for any trunk call: ``reputation.engine`` sees only ``CallFacts.trunk``), and the
    kind is not a column of the call records."""

    sources: tuple[str, ...] = ()
    """Source addresses as CIDRs (``"198.51.100.0/24"``; a bare address is one host). The
    most specific prefix over all trunks wins; one prefix may not belong to two trunks."""
    kind: Literal["carrier", "pbx"] = "carrier"
    """``carrier``: an interconnect of many callers, never rate-limited; ``pbx``: one
    customer's PBX, rate-limited as one source per trunk (see the class docstring)."""
    max_requests: int | None = None
    """``pbx`` only: requests the whole trunk may send per ``proxy.rate_limit.window``
    (default ``proxy.rate_limit.max_requests``); a busy call-centre PBX gets more here."""

    def __post_init__(self) -> None:
        for i, cidr in enumerate(self.sources):
            try:
                ipaddress.ip_network(cidr.strip())
            except ValueError as exc:
                raise ValueError(f"sources[{i}]: {cidr!r} is not a CIDR ({exc})") from None
        if self.max_requests is not None:
            if self.kind != "pbx":
                raise _Invalid(
                    "max_requests", "only a pbx trunk is rate-limited (a carrier never is)"
                )
            if self.max_requests <= 0:
                raise _Invalid("max_requests", "must be positive")

    @property
    def rate_limited(self) -> bool:
        """Whether flood protection applies to this trunk (``pbx``) or never (``carrier``)."""
        return self.kind == "pbx"


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    listen: tuple[str, ...] = ("udp:127.0.0.1:5060", "tcp:127.0.0.1:5060")
    """Where SIP is received: ``udp:HOST:PORT``, ``tcp:HOST:PORT``, ``tls:HOST:PORT``."""
    default_next_hop: str | None = None
    """SIP URI of the next hop for requests no route matches (``sip:HOST:PORT;transport=tcp``)."""
    screening_timeout: float = field(default=2.0)
    """Seconds the screening step may take before the call is forwarded unscreened."""
    routes: tuple[RouteConfig, ...] = ()
    """Static routes by Request-URI domain or number prefix (``[[proxy.routes]]``)."""
    domains: tuple[str, ...] = ()
    """Extra host names that mean "this proxy" in a Request-URI or Route (listen hosts count)."""
    advertised_host: str | None = None
    """Host written in Via and Record-Route when the listen host is a wildcard or NATed."""
    record_route: bool = True
    """Insert Record-Route so in-dialog requests (ACK, BYE, re-INVITE) pass the proxy."""
    stray_responses: Literal["drop", "forward"] = "drop"
    """Responses matching no transaction: ``drop`` (counted) or ``forward`` statelessly (§16.7)."""
    workers: int = 1
    """Worker processes (UDP with SO_REUSEPORT; each worker has its own Via port)."""
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    timers: TimersConfig = field(default_factory=TimersConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    rate_limit: RateLimitConfig = field(default_factory=RateLimitConfig)
    trunks: dict[str, TrunkConfig] = field(default_factory=dict)
    """Named trunks by source CIDR (``[proxy.trunks.NAME]``), see :class:`TrunkConfig`."""

    def trunk_sources(self) -> tuple[str, ...]:
        """Every trunk's CIDRs, by trunk name. Nothing in the proxy calls this: the rate
        limiter resolves trunks by kind (``proxy.ratelimit.limiter_for``), not through its
        allow-list."""
        return tuple(c for name in sorted(self.trunks) for c in self.trunks[name].sources)

    def __post_init__(self) -> None:
        if not self.listen:
            raise _Invalid("listen", "at least one listen address is needed")
        for i, spec in enumerate(self.listen):
            try:
                proto, _, _ = parse_listen(spec, f"listen[{i}]")
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
            if proto == "tls" and (self.tls.cert_file is None or self.tls.key_file is None):
                raise _Invalid(
                    "tls.cert_file", "a tls: listener needs tls.cert_file and tls.key_file"
                )
        if self.screening_timeout <= 0:
            raise _Invalid("screening_timeout", "must be positive")
        if not 1 <= self.workers <= 64:
            raise _Invalid("workers", "must be between 1 and 64")
        compile_trunk_names(self.trunks)  # a prefix claimed by two trunks fails at start
