"""Certificates for STIR/SHAKEN verification: x5u fetch, chain validation, CRLs, cache.

The only part of ``attestation`` that opens sockets (an HTTPS client for x5u and CRL
distribution point URLs). Reference rules 16-24 of ``shared/refs/stir-shaken-verification.md``.

Public API
----------
``CertificateService(cfg: AttestationConfig, *, clock=time.time, anchors=None)``
    Built from the ``[attestation]`` config: ``trust_anchors`` (PEM files; the only trust
    roots), ``crl_files``, ``crl_signers``, ``crl_fetch``, ``crl_refresh``, ``crl_fail_closed``,
    ``x5u_allow_hosts``, ``x5u_ports``, ``x5u_ca_file``, ``x5u_timeout``,
    ``x5u_max_bytes``, ``x5u_max_concurrent``, ``cert_cache_ttl``, ``cert_cache_max_ttl``,
    ``cert_negative_ttl``, ``cert_cache_file``, ``cert_max_chain``. Raises ValueError at
    construction for an unreadable trust-anchor or CRL file (a start-up error).

``await service.get(x5u: str, at: float) -> CertResult``
    Fetch (or take from cache) the chain at ``x5u`` and validate it at verification time
    ``at`` (UNIX seconds; pass the PASSporT ``iat`` or now). Never raises for bad input or
    network trouble. Concurrent calls for one URL share one fetch.

``await service.close()``
    Cancel fetches, close the HTTP session and the cache file. Also: ``await
    service.flush()`` (wait for background CRL refreshes and cache writes),
    ``service.invalidate(x5u)``, ``service.stats`` (hits, misses, joined, fetches,
    store_hits, negative_hits, stale_served).

``CertResult`` (frozen): ``ok``, ``reason`` (a ``CertReason`` value or None), ``sip_code``
(436 URL/fetch problems, 437 credential problems), ``sip_text``, ``x5u``, ``leaf``,
``public_key`` (P-256 ``EllipticCurvePublicKey``, only when ok), ``spc``, ``tnauth``
(``attestation.tnauthlist.TNAuthList``), ``fingerprint_sha256`` (hex), ``issuer`` (RFC 4514
DN), ``chain`` (leaf … anchor), ``details`` (``detail`` text, ``cached``, ``stale``,
``lints``, ``crl_unavailable``).

Reasons (``CertReason``): 436 — ``x5u_bad_url``, ``x5u_forbidden_address``,
``x5u_fetch_failed``, ``x5u_timeout``, ``x5u_too_large``, ``x5u_not_pem``; 437 —
``cert_malformed``, ``cert_untrusted``, ``cert_bad_signature``, ``cert_expired``,
``cert_not_yet_valid``, ``cert_not_ca``, ``cert_bad_key_usage``, ``cert_revoked``,
``cert_crl_unavailable``, ``cert_no_tnauthlist``, ``cert_bad_tnauthlist``, ``cert_no_spc``,
``cert_multiple_spc``, ``cert_scope_exceeded``, ``cert_bad_key``.

Modules: ``url`` (URL rules, address guard), ``fetch`` (guarded aiohttp client),
``chain`` (path validation, TNAuthList/SPC/key rules, lints), ``crl`` (revocation),
``store`` (SQLite persistence), ``service`` (cache, single flight), ``server`` (local
HTTPS x5u server for tests and ``spitwall pki serve``).
"""

from .result import CertFailure, CertReason, CertResult, CertSipCode
from .service import CertificateService, load_anchors

__all__ = [
    "CertFailure",
    "CertReason",
    "CertResult",
    "CertSipCode",
    "CertificateService",
    "load_anchors",
]
