"""Rule 19 and the call-path guarantees: cache hits, single flight, negative caching,
HTTP caching headers, notAfter bound, persistence across instances, concurrency cap."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sqlite3
import time
from pathlib import Path

from attestation import pki
from attestation.certs import CertificateService, CertReason
from attestation.certs.server import Route

from .conftest import StiPki, path_of


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


async def test_cache_hit_does_not_refetch(sti_pki: StiPki) -> None:
    url = sti_pki.serve(sti_pki.chain_pem)
    s = CertificateService(sti_pki.config(crl_fetch=False))
    try:
        first = await s.get(url, sti_pki.now)
        for _ in range(20):
            r = await s.get(url, sti_pki.now)
            assert r.ok and r.details["cached"] is True
        assert first.ok and first.details["cached"] is False
        assert sti_pki.hits(url) == 1 and s.stats["hits"] == 20
    finally:
        await s.close()


async def test_single_flight(sti_pki: StiPki) -> None:
    url = sti_pki.serve(sti_pki.chain_pem, delay=0.1)
    s = CertificateService(sti_pki.config(crl_fetch=False))
    try:
        results = await asyncio.gather(*(s.get(url, sti_pki.now) for _ in range(50)))
        assert all(r.ok for r in results)
        assert sti_pki.hits(url) == 1
        assert s.stats["misses"] == 1 and s.stats["joined"] == 49
    finally:
        await s.close()


async def test_single_flight_for_failures_and_negative_cache(sti_pki: StiPki) -> None:
    url = sti_pki.serve(b"not found", status=404, delay=0.05)
    clock = Clock(sti_pki.now)
    s = CertificateService(sti_pki.config(cert_negative_ttl=30.0), clock=clock)
    try:
        results = await asyncio.gather(*(s.get(url, sti_pki.now) for _ in range(20)))
        assert {r.reason for r in results} == {CertReason.X5U_FETCH_FAILED.value}
        assert sti_pki.hits(url) == 1
        clock.t += 29
        again = await s.get(url, sti_pki.now)
        assert again.reason == CertReason.X5U_FETCH_FAILED.value and again.details["cached"]
        assert sti_pki.hits(url) == 1 and s.stats["negative_hits"] == 1
        clock.t += 2
        await s.get(url, sti_pki.now)
        assert sti_pki.hits(url) == 2
    finally:
        await s.close()


async def _fetches_after(sti_pki: StiPki, url: str, advance: float, **cfg: object) -> int:
    clock = Clock(time.time())
    s = CertificateService(sti_pki.config(crl_fetch=False, **cfg), clock=clock)
    try:
        assert (await s.get(url, sti_pki.now)).ok
        clock.t += advance
        assert (await s.get(url, sti_pki.now)).ok
        return s.stats["fetches"]
    finally:
        await s.close()


async def test_default_ttl_is_24_hours(sti_pki: StiPki) -> None:
    url = sti_pki.serve(sti_pki.chain_pem)
    assert await _fetches_after(sti_pki, url, 86400 - 5) == 1
    assert await _fetches_after(sti_pki, url, 86400 + 5) == 2


async def test_cache_control_max_age(sti_pki: StiPki) -> None:
    url = sti_pki.serve(sti_pki.chain_pem, headers={"Cache-Control": "max-age=60"})
    assert await _fetches_after(sti_pki, url, 59) == 1
    assert await _fetches_after(sti_pki, url, 61) == 2


async def test_expires_header(sti_pki: StiPki) -> None:
    from email.utils import format_datetime

    exp = format_datetime(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=120), usegmt=True)
    url = sti_pki.serve(sti_pki.chain_pem, headers={"Expires": exp})
    assert await _fetches_after(sti_pki, url, 100) == 1
    assert await _fetches_after(sti_pki, url, 200) == 2


async def test_no_store_is_refetched(sti_pki: StiPki) -> None:
    url = sti_pki.serve(sti_pki.chain_pem, headers={"Cache-Control": "no-store"})
    assert await _fetches_after(sti_pki, url, 2) == 2


async def test_max_age_capped_and_never_past_not_after(sti_pki: StiPki) -> None:
    now = time.time()
    short = pki.make_leaf(
        sti_pki.intermediate, now=now, not_after=pki.utc(now + 3600), crl_url=None
    )
    body = pki.pem_chain(short.cert, sti_pki.intermediate.cert)
    url = sti_pki.serve(body, headers={"Cache-Control": "max-age=999999999"})
    assert await _fetches_after(sti_pki, url, 3000) == 1
    clock = Clock(now)
    s = CertificateService(sti_pki.config(crl_fetch=False), clock=clock)
    try:
        assert (await s.get(url, now)).ok
        clock.t = now + 3700  # past the leaf's notAfter: the entry is gone, refetch
        r = await s.get(url, now + 3700)
        assert r.reason == CertReason.CERT_EXPIRED.value
        assert s.stats["fetches"] == 2
    finally:
        await s.close()
    url2 = sti_pki.serve(sti_pki.chain_pem, headers={"Cache-Control": "max-age=999999999"})
    assert await _fetches_after(sti_pki, url2, 8 * 86400, cert_cache_max_ttl=7 * 86400) == 2


async def test_persistence_across_instances(sti_pki: StiPki, tmp_path: Path) -> None:
    db = tmp_path / "cache" / "x5u.sqlite"
    url = sti_pki.serve(sti_pki.chain_pem)
    s1 = CertificateService(sti_pki.config(cert_cache_file=db, crl_fetch=False))
    assert (await s1.get(url, sti_pki.now)).ok
    await s1.close()
    rows = sqlite3.connect(db).execute("SELECT url, expires_at FROM x5u_cache").fetchall()
    assert [r[0] for r in rows] == [url]

    s2 = CertificateService(sti_pki.config(cert_cache_file=db, crl_fetch=False))
    try:
        r = await asyncio.gather(*(s2.get(url, sti_pki.now) for _ in range(10)))
        assert all(x.ok and x.spc == "1234" for x in r)
        assert sti_pki.hits(url) == 1
        assert s2.stats["store_hits"] == 1 and s2.stats["fetches"] == 0
    finally:
        await s2.close()

    # an expired row is not used
    clock = Clock(time.time() + 2 * 86400)
    s3 = CertificateService(sti_pki.config(cert_cache_file=db, crl_fetch=False), clock=clock)
    try:
        assert (await s3.get(url, sti_pki.now)).ok
        assert sti_pki.hits(url) == 2 and s3.stats["store_hits"] == 0
    finally:
        await s3.close()


async def test_stored_chain_is_revalidated_against_current_anchors(
    sti_pki: StiPki, tmp_path: Path
) -> None:
    db = tmp_path / "x5u.sqlite"
    url = sti_pki.serve(sti_pki.chain_pem)
    s1 = CertificateService(sti_pki.config(cert_cache_file=db, crl_fetch=False))
    assert (await s1.get(url, sti_pki.now)).ok
    await s1.close()
    other = tmp_path / "other-anchor.pem"
    other.write_bytes(pki.make_root("Other", now=sti_pki.now).cert_pem)
    s2 = CertificateService(
        sti_pki.config(cert_cache_file=db, crl_fetch=False, trust_anchors=(other,))
    )
    try:
        r = await s2.get(url, sti_pki.now)
        assert r.reason == CertReason.CERT_UNTRUSTED.value
        assert s2.stats["store_hits"] == 0
    finally:
        await s2.close()


async def test_corrupt_cache_file_costs_a_fetch_not_a_call(sti_pki: StiPki, tmp_path: Path) -> None:
    db = tmp_path / "x5u.sqlite"
    db.write_bytes(b"this is not a database" * 100)
    s = CertificateService(sti_pki.config(cert_cache_file=db, crl_fetch=False))
    try:
        assert (await s.get(sti_pki.serve(sti_pki.chain_pem), sti_pki.now)).ok
    finally:
        await s.close()


async def test_a_hanging_repository_cannot_stall_the_call_path(sti_pki: StiPki) -> None:
    s = CertificateService(sti_pki.config(x5u_timeout=0.3, x5u_max_concurrent=2, crl_fetch=False))
    try:
        hanging = [sti_pki.serve(hang=True) for _ in range(8)]
        good = sti_pki.serve(sti_pki.chain_pem)
        t0 = time.monotonic()
        results = await asyncio.gather(
            *(s.get(u, sti_pki.now) for u in hanging), s.get(good, sti_pki.now)
        )
        elapsed = time.monotonic() - t0
        assert {r.reason for r in results[:-1]} == {CertReason.X5U_TIMEOUT.value}
        assert elapsed < 1.5, elapsed  # every call bounded by x5u_timeout (0.3 s), cap or not
        # failures are remembered: the next calls for the same URLs cost nothing
        t0 = time.monotonic()
        again = await asyncio.gather(*(s.get(u, sti_pki.now) for u in hanging))
        assert time.monotonic() - t0 < 0.2
        assert all(r.details["cached"] for r in again)
    finally:
        await s.close()


async def test_stale_if_error_keeps_a_validated_chain_while_the_cr_is_down(
    sti_pki: StiPki,
) -> None:
    url = sti_pki.serve(sti_pki.chain_pem, headers={"Cache-Control": "max-age=60"})
    clock = Clock(time.time())
    cfg = sti_pki.config(crl_fetch=False, cert_negative_ttl=30.0, cert_cache_ttl=3600.0)
    s = CertificateService(cfg, clock=clock)
    try:
        assert (await s.get(url, sti_pki.now)).ok
        sti_pki.server.set_route(path_of(url), Route(b"down", status=503))
        clock.t += 61
        r = await s.get(url, sti_pki.now)
        assert r.ok and r.details["stale"] is True and s.stats["stale_served"] == 1
        clock.t += 31  # next refresh attempt also fails: still served, still bounded
        assert (await s.get(url, sti_pki.now)).ok
        assert sti_pki.hits(url) == 3
        clock.t += 3600  # past cert_cache_ttl of staleness: the failure shows
        r = await s.get(url, sti_pki.now)
        assert r.reason == CertReason.X5U_FETCH_FAILED.value
    finally:
        await s.close()


async def test_expired_rows_are_purged(sti_pki: StiPki, tmp_path: Path) -> None:
    db = tmp_path / "x5u.sqlite"
    clock = Clock(time.time())
    cfg = sti_pki.config(cert_cache_file=db, crl_fetch=False)
    s = CertificateService(cfg, clock=clock)
    try:
        url = sti_pki.serve(sti_pki.chain_pem, headers={"Cache-Control": "max-age=10"})
        assert (await s.get(url, sti_pki.now)).ok
        await s.flush()
        clock.t += 7200
        await s.get(sti_pki.serve(sti_pki.chain_pem), sti_pki.now)
        await s.flush()
        urls = [r[0] for r in sqlite3.connect(db).execute("SELECT url FROM x5u_cache")]
        assert url not in urls and len(urls) == 1
    finally:
        await s.close()


async def test_one_hanging_repository_does_not_starve_another(sti_pki: StiPki) -> None:
    # 8 hanging URLs on 127.0.0.1 against a cap of 4 (1 per host): a chain on another host
    # name (localhost, allow-listed, same server) is still fetched at once
    s = CertificateService(
        sti_pki.config(
            x5u_timeout=0.5,
            x5u_max_concurrent=4,
            crl_fetch=False,
            x5u_allow_hosts=("127.0.0.1", "localhost"),
        )
    )
    try:
        hanging = [sti_pki.serve(hang=True) for _ in range(8)]
        good = sti_pki.serve(sti_pki.chain_pem).replace("127.0.0.1", "localhost")
        results = await asyncio.gather(
            *(s.get(u, sti_pki.now) for u in hanging), s.get(good, sti_pki.now)
        )
        assert results[-1].ok, results[-1].details
        assert {r.reason for r in results[:-1]} == {CertReason.X5U_TIMEOUT.value}
    finally:
        await s.close()


async def test_warm_hits_share_one_result_but_still_judge_time_and_crls(
    sti_pki: StiPki, tmp_path: Path
) -> None:
    # the warm path hands back a prebuilt result; what can change between hits must not
    # be hidden by it: the verification time ``at`` and a CRL that starts revoking the leaf
    leaf = pki.make_leaf(sti_pki.intermediate, (sti_pki.spc,), now=sti_pki.now, crl_url=None)
    url = sti_pki.serve(pki.pem_chain(leaf.cert, sti_pki.intermediate.cert))
    crl_file = tmp_path / "ca.crl"
    crl_file.write_bytes(pki.crl_pem(pki.make_crl(sti_pki.intermediate, (), now=sti_pki.now)))
    clock = Clock(sti_pki.now)
    cfg = sti_pki.config(crl_fetch=False, crl_files=(crl_file,), crl_refresh=30.0)
    s = CertificateService(cfg, clock=clock)
    try:
        first = await s.get(url, sti_pki.now)
        warm = await s.get(url, sti_pki.now)
        again = await s.get(url, sti_pki.now + 1)
        assert first.ok and warm.ok and warm is again and first is not warm
        assert again.details["cached"] is True
        late = leaf.cert.not_valid_after_utc.timestamp() + 1
        expired = await s.get(url, late)
        assert expired.reason == CertReason.CERT_EXPIRED.value and expired.public_key is None
        early = await s.get(url, leaf.cert.not_valid_before_utc.timestamp() - 1)
        assert early.reason == CertReason.CERT_NOT_YET_VALID.value
        assert await s.get(url, sti_pki.now) is warm
        # the CA revokes the leaf in the configured CRL file; once the file is re-read the
        # next hit must say so, then keep saying so
        crl_file.write_bytes(
            pki.crl_pem(pki.make_crl(sti_pki.intermediate, [leaf.cert], now=sti_pki.now + 1))
        )
        os.utime(crl_file, (sti_pki.now + 100, sti_pki.now + 100))
        clock.t += 61
        await s.get(url, sti_pki.now)  # starts the background re-read
        await s.flush()
        for _ in range(2):
            r = await s.get(url, sti_pki.now)
            assert r.reason == CertReason.CERT_REVOKED.value and r.public_key is None, r.details
        assert s.stats["fetches"] == 1
    finally:
        await s.close()
