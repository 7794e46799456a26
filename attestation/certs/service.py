"""``CertificateService``: x5u URL → validated SHAKEN credential, cached (rules 16-24).

Theory of operation. ``get(x5u, at)`` answers from memory when it can: a cached entry holds
the *validated* chain plus the interval in which all its certificates are valid, so a hit
costs a time-window comparison and, when the CRL set changed, a few set look-ups — never
a signature check. A miss goes through single flight (one task per URL; every concurrent
caller awaits the same task), which tries the SQLite store first (re-validating the stored
PEM against today's anchors) and otherwise fetches. Failures are cached too, for
``cert_negative_ttl`` seconds, so a dead or slow certificate repository costs one timeout
per URL per window rather than one per call. Freshness follows the server's caching headers
(``cert_cache_ttl`` when none, capped by ``cert_cache_max_ttl``) and never outlives the
earliest notAfter in the chain.

Two clocks: ``at`` (the verification time, normally the PASSporT ``iat`` or now) decides
certificate validity; the service's ``clock`` (wall time, injectable for tests) decides
cache freshness.

The warm path is on every verified call, so a hit on an unchanged entry hands back one
:class:`CertResult` built on the first hit and kept on the entry (issuer string,
fingerprint and details computed once). What may change between hits is still checked on
each one: ``at`` against the chain's validity window, the CRL set's generation (a new or
refreshed CRL re-runs the revocation check), and the periodic CRL re-preparation; any of
them that changes the answer drops the prebuilt result and builds a fresh one. Callers must
treat a result (and its ``details``) as read-only: hits share it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from ..config import AttestationConfig
from .chain import ValidChain, parse_pem_chain, validate
from .crl import CrlStore
from .fetch import Fetcher
from .result import CertFailure, CertReason, CertResult
from .store import CertStore, StoredChain

log = logging.getLogger(__name__)

_MAX_ENTRIES = 10_000
_CRL_RECHECK = 60.0
_PURGE_EVERY = 3600.0
_TIME_REASONS = (CertReason.CERT_EXPIRED, CertReason.CERT_NOT_YET_VALID)


def load_anchors(paths: Sequence[Path], what: str = "trust anchor") -> list[x509.Certificate]:
    """Certificates from PEM files; a missing or unparsable file is a ValueError naming it."""
    anchors: list[x509.Certificate] = []
    for p in paths:
        try:
            anchors.extend(x509.load_pem_x509_certificates(Path(p).read_bytes()))
        except OSError as exc:
            raise ValueError(f"{what} file {p}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise ValueError(f"{what} file {p}: no PEM certificates ({exc})") from None
    return anchors


@dataclass(slots=True)
class _Entry:
    expires: float
    """Cache freshness, service clock."""
    chain: ValidChain | None = None
    failure: CertFailure | None = None
    received: tuple[x509.Certificate, ...] = ()
    crl_generation: int = -1
    revoked: CertFailure | None = None
    crl_notes: dict[str, str] = field(default_factory=dict)
    crl_checked: float = 0.0
    source: str = "fetch"
    stale_since: float | None = None
    hit: CertResult | None = None
    """The ok answer for cache hits, built once; dropped when revocation state changes."""


class CertificateService:
    """See the package docstring (``attestation.certs``) for the contract."""

    def __init__(
        self,
        cfg: AttestationConfig,
        *,
        clock: Callable[[], float] = time.time,
        anchors: Sequence[x509.Certificate] | None = None,
    ) -> None:
        self._cfg = cfg
        self._clock = clock
        self._anchors = list(anchors) if anchors is not None else load_anchors(cfg.trust_anchors)
        self._fetcher = Fetcher(
            allow_hosts=cfg.x5u_allow_hosts,
            ports=cfg.x5u_ports,
            ca_file=cfg.x5u_ca_file,
            timeout=cfg.x5u_timeout,
            max_concurrent=cfg.x5u_max_concurrent,
            clock=clock,
        )
        self._crls = CrlStore(
            self._anchors,
            self._fetcher,
            files=cfg.crl_files,
            signers=load_anchors(cfg.crl_signers, "CRL signer"),
            fetch_dps=cfg.crl_fetch,
            refresh=cfg.crl_refresh,
            max_bytes=cfg.crl_max_bytes,
            fail_closed=cfg.crl_fail_closed,
            clock=clock,
        )
        self._store = CertStore(cfg.cert_cache_file) if cfg.cert_cache_file else None
        self._entries: dict[str, _Entry] = {}
        self._inflight: dict[str, asyncio.Task[_Entry]] = {}
        self._last_purge = 0.0
        self.stats: Counter[str] = Counter()
        """``hits``, ``misses``, ``fetches``, ``store_hits``, ``negative_hits``, ``joined``,
        ``stale_served``."""

    @property
    def fetcher(self) -> Fetcher:
        return self._fetcher

    # --- public API ------------------------------------------------------------------

    async def get(self, x5u: str, at: float) -> CertResult:
        """The validated credential behind ``x5u`` at verification time ``at`` (UNIX
        seconds). Never raises for bad input or network trouble: failures are results."""
        now = self._clock()
        entry = self._entries.get(x5u)
        cached = entry is not None and entry.expires > now
        if entry is None or not cached:
            task = self._inflight.get(x5u)
            if task is None:
                self.stats["misses"] += 1
                task = asyncio.ensure_future(self._load(x5u, at, entry))
                self._inflight[x5u] = task
                task.add_done_callback(lambda _t: self._inflight.pop(x5u, None))
            else:
                self.stats["joined"] += 1
            entry = await asyncio.shield(task)
        else:
            self.stats["negative_hits" if entry.failure else "hits"] += 1
            hit = entry.hit
            if (
                hit is not None
                and entry.crl_generation == self._crls.generation
                and now - entry.crl_checked < _CRL_RECHECK
                and entry.chain is not None
                and entry.chain.not_before <= at <= entry.chain.not_after
            ):
                return hit  # unchanged entry, valid at ``at``: the prebuilt answer
        return await self._answer(x5u, entry, at, cached)

    def invalidate(self, x5u: str) -> None:
        """Forget ``x5u`` (memory and store)."""
        self._entries.pop(x5u, None)
        if self._store is not None:
            self._store.delete_behind(x5u)

    async def flush(self) -> None:
        """Wait for background CRL refreshes and write-behind cache writes (tests, shutdown)."""
        await self._crls.settle()
        if self._store is not None:
            await self._store.flush()

    async def close(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._crls.close()
        await self._fetcher.close()
        if self._store is not None:
            await self._store.close()

    # --- loading ---------------------------------------------------------------------

    def _remember(self, x5u: str, entry: _Entry) -> _Entry:
        if len(self._entries) >= _MAX_ENTRIES and x5u not in self._entries:
            now = self._clock()
            for k in [k for k, e in self._entries.items() if e.expires <= now]:
                del self._entries[k]
            while len(self._entries) >= _MAX_ENTRIES:
                del self._entries[next(iter(self._entries))]
        self._entries[x5u] = entry
        return entry

    def _negative(
        self, x5u: str, failure: CertFailure, received: Sequence[x509.Certificate] = ()
    ) -> _Entry:
        entry = _Entry(
            self._clock() + self._cfg.cert_negative_ttl, failure=failure, received=tuple(received)
        )
        return self._remember(x5u, entry)

    def _validate(self, certs: Sequence[x509.Certificate], at: float) -> ValidChain | CertFailure:
        """Validate at ``at``; when only time is wrong, validate at a time inside every
        certificate's validity so the *chain* can be cached — each call then gets its own
        time verdict from ``ValidChain.check_time``."""
        valid = validate(certs, self._anchors, at)
        if isinstance(valid, CertFailure) and valid.reason in _TIME_REASONS:
            lo = max(c.not_valid_before_utc.timestamp() for c in certs)
            hi = min(c.not_valid_after_utc.timestamp() for c in certs)
            if lo <= hi:
                retry = validate(certs, self._anchors, min(max(at, lo), hi))
                if isinstance(retry, ValidChain) and retry.check_time(at) is not None:
                    return retry
        return valid

    def _stale_if_error(self, previous: _Entry | None) -> _Entry | None:
        """RFC 5861 stale-if-error: when a refresh cannot be fetched, a chain that was
        validated before and whose certificates are all still valid keeps serving for
        another ``cert_negative_ttl`` rather than failing every call while the CR is down —
        for at most ``cert_cache_ttl`` in all."""
        now = self._clock()
        if previous is None or previous.chain is None or previous.chain.not_after <= now:
            return None
        since = previous.stale_since if previous.stale_since is not None else now
        if now - since > self._cfg.cert_cache_ttl:
            return None
        self.stats["stale_served"] += 1
        return _Entry(
            min(now + self._cfg.cert_negative_ttl, previous.chain.not_after),
            chain=previous.chain,
            crl_generation=-1,
            crl_notes=previous.crl_notes,
            source="stale",
            stale_since=since,
        )

    async def _from_store(self, x5u: str, at: float) -> _Entry | None:
        if self._store is None:
            return None
        now = self._clock()
        if now - self._last_purge >= _PURGE_EVERY:
            self._last_purge = now
            self._store.purge_behind(now)
        row = await self._store.get(x5u)
        if row is None or row.expires_at <= self._clock():
            return None
        certs = parse_pem_chain(row.body, self._cfg.cert_max_chain)
        valid = None if isinstance(certs, CertFailure) else self._validate(certs, at)
        if not isinstance(valid, ValidChain):
            self._store.delete_behind(x5u)
            return None
        self.stats["store_hits"] += 1
        return _Entry(min(row.expires_at, valid.not_after), chain=valid, source="store")

    async def _load(self, x5u: str, at: float, previous: _Entry | None) -> _Entry:
        try:
            return await self._load_checked(x5u, at, previous)
        except Exception as exc:  # a bug must cost one call's verification, not the proxy
            log.exception("certificate lookup for %s failed unexpectedly", x5u)
            return self._negative(
                x5u, CertFailure(CertReason.CERT_MALFORMED, f"internal error: {exc!r}"[:300])
            )

    async def _load_checked(self, x5u: str, at: float, previous: _Entry | None) -> _Entry:
        checked = self._fetcher.check(x5u)  # bad URLs never touch the store or network
        if isinstance(checked, CertFailure):
            return self._negative(x5u, checked)
        entry = await self._from_store(x5u, at)
        if entry is None:
            self.stats["fetches"] += 1
            got = await self._fetcher.fetch(x5u, self._cfg.x5u_max_bytes)
            if isinstance(got, CertFailure):
                stale = self._stale_if_error(previous)
                return self._remember(x5u, stale) if stale else self._negative(x5u, got)
            certs = parse_pem_chain(got.body, self._cfg.cert_max_chain)
            if isinstance(certs, CertFailure):
                return self._negative(x5u, certs)
            valid = self._validate(certs, at)
            if isinstance(valid, CertFailure):
                return self._negative(x5u, valid, certs)
            now = self._clock()
            ttl = self._cfg.cert_cache_ttl if got.max_age is None else got.max_age
            ttl = min(ttl, self._cfg.cert_cache_max_ttl)
            expires = min(now + ttl, valid.not_after)
            if self._store is not None and expires > now:
                self._store.put_behind(StoredChain(x5u, got.body, now, expires))
            if expires <= now:  # no-store, or a chain already expired: keep briefly
                expires = now + min(self._cfg.cert_negative_ttl, max(ttl, 1.0))
            entry = _Entry(expires, chain=valid)
        assert entry.chain is not None
        entry.crl_notes = await self._crls.prepare(entry.chain.path)
        entry.crl_checked = self._clock()
        return self._remember(x5u, entry)

    # --- answering -------------------------------------------------------------------

    async def _answer(self, x5u: str, entry: _Entry, at: float, cached: bool) -> CertResult:
        details: dict[str, Any] = {"cached": cached}
        if entry.source == "stale":
            details["stale"] = True  # served past its freshness: the CR failed on refresh
        if entry.failure is not None:
            leaf = entry.received[0] if entry.received else None
            return CertResult.failure(
                entry.failure.reason,
                entry.failure.detail,
                x5u=x5u,
                details=details,
                leaf=leaf,
                fingerprint_sha256=leaf.fingerprint(hashes.SHA256()).hex() if leaf else None,
                issuer=leaf.issuer.rfc4514_string() if leaf else None,
                chain=entry.received,
            )
        chain = entry.chain
        assert chain is not None
        if cached and self._clock() - entry.crl_checked >= _CRL_RECHECK:
            entry.crl_checked = self._clock()
            notes = await self._crls.prepare(chain.path)
            if notes != entry.crl_notes:
                entry.crl_notes = notes
                entry.crl_generation = -1  # re-judge revocation with the new notes
        if entry.crl_generation != self._crls.generation:
            entry.revoked = self._crls.check(chain.path, entry.crl_notes)
            entry.crl_generation = self._crls.generation
            entry.hit = None
        if chain.lints:
            details["lints"] = list(chain.lints)
        if entry.crl_notes:
            details["crl_unavailable"] = dict(entry.crl_notes)
        failure = chain.check_time(at) or entry.revoked
        fields: dict[str, Any] = {
            "x5u": x5u,
            "leaf": chain.leaf,
            "public_key": chain.public_key,
            "spc": chain.spc,
            "tnauth": chain.tnauth,
            "fingerprint_sha256": chain.fingerprint_sha256,
            "issuer": chain.leaf.issuer.rfc4514_string(),
            "chain": chain.path,
        }
        if failure is not None:  # no public_key: a failed credential must not verify anything
            fields.pop("public_key")
            return CertResult.failure(failure.reason, failure.detail, details=details, **fields)
        result = CertResult(ok=True, details=details, **fields)
        if cached:
            entry.hit = result
        return result
