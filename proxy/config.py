"""Proxy configuration (the ``[proxy]`` table). Documented key by key in config/spitwall.toml."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    listen: tuple[str, ...] = ("udp:127.0.0.1:5060", "tcp:127.0.0.1:5060")
    """Where SIP is received: ``udp:HOST:PORT``, ``tcp:HOST:PORT``, ``tls:HOST:PORT``."""
    default_next_hop: str | None = None
    """SIP URI of the next hop for requests no route matches (``sip:HOST:PORT;transport=tcp``)."""
    screening_timeout: float = field(default=2.0)
    """Seconds the screening step may take before the call is forwarded unscreened."""
