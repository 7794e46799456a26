"""x5u/CRL URL rules and the special-purpose address guard (rules 16 and 17).

Why: an x5u URL is chosen by whoever signed the call, i.e. by an attacker. Fetching it
blindly turns every verifier into an SSRF proxy into the operator's network (cloud metadata
at 169.254.169.254, admin panels on 10.0.0.0/8, the proxy's own API on 127.0.0.1). So:

* the URL must be ``https`` on an allowed port (ATIS-1000074: 443, 8443) with no userinfo,
  query or fragment (Asterisk ``check_x5u_url``);
* the host, literal or resolved, must be a *globally routable unicast* address
  (``ipaddress``'s ``is_global``; this excludes RFC 1918, loopback, link-local, CGNAT
  100.64/10, benchmarking, documentation, IPv6 ULA/link-local, unspecified, and anything
  else RFC 6890 marks non-global), also looking inside IPv4-mapped, 6to4, NAT64 and Teredo
  IPv6 forms that would otherwise smuggle an IPv4 target;
* unless the host is named in ``x5u_allow_hosts`` (tests, labs).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from .result import CertFailure, CertReason

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_MAX_URL = 2048


@dataclass(frozen=True, slots=True)
class CheckedUrl:
    url: str
    host: str
    """Lower-case host name, or the literal address without brackets."""
    port: int
    literal: IPAddress | None
    """The address when the host is an IP literal (then no DNS is involved)."""
    allowed_host: bool
    """The host is allow-listed: no address guard."""


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` may not be fetched from, or None when it is a global unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
        inner = _embedded_v4(ip)
        if inner is not None:
            why = forbidden_reason(inner)
            return f"embeds {inner}: {why}" if why else None
    for attr, label in (
        ("is_unspecified", "unspecified"),
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_private", "private/special-purpose"),
        ("is_reserved", "reserved"),
    ):
        if getattr(ip, attr):
            return label
    if isinstance(ip, ipaddress.IPv4Address) and ip in ipaddress.ip_network("100.64.0.0/10"):
        return "shared address space (CGNAT)"
    if not ip.is_global:
        return "not globally routable"
    return None


def _bad(detail: str) -> CertFailure:
    return CertFailure(CertReason.X5U_BAD_URL, detail)


def check_url(
    url: str, *, ports: tuple[int, ...], allow_hosts: tuple[str, ...]
) -> CheckedUrl | CertFailure:
    """Apply rule 16 and, for literal addresses, rule 17 without any I/O."""
    if not isinstance(url, str) or not url:
        return _bad("empty URL")
    if len(url) > _MAX_URL:
        return _bad(f"URL longer than {_MAX_URL} characters")
    if not url.isascii() or any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        return _bad("URL holds whitespace, control or non-ASCII characters")
    try:
        parts: SplitResult = urlsplit(url)
        port_given = parts.port
    except ValueError as exc:
        return _bad(f"unparsable URL: {exc}")
    if parts.scheme.lower() != "https":
        return _bad(f"scheme {parts.scheme or '(none)'!r} is not https")
    if "@" in parts.netloc:
        return _bad("userinfo is not allowed")
    if "?" in url:
        return _bad("a query is not allowed")
    if "#" in url:
        return _bad("a fragment is not allowed")
    host = (parts.hostname or "").lower()
    if not host:
        return _bad("no host")
    if not parts.path or not parts.path.startswith("/") or parts.path == "/":
        return _bad("no path to a certificate")
    if ".." in parts.path.split("/"):
        return _bad("dot-segments in the path")
    port = port_given if port_given is not None else 443
    allowed_host = host in {h.lower().strip("[]") for h in allow_hosts}
    if not allowed_host and port not in ports:
        return _bad(f"port {port} is not one of {', '.join(map(str, ports))}")
    literal: IPAddress | None
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
        if host.replace(".", "").isdigit():
            return _bad(f"{host!r} is not a canonical IP address")
        if not all(c.isalnum() or c in "-._" for c in host):
            return _bad(f"invalid host name {host!r}")
    if literal is not None and not allowed_host:
        why = forbidden_reason(literal)
        if why:
            return CertFailure(CertReason.X5U_FORBIDDEN_ADDRESS, f"{literal} is {why}")
    return CheckedUrl(url, host, port, literal, allowed_host)
