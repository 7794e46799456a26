"""The guarded HTTPS fetcher for x5u chains and CRLs (rules 16, 17 and 19).

Theory of operation: :func:`~attestation.certs.url.check_url` rejects bad URLs and
forbidden literal addresses without I/O. Host names go through :class:`GuardedResolver`,
the aiohttp resolver of our private connector: it resolves once, refuses the whole host if
*any* answer is a special-purpose address (unless the host is allow-listed), and hands
exactly the checked addresses to the connector — the connection goes to an address that was
checked, so a DNS answer that changes between check and connect (rebinding) cannot reach an
internal address. Redirects are never followed, the body is read in chunks and abandoned
past the size cap, and one total deadline covers waiting for a slot under the global
concurrency cap, DNS, TCP, TLS and the body. A host gets at most a quarter of the global
slots, so one hanging certificate repository cannot starve fetches from the others.
``trust_env`` is off: no proxy variables, no netrc. TLS is verified against the system
store or ``x5u_ca_file``.

Every outcome is a value: :class:`Fetched` or a :class:`CertFailure` with a 436 reason.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from .result import CertFailure, CertReason
from .url import CheckedUrl, check_url, forbidden_reason

_ACCEPT = "application/pem-certificate-chain, application/x-pem-file, application/pkix-crl, */*"


@dataclass(frozen=True, slots=True)
class Fetched:
    url: str
    body: bytes
    max_age: float | None
    """Seconds the server lets us cache this (Cache-Control max-age, Expires); None when
    it says nothing; 0 for no-store / no-cache."""
    content_type: str


class ForbiddenAddress(OSError):
    """Raised inside the resolver; surfaces as ``x5u_forbidden_address``."""


class GuardedResolver(AbstractResolver):
    """Resolve, check every address, return only checked addresses (no rebinding window)."""

    def __init__(self, allow_hosts: tuple[str, ...]) -> None:
        self._allow = {h.lower().strip("[]") for h in allow_hosts}

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(
            host, port, family=family, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
        allowed = host.lower() in self._allow
        out: list[ResolveResult] = []
        for fam, _, proto, _, sockaddr in infos:
            addr = str(sockaddr[0])
            ip = ipaddress.ip_address(addr.split("%", 1)[0])
            why = None if allowed else forbidden_reason(ip)
            if why:
                raise ForbiddenAddress(f"{host} resolves to {ip}, which is {why}")
            out.append(
                {
                    "hostname": host,
                    "host": addr,
                    "port": int(sockaddr[1]),
                    "family": fam,
                    "proto": proto,
                    "flags": socket.AI_NUMERICHOST,
                }
            )
        if not out:
            raise OSError(f"{host}: no addresses")
        return out

    async def close(self) -> None:
        return None


def max_age_of(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds of freshness from Cache-Control (max-age, no-store, no-cache) or Expires."""
    cc = headers.get("Cache-Control", "")
    directives: dict[str, str] = {}
    for part in cc.split(","):
        name, _, value = part.strip().partition("=")
        if name:
            directives[name.strip().lower()] = value.strip().strip('"')
    if "no-store" in directives or "no-cache" in directives:
        return 0.0
    for name in ("s-maxage", "max-age"):
        if name in directives:
            try:
                return float(max(0, int(directives[name])))
            except ValueError:
                return 0.0
    expires = headers.get("Expires")
    if expires is not None:
        try:
            exp = parsedate_to_datetime(expires).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return 0.0  # RFC 9111 §5.3: an invalid Expires means "already expired"
        base = now
        date = headers.get("Date")
        if date:
            try:
                base = parsedate_to_datetime(date).timestamp()
            except (TypeError, ValueError, IndexError, OverflowError):
                base = now
        return max(0.0, exp - base)
    return None


