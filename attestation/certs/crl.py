"""Revocation from CRLs: configured files and fetched distribution points (rule 21).

Theory of operation. Each CRL is reduced at load time to a set of ``(issuer DN, serial)``
pairs, so checking a path on the call path is a handful of set look-ups. The issuer of
each entry follows RFC 5280 §5.3.3: the CRL issuer, unless an entry (or an earlier entry)
carries a certificateIssuer extension — this is how an *indirect* CRL, such as the STI-PA
publishes, revokes certificates issued by many STI-CAs.

A CRL counts only when its signature checks out against an authority for the certificate
it revokes: a trust anchor (direct or indirect CRLs signed by the STI-PA/STI-CA roots), or
the certificate's own issuer from the validated path (a direct CRL from the issuing CA).
Signature results are memoised per (CRL, issuer key).

CRLs named in certificates' CRL distribution points are fetched with the same guarded
fetcher as x5u (https only, address guard, size cap, timeout), once per URL at a time,
kept for ``crl_refresh`` seconds and then refreshed in the background while the old copy
keeps serving. Files are re-read when their mtime changes. ``generation`` changes with
every CRL change so cached chains know to re-check revocation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from .fetch import Fetcher
from .result import CertFailure, CertReason

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LoadedCrl:
    source: str
    crl: x509.CertificateRevocationList
    entries: frozenset[tuple[bytes, int]]
    """(DER of the revoked certificate's issuer name, serial number)."""
    anchor_signed: bool
    next_update: float | None
    loaded_at: float


def load_crl(
    data: bytes, source: str, anchors: Sequence[x509.Certificate], now: float
) -> LoadedCrl | str:
    """Parse a PEM or DER CRL; a string says why it is unusable."""
    try:
        if b"-----BEGIN X509 CRL-----" in data:
            crl = x509.load_pem_x509_crl(data)
        else:
            crl = x509.load_der_x509_crl(data)
    except Exception as exc:  # ValueError and friends: the bytes are untrusted input
        return f"{source}: not a CRL ({type(exc).__name__}: {exc})"[:300]
    try:
        entries: set[tuple[bytes, int]] = set()
        current = crl.issuer
        for rc in crl:
            try:
                ci = rc.extensions.get_extension_for_class(x509.CertificateIssuer).value
                names = [n.value for n in ci if isinstance(n, x509.DirectoryName)]
                if names:
                    current = names[0]
            except x509.ExtensionNotFound:
                pass
            entries.add((current.public_bytes(), rc.serial_number))
        anchor_signed = any(
            a.subject == crl.issuer and crl.is_signature_valid(a.public_key())  # type: ignore[arg-type]
            for a in anchors
        )
        nu = crl.next_update_utc
    except Exception as exc:
        return f"{source}: malformed CRL ({type(exc).__name__}: {exc})"[:300]
    return LoadedCrl(
        source, crl, frozenset(entries), anchor_signed, nu.timestamp() if nu else None, now
    )


def accepted_signers(
    signers: Sequence[x509.Certificate], anchors: Sequence[x509.Certificate], now: float
) -> list[x509.Certificate]:
    """The configured CRL signers that are valid now, carry keyUsage cRLSign and were
    issued directly by a trust anchor; a signer failing any of that is a ValueError."""
    out: list[x509.Certificate] = []
    for s in signers:
        name = s.subject.rfc4514_string()
        try:
            ku = s.extensions.get_extension_for_class(x509.KeyUsage).value
            if not ku.crl_sign:
                raise ValueError("keyUsage lacks cRLSign")
        except x509.ExtensionNotFound:
            raise ValueError(f"CRL signer {name}: no keyUsage cRLSign") from None
        except ValueError as exc:
            raise ValueError(f"CRL signer {name}: {exc}") from None
        if not s.not_valid_before_utc.timestamp() <= now <= s.not_valid_after_utc.timestamp():
            raise ValueError(f"CRL signer {name} is not valid now")
        ok = False
        for a in anchors:
            if a.subject == s.issuer:
                try:
                    s.verify_directly_issued_by(a)
                    ok = True
                except Exception:  # InvalidSignature, ValueError, TypeError
                    continue
        if not ok:
            raise ValueError(f"CRL signer {name} is not issued by a trust anchor")
        out.append(s)
    return out


def distribution_points(cert: x509.Certificate) -> list[str]:
    try:
        dps = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    urls: list[str] = []
    for dp in dps:
        for gn in dp.full_name or ():
            if isinstance(gn, x509.UniformResourceIdentifier):
                urls.append(gn.value)
    return urls


class CrlStore:
    """All CRLs in force, and the revocation check over a validated path."""

    def __init__(
        self,
        anchors: Sequence[x509.Certificate],
        fetcher: Fetcher,
        *,
        files: Sequence[Path] = (),
        signers: Sequence[x509.Certificate] = (),
        fetch_dps: bool = True,
        refresh: float = 3600.0,
        max_bytes: int = 1 << 20,
        fail_closed: bool = False,
        clock: Callable[[], float],
    ) -> None:
        self._clock = clock
        # CRLs count when signed by an anchor or by a CRL-signing certificate that an anchor
        # issued directly (the STI-PA CRL signer under the STI-PA root); checked once here.
        self._anchors = list(anchors) + accepted_signers(signers, anchors, clock())
        self._fetcher = fetcher
        self._files = list(files)
        self._fetch_dps = fetch_dps
        self._refresh = refresh
        self._max_bytes = max_bytes
        self._fail_closed = fail_closed
        self._crls: dict[str, LoadedCrl] = {}
        self._mtimes: dict[str, float] = {}
        self._failed: dict[str, tuple[float, str]] = {}
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._sig_memo: dict[tuple[str, bytes], bool] = {}
        self._files_checked = 0.0
        self.generation = 0
        for f in self._files:
            self._load_file(f)

    def _put(self, loaded: LoadedCrl) -> None:
        self._crls[loaded.source] = loaded
        self._sig_memo = {k: v for k, v in self._sig_memo.items() if k[0] != loaded.source}
        self.generation += 1

    def _load_file(self, path: Path) -> None:
        """Synchronous: used at construction and from a worker thread on refresh."""
        try:
            mtime = path.stat().st_mtime
            if self._mtimes.get(str(path)) == mtime:
                return
            loaded = load_crl(path.read_bytes(), str(path), self._anchors, self._clock())
        except OSError as exc:
            raise ValueError(f"CRL file {path}: {exc.strerror or exc}") from None
        if isinstance(loaded, str):
            raise ValueError(loaded)
        self._mtimes[str(path)] = mtime
        self._put(loaded)

    async def _reload_files(self) -> None:
        for f in self._files:
            try:
                await asyncio.to_thread(self._load_file, f)
            except ValueError as exc:  # keep the previous copy; say so
                log.warning("CRL reload failed: %s", exc)

    async def _fetch(self, url: str) -> None:
        got = await self._fetcher.fetch(url, self._max_bytes)
        now = self._clock()
        if isinstance(got, CertFailure):
            self._failed[url] = (now, f"{got.reason.value}: {got.detail}")
            return
        loaded = load_crl(got.body, url, self._anchors, now)
        if isinstance(loaded, str):
            self._failed[url] = (now, loaded)
            return
        self._failed.pop(url, None)
        self._put(loaded)

    def _start_fetch(self, url: str) -> asyncio.Task[None]:
        task = self._inflight.get(url)
        if task is None:
            task = asyncio.ensure_future(self._fetch(url))
            self._inflight[url] = task
            task.add_done_callback(lambda _t: self._inflight.pop(url, None))
        return task

    async def prepare(self, path: Sequence[x509.Certificate]) -> dict[str, str]:
        """Make sure the CRLs ``path`` names are present (fetch the missing ones, refresh
        stale ones in the background). Returns notes about CRLs that could not be had."""
        now = self._clock()
        if self._files and now - self._files_checked >= self._refresh:
            self._files_checked = now
            self._background(self._reload_files())
        notes: dict[str, str] = {}
        if not self._fetch_dps:
            return notes
        waits: list[tuple[str, asyncio.Task[None]]] = []
        for cert in path[:-1]:
            for url in distribution_points(cert):
                have = self._crls.get(url)
                failed = self._failed.get(url)
                if have is not None:
                    stale = now - have.loaded_at >= self._refresh or (
                        have.next_update is not None and now > have.next_update
                    )
                    if stale and (failed is None or now - failed[0] >= 60):
                        self._start_fetch(url)  # serve the old copy meanwhile
                elif failed is not None and now - failed[0] < min(60.0, self._refresh):
                    notes[url] = failed[1]
                else:
                    waits.append((url, self._start_fetch(url)))
        for url, task in waits:
            with contextlib.suppress(Exception):
                await asyncio.shield(task)
            if url not in self._crls:
                notes[url] = self._failed.get(url, (0.0, "unavailable"))[1]
        return notes

    def _background(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._inflight[f"bg:{id(task)}"] = task
        task.add_done_callback(lambda t: self._inflight.pop(f"bg:{id(t)}", None))

    def _authoritative(self, crl: LoadedCrl, issuer: x509.Certificate) -> bool:
        if crl.anchor_signed:
            return True
        if crl.crl.issuer != issuer.subject:
            return False
        key = (crl.source, issuer.fingerprint(hashes.SHA256()))
        ok = self._sig_memo.get(key)
        if ok is None:
            try:
                ok = crl.crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
            except (ValueError, TypeError):
                ok = False
            self._sig_memo[key] = ok
        return ok

    def check(
        self, path: Sequence[x509.Certificate], notes: dict[str, str] | None = None
    ) -> CertFailure | None:
        """``cert_revoked`` if an authoritative CRL lists a certificate of ``path``;
        ``cert_crl_unavailable`` when failing closed and a CRL could not be had."""
        for i, cert in enumerate(path[:-1]):
            key = (cert.issuer.public_bytes(), cert.serial_number)
            for crl in self._crls.values():
                if key in crl.entries and self._authoritative(crl, path[i + 1]):
                    return CertFailure(
                        CertReason.CERT_REVOKED,
                        f"serial {cert.serial_number:x} of {cert.subject.rfc4514_string()} "
                        f"revoked by {crl.source}",
                    )
        if notes and self._fail_closed:
            url, why = next(iter(notes.items()))
            return CertFailure(CertReason.CERT_CRL_UNAVAILABLE, f"{url}: {why}")
        return None

    async def settle(self) -> None:
        """Wait for fetches and background refreshes in progress (tests, shutdown)."""
        while self._inflight:
            await asyncio.gather(*list(self._inflight.values()), return_exceptions=True)

    async def close(self) -> None:
        tasks = list(self._inflight.values())
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
