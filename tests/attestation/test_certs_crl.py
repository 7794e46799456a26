"""Rule 21: revocation from CRL files, CRL distribution points and indirect (STI-PA) CRLs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from attestation import pki
from attestation.certs import CertificateService, CertReason
from attestation.certs.crl import load_crl
from attestation.certs.server import Route

from .conftest import StiPki


async def _get(
    sti_pki: StiPki, variant: str, **cfg: object
) -> tuple[str | None, dict[str, object]]:
    s = CertificateService(sti_pki.config(**cfg))
    try:
        r = await s.get(sti_pki.x5u(variant), sti_pki.now)
        return r.reason, r.details
    finally:
        await s.close()


async def test_revoked_by_crl_file(sti_pki: StiPki) -> None:
    reason, details = await _get(sti_pki, "revoked", crl_files=(sti_pki.revoked_crl,))
    assert reason == CertReason.CERT_REVOKED.value
    assert "revoked.crl" in str(details["detail"])
    # without the file (and its DP CRL listing nothing) the same certificate passes
    assert (await _get(sti_pki, "revoked"))[0] is None


async def test_revoked_by_distribution_point(sti_pki: StiPki) -> None:
    reason, details = await _get(sti_pki, "revoked_dp")
    assert reason == CertReason.CERT_REVOKED.value
    assert "revoked-dp.crl" in str(details["detail"])
    # crl_fetch off: the DP is not consulted
    assert (await _get(sti_pki, "revoked_dp", crl_fetch=False))[0] is None


async def test_revoked_by_indirect_crl_from_another_anchor(sti_pki: StiPki) -> None:
    reason, details = await _get(sti_pki, "revoked_indirect")
    assert reason == CertReason.CERT_REVOKED.value
    assert "sti-pa.crl" in str(details["detail"])


async def test_crl_from_an_unrelated_signer_is_ignored(sti_pki: StiPki, tmp_path: Path) -> None:
    rogue = pki.make_root("Rogue", now=sti_pki.now)
    f = tmp_path / "rogue.crl"
    crl = pki.make_crl(rogue, [sti_pki.leaf.cert], now=sti_pki.now, indirect=True)
    f.write_bytes(pki.crl_pem(crl))
    reason, _ = await _get(sti_pki, "good", crl_files=(f,))
    assert reason is None


async def test_forged_direct_crl_is_ignored(sti_pki: StiPki, tmp_path: Path) -> None:
    # same issuer *name* as the intermediate, signed with another key
    fake = pki.Issued(sti_pki.intermediate.cert, pki.new_key())
    f = tmp_path / "forged.crl"
    f.write_bytes(pki.crl_pem(pki.make_crl(fake, [sti_pki.leaf.cert], now=sti_pki.now)))
    assert (await _get(sti_pki, "good", crl_files=(f,)))[0] is None


async def test_unreachable_distribution_point(sti_pki: StiPki) -> None:
    leaf = pki.make_leaf(
        sti_pki.intermediate, now=sti_pki.now, crl_url=sti_pki.server.url("/no-such.crl")
    )
    url = sti_pki.serve(pki.pem_chain(leaf.cert, sti_pki.intermediate.cert))
    s = CertificateService(sti_pki.config())
    try:
        r = await s.get(url, sti_pki.now)
        assert r.ok and "no-such.crl" in str(r.details["crl_unavailable"])
    finally:
        await s.close()
    s = CertificateService(sti_pki.config(crl_fail_closed=True))
    try:
        r = await s.get(url, sti_pki.now)
        assert r.reason == CertReason.CERT_CRL_UNAVAILABLE.value and r.sip_code == 437
    finally:
        await s.close()


async def test_dp_crl_fetched_once_and_revocation_seen_after_refresh(sti_pki: StiPki) -> None:
    crl_path = "/refresh.crl"
    crl_url = sti_pki.server.set_route(crl_path, crl_route(sti_pki.intermediate, []))
    leaf = pki.make_leaf(sti_pki.intermediate, now=sti_pki.now, crl_url=crl_url)
    url = sti_pki.serve(pki.pem_chain(leaf.cert, sti_pki.intermediate.cert))
    clock = [sti_pki.now]
    s = CertificateService(sti_pki.config(crl_refresh=600.0), clock=lambda: clock[0])
    try:
        assert (await s.get(url, sti_pki.now)).ok
        assert (await s.get(url, sti_pki.now)).ok
        assert sti_pki.hits(crl_url) == 1
        # the CA revokes the leaf; past crl_refresh a verification starts a background
        # refresh (answering from the old CRL meanwhile); once it lands, the cached chain
        # is revoked without refetching the chain
        sti_pki.server.set_route(crl_path, crl_route(sti_pki.intermediate, [leaf.cert]))
        clock[0] += 601
        assert (await s.get(url, sti_pki.now)).ok
        await s.flush()
        r = await s.get(url, sti_pki.now)
        assert r.reason == CertReason.CERT_REVOKED.value, r.details
        assert sti_pki.hits(crl_url) == 2 and sti_pki.hits(url) == 1
    finally:
        await s.close()


def crl_route(issuer: pki.Issued, revoked: list[x509.Certificate]) -> Route:
    return Route(pki.crl_pem(pki.make_crl(issuer, revoked, now=time.time())))


def test_load_crl_rejects_garbage(sti_pki: StiPki) -> None:
    assert isinstance(load_crl(b"nope", "x", [], 0), str)
    der = pki.make_crl(sti_pki.intermediate, (), now=sti_pki.now).public_bytes(Encoding.DER)
    loaded = load_crl(der, "der", [sti_pki.root.cert], sti_pki.now)
    assert not isinstance(loaded, str) and not loaded.anchor_signed


def test_bad_crl_file_is_a_startup_error(sti_pki: StiPki, tmp_path: Path) -> None:
    f = tmp_path / "bad.crl"
    f.write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"bad\.crl"):
        CertificateService(sti_pki.config(crl_files=(f,)))
    with pytest.raises(ValueError, match=r"missing\.crl"):
        CertificateService(sti_pki.config(crl_files=(tmp_path / "missing.crl",)))
    with pytest.raises(ValueError, match="trust anchor file"):
        CertificateService(sti_pki.config(trust_anchors=(f,)))


def test_mutated_crls_never_raise(sti_pki: StiPki) -> None:
    import random

    rnd = random.Random(5280)
    crl = pki.make_crl(sti_pki.intermediate, [sti_pki.leaf.cert], now=sti_pki.now, indirect=True)
    der = crl.public_bytes(Encoding.DER)
    for _ in range(300):
        d = bytearray(der)
        for _ in range(rnd.randint(1, 3)):
            d[rnd.randrange(len(d))] = rnd.randrange(256)
        load_crl(bytes(d), "fuzz", [sti_pki.root.cert, sti_pki.sti_pa.cert], sti_pki.now)


async def test_indirect_crl_signed_by_a_configured_crl_signer(
    sti_pki: StiPki, tmp_path: Path
) -> None:
    # the STI-PA shape: root (a trust anchor) -> CRL signer -> indirect CRL
    signer = pki.make_crl_signer(sti_pki.sti_pa, now=sti_pki.now)
    crl = pki.make_crl(signer, [sti_pki.leaf.cert], now=sti_pki.now, indirect=True)
    crl_file = tmp_path / "sti-pa-signed.crl"
    crl_file.write_bytes(pki.crl_pem(crl))
    signer_file = tmp_path / "signer.pem"
    signer_file.write_bytes(signer.cert_pem)
    # without the signer configured the CRL cannot be authenticated: ignored
    assert (await _get(sti_pki, "good", crl_files=(crl_file,), crl_fetch=False))[0] is None
    reason, _ = await _get(
        sti_pki, "good", crl_files=(crl_file,), crl_signers=(signer_file,), crl_fetch=False
    )
    assert reason == CertReason.CERT_REVOKED.value


def test_crl_signer_must_be_issued_by_an_anchor(sti_pki: StiPki, tmp_path: Path) -> None:
    rogue = pki.make_crl_signer(pki.make_root("Rogue", now=sti_pki.now), now=sti_pki.now)
    f = tmp_path / "rogue-signer.pem"
    f.write_bytes(rogue.cert_pem)
    with pytest.raises(ValueError, match="not issued by a trust anchor"):
        CertificateService(sti_pki.config(crl_signers=(f,)))
    not_signer = tmp_path / "leaf.pem"
    not_signer.write_bytes(sti_pki.leaf.cert_pem)
    with pytest.raises(ValueError, match="cRLSign"):
        CertificateService(sti_pki.config(crl_signers=(not_signer,)))


@pytest.mark.parametrize(
    ("dp", "why"),
    [
        ("http://127.0.0.1/ca.crl", "x5u_bad_url"),
        ("https://10.0.0.1/ca.crl", "x5u_forbidden_address"),
        ("https://169.254.169.254/latest/meta-data", "x5u_forbidden_address"),
    ],
)
async def test_distribution_points_obey_the_fetch_rules(sti_pki: StiPki, dp: str, why: str) -> None:
    leaf = pki.make_leaf(sti_pki.intermediate, now=sti_pki.now, crl_url=dp)
    url = sti_pki.serve(pki.pem_chain(leaf.cert, sti_pki.intermediate.cert))
    s = CertificateService(sti_pki.config())
    try:
        r = await s.get(url, sti_pki.now)
        assert r.ok and why in r.details["crl_unavailable"][dp]
        assert s.fetcher.requests == 1  # the chain only: the DP was never contacted
    finally:
        await s.close()
