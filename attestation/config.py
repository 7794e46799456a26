"""Attestation configuration (the ``[attestation]`` table)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class AttestationConfig:
    enabled: bool = True
    """Verify Identity headers on new INVITEs."""

    # --- certificates: x5u fetching, trust, revocation, cache (attestation.certs) ---
    trust_anchors: tuple[Path, ...] = ()
    """PEM files of the STI-CA trust anchors (the STI-PA list). Chains are validated against
    these only, never the system store; with none configured every certificate is untrusted."""
    crl_files: tuple[Path, ...] = ()
    """PEM or DER CRL files (direct, or indirect CRLs signed by a trust anchor); re-read when
    they change, checked every ``crl_refresh`` seconds."""
    crl_fetch: bool = True
    """Also fetch the CRL distribution point URLs named in certificates (same URL rules)."""
    crl_refresh: float = 3600.0
    """Seconds between CRL refreshes (files re-read, distribution points re-fetched)."""
    crl_fail_closed: bool = False
    """Fail verification (``cert_crl_unavailable``, 437) when a certificate's CRL
    distribution point cannot be fetched; false logs it in the result's details only."""
    crl_max_bytes: int = 1048576
    """Size cap of a fetched CRL."""
    x5u_allow_hosts: tuple[str, ...] = ()
    """Hosts (names or literal IPs) exempt from the special-address guard and the port rule,
    e.g. ``["127.0.0.1"]`` for a local test x5u server. Production leaves this empty."""
    x5u_ports: tuple[int, ...] = (443, 8443)
    """Ports an x5u/CRL URL may name (ATIS-1000074: 443 and 8443)."""
    x5u_ca_file: Path | None = None
    """PEM CA file for the TLS of x5u/CRL servers instead of the system store (tests, labs)."""
    x5u_timeout: float = 2.0
    """Total seconds for one x5u or CRL fetch (DNS, connect, TLS, body)."""
    x5u_max_bytes: int = 16384
    """Size cap of an x5u response (leaf + chain PEM)."""
    x5u_max_concurrent: int = 16
    """Fetches in flight at once across all URLs; more wait (within their timeout)."""
    cert_cache_ttl: float = 86400.0
    """Seconds a fetched chain stays cached without HTTP caching headers (never past notAfter)."""
    cert_cache_max_ttl: float = 604800.0
    """Upper bound for a Cache-Control max-age / Expires given by the server."""
    cert_negative_ttl: float = 30.0
    """Seconds a failed fetch/validation is remembered so a failing CR is not hammered."""
    cert_cache_file: Path | None = Path("var/x5u-cache.sqlite")
    """SQLite file keeping fetched chains across restarts; unset to keep them in memory only."""
    cert_max_chain: int = 5
    """Most certificates accepted in one x5u response."""