class Fetcher:
    """HTTPS GET under the x5u rules; one instance (and connection pool) per service."""

    def __init__(
        self,
        *,
        allow_hosts: tuple[str, ...] = (),
        ports: tuple[int, ...] = (443, 8443),
        ca_file: Path | None = None,
        timeout: float = 2.0,
        max_concurrent: int = 16,
        clock: Callable[[], float],
    ) -> None:
        self._allow = allow_hosts
        self._ports = ports
        self._ca_file = ca_file
        self.timeout = timeout
        self._max_concurrent = max(1, max_concurrent)
        self._clock = clock
        try:  # built now so that a bad x5u_ca_file is a start-up error, not 436 on every call
            self._ssl_ctx = self._ssl()
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"x5u_ca_file {ca_file}: {exc}") from None
        self._sem: asyncio.Semaphore | None = None
        self._per_host = max(1, self._max_concurrent // 4)
        self._host_sems: dict[str, asyncio.Semaphore] = {}
        self._session: aiohttp.ClientSession | None = None
        self.requests = 0
        """HTTP requests sent (for tests and metrics)."""

    def _ssl(self) -> ssl.SSLContext:
        if self._ca_file is not None:
            return ssl.create_default_context(cafile=str(self._ca_file))
        return ssl.create_default_context()

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                resolver=GuardedResolver(self._allow),
                use_dns_cache=False,
                ssl=self._ssl_ctx,
                limit=self._max_concurrent,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                trust_env=False,
                auto_decompress=False,
                headers={"Accept": _ACCEPT, "Accept-Encoding": "identity"},
            )
        return self._session

    def check(self, url: str) -> CheckedUrl | CertFailure:
        return check_url(url, ports=self._ports, allow_hosts=self._allow)

    async def fetch(self, url: str, max_bytes: int) -> Fetched | CertFailure:
        checked = self.check(url)
        if isinstance(checked, CertFailure):
            return checked
        if self._sem is None:
            self._sem = asyncio.Semaphore(self._max_concurrent)
        host_sem = self._host_sems.get(checked.host)
        if host_sem is None:
            if len(self._host_sems) > 1024:  # forget idle hosts
                self._host_sems = {h: s for h, s in self._host_sems.items() if s.locked()}
            host_sem = self._host_sems[checked.host] = asyncio.Semaphore(self._per_host)
        try:
            async with asyncio.timeout(self.timeout):
                async with host_sem, self._sem:  # one slow CR cannot take every slot
                    return await self._get(checked, max_bytes)
        except TimeoutError:
            return CertFailure(
                CertReason.X5U_TIMEOUT, f"no complete answer within {self.timeout:g} s"
            )

    async def _get(self, checked: CheckedUrl, max_bytes: int) -> Fetched | CertFailure:
        session = self._get_session()
        self.requests += 1
        try:
            async with session.get(checked.url, allow_redirects=False) as resp:
                if 300 <= resp.status < 400:
                    where = resp.headers.get("Location", "?")
                    return CertFailure(
                        CertReason.X5U_FETCH_FAILED,
                        f"redirect refused (HTTP {resp.status} to {where[:200]})",
                    )
                if resp.status != 200:
                    return CertFailure(CertReason.X5U_FETCH_FAILED, f"HTTP {resp.status}")
                if resp.content_length is not None and resp.content_length > max_bytes:
                    return CertFailure(
                        CertReason.X5U_TOO_LARGE,
                        f"Content-Length {resp.content_length} > {max_bytes} bytes",
                    )
                body = bytearray()
                async for chunk in resp.content.iter_chunked(8192):
                    body += chunk
                    if len(body) > max_bytes:
                        return CertFailure(
                            CertReason.X5U_TOO_LARGE, f"body exceeds {max_bytes} bytes"
                        )
                return Fetched(
                    checked.url,
                    bytes(body),
                    max_age_of(resp.headers, self._clock()),
                    resp.headers.get("Content-Type", ""),
                )
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, ForbiddenAddress):
                return CertFailure(CertReason.X5U_FORBIDDEN_ADDRESS, str(exc.os_error))
            return CertFailure(CertReason.X5U_FETCH_FAILED, f"cannot connect: {exc}")
        except aiohttp.ClientError as exc:
            return CertFailure(CertReason.X5U_FETCH_FAILED, f"{type(exc).__name__}: {exc}"[:300])
        except (OSError, ValueError) as exc:
            return CertFailure(CertReason.X5U_FETCH_FAILED, f"{type(exc).__name__}: {exc}"[:300])

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
