"""Attestation configuration (the ``[attestation]`` table)."""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Action = Literal["continue", "reject"]


@dataclass(frozen=True, slots=True)
class FailurePolicy:
    """What to do with a call whose Identity fails, per failure class. ``continue`` forwards
    it with ``verstat=TN-Validation-Failed`` and a ``Reason`` header naming the failure
    (ATIS-1000074 §5.3.2, RFC 9410); ``reject`` answers with the RFC 8224 code."""

    stale_date: Action = "continue"
    """403 Stale Date: iat outside the freshness window or in the future."""
    use_identity: Action = "continue"
    """428 Use Identity Header: none present (only judged when ``require_identity``)."""
    anonymity: Action = "continue"
    """433 Anonymity Disallowed: a PASSporT on an anonymous From without P-Asserted-Identity."""
    bad_identity_info: Action = "continue"
    """436 Bad Identity Info: info/x5u unusable or the certificate cannot be fetched."""
    unsupported_credential: Action = "continue"
    """437 Unsupported Credential: untrusted, expired, revoked or non-SHAKEN certificate."""
    invalid_identity: Action = "continue"
    """438 Invalid Identity Header: syntax, claims, signature or orig/dest binding."""
    replayed: Action = "continue"
    """A valid PASSporT already seen in another dialog within the window (cut-and-paste)."""


@dataclass(frozen=True, slots=True)
class SigningTrunk:
    """A customer trunk whose calls our STI-AS signs (``[attestation.signing_trunks.NAME]``)."""

    kind: Literal["customer", "gateway"] = "customer"
    """``customer``: attest A for ``owned_tns``, B otherwise; ``gateway``: always C."""
    owned_tns: tuple[str, ...] = ()
    """Canonical TNs the customer owns; an entry ending in ``*`` is a prefix (``1215555*``)."""
    origid: str = ""
    """The trunk's origid UUID (RFC 8588); empty = a fresh UUID per call."""
    sources: tuple[str, ...] = ()
    """Source addresses of the trunk's INVITEs as CIDRs (``"203.0.113.0/24"``,
    ``"127.0.0.1/32"``; a bare address is one host). The proxy's STI-AS mode signs an
    INVITE without an Identity header whose source falls in one of them; the most specific
    prefix over all trunks wins. Empty: the trunk is known to ``spitwall sign`` only."""

    def __post_init__(self) -> None:
        if self.origid:
            uuid.UUID(self.origid)  # ValueError names a bad UUID; the loader adds the key
        for cidr in self.sources:
            try:
                ipaddress.ip_network(cidr)
            except ValueError as exc:
                raise ValueError(f"sources: {cidr!r} is not a CIDR ({exc})") from None


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
    crl_signers: tuple[Path, ...] = ()
    """PEM files of CRL-signing certificates issued directly by a trust anchor (e.g. the
    STI-PA CRL signer under the STI-PA root): CRLs they sign count like an anchor's."""
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
    """Fetches in flight at once across all URLs (one host gets at most a quarter of them);
    more wait, within their timeout."""
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

    # --- verification (attestation.verify) and signing (attestation.sign) ---
    require_identity: bool = False
    """Treat a request without a verifiable (supported ``ppt``) Identity header as a 428
    failure; false gives ``No-TN-Validation`` without a failure."""
    freshness: float = 60.0
    """Seconds an ``iat`` may lie in the past (RFC 8224 §6.2 recommends 60)."""
    future_skew: float = 5.0
    """Seconds an ``iat`` may lie in the future (clock skew); more is 403 Stale Date."""
    country_code: str = "1"
    """Country code completing national numbers in From/PAI/To/R-URI (RFC 8224 §8.3)."""
    div_max_depth: int = 5
    """Most div PASSporTs followed from the SHAKEN ``dest`` to the Request-URI (RFC 8946)."""
    replay_cache_size: int = 200000
    """Signatures remembered for replay detection (within the freshness window)."""
    reason_form: Literal["sip", "stir"] = "sip"
    """``Reason`` header for continue-with-reason: ``SIP ;cause=438`` or the RFC 9410
    ``STIR ;cause=438 ;ppi=…`` form."""
    on_failure: FailurePolicy = field(default_factory=FailurePolicy)
    """Policy per failure class (``[attestation.on_failure]``)."""
    signing_key: Path | None = None
    """PEM EC P-256 private key of our STI-AS; unset = no signing."""
    signing_x5u: str = ""
    """HTTPS URL where our signing certificate chain is published (x5u and info)."""
    signing_trunks: dict[str, SigningTrunk] = field(default_factory=dict)
    """Customer trunks whose outgoing calls are signed, by trunk name."""
    dev_pki: bool = False
    """Development only (``make run``): create a test STI PKI under ``<data_dir>/pki`` on
    first start (again only when its certificates or CRL run out, or ``dev_pki_port``
    changes), serve it over HTTPS on 127.0.0.1:``dev_pki_port``, trust its root, allow
    127.0.0.1 as an x5u host, and sign with its leaf key and x5u when ``signing_key`` is
    unset — so ``spitwall sign --key <data_dir>/pki/sp.key --x5u
    https://127.0.0.1:8443/sp.pem`` calls verify with nothing else set up. Never in
    production: it trusts a CA whose key sat on this disk."""
    dev_pki_port: int = 8443
    """Port of the development x5u server on 127.0.0.1 (``dev_pki``); part of the x5u URL
    baked into the dev certificates, so changing it re-creates the dev PKI."""

    # --- attestation log (attestation.audit) ---
    audit_db: Path | None = None
    """The attestation log's own SQLite file (append-only, hash-chained); unset means
    ``<data_dir>/attestation.sqlite3``."""
    audit_batch_ms: float = 50.0
    """Batch window of the log's writer thread, in milliseconds: entries arriving within it
    are committed together. A crash loses at most this window (plus what is queued)."""
    audit_queue_max: int = 100000
    """Entries that may wait for the writer; beyond it they wait in a backlog of the same
    size (logged at ERROR), beyond that they are dropped, counted and recorded as a
    ``loss`` record."""
    checkpoint_records: int = 10000
    """Sign a checkpoint (record count + head hash) every this many records (0: only by
    time and at shutdown)."""
    checkpoint_interval: float = 300.0
    """Also sign a checkpoint when this many seconds passed since the last one and records
    were added."""
    checkpoint_key: Path | None = None
    """PEM Ed25519 private key signing checkpoints; unset means
    ``<data_dir>/attestation-checkpoint.key``. Generated (mode 0600, with ``.pub`` beside it)
    when missing."""

    def __post_init__(self) -> None:
        if self.audit_batch_ms < 0:
            raise ValueError("audit_batch_ms must be >= 0")
        if self.audit_queue_max < 1:
            raise ValueError("audit_queue_max must be >= 1")
        if self.checkpoint_records < 0:
            raise ValueError("checkpoint_records must be >= 0")
        if self.checkpoint_interval <= 0:
            raise ValueError("checkpoint_interval must be > 0")
        if not 1 <= self.dev_pki_port <= 65535:
            raise ValueError("dev_pki_port must be 1..65535")
