"""Rules 18, 20 and 22-24 through the service: every bad variant of the generated PKI,
fetched over HTTPS from 127.0.0.1, fails with its own reason and 437."""

from __future__ import annotations

import base64
import datetime as dt
import random
from collections.abc import AsyncIterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from attestation import pki
from attestation.certs import CertificateService, CertReason
from attestation.certs.chain import parse_pem_chain, validate
from attestation.certs.result import CertFailure

from .conftest import StiPki


@pytest.fixture
async def svc(sti_pki: StiPki) -> AsyncIterator[CertificateService]:
    s = CertificateService(sti_pki.config(crl_fetch=False))
    yield s
    await s.close()


@pytest.mark.parametrize(
    ("variant", "reason"),
    [
        ("expired", CertReason.CERT_EXPIRED),
        ("not_yet_valid", CertReason.CERT_NOT_YET_VALID),
        ("expired_intermediate", CertReason.CERT_EXPIRED),
        ("untrusted", CertReason.CERT_UNTRUSTED),
        ("impostor_root", CertReason.CERT_UNTRUSTED),
        ("no_tnauthlist", CertReason.CERT_NO_TNAUTHLIST),
        ("two_spcs", CertReason.CERT_MULTIPLE_SPC),
        ("bad_tnauthlist", CertReason.CERT_BAD_TNAUTHLIST),
        ("tn_only", CertReason.CERT_NO_SPC),
        ("p384", CertReason.CERT_BAD_KEY),
        ("wrong_key", CertReason.CERT_BAD_SIGNATURE),
        ("ca_false", CertReason.CERT_NOT_CA),
        ("no_keycertsign", CertReason.CERT_BAD_KEY_USAGE),
        ("leaf_no_digital_signature", CertReason.CERT_BAD_KEY_USAGE),
    ],
)
async def test_bad_variant(
    svc: CertificateService, sti_pki: StiPki, variant: str, reason: CertReason
) -> None:
    r = await svc.get(sti_pki.x5u(variant), sti_pki.now)
    assert not r.ok
    assert r.reason == reason.value, (r.reason, r.details)
    assert r.sip_code == 437 and r.sip_text == "Unsupported Credential"
    assert r.public_key is None
    # the audit log still learns which certificate it was
    assert r.leaf == sti_pki.variants[variant].cert
    assert r.fingerprint_sha256 is not None


async def test_lints_are_logged_not_failed(svc: CertificateService, sti_pki: StiPki) -> None:
    r = await svc.get(sti_pki.x5u("no_policy_cn_mismatch"), sti_pki.now)
    assert r.ok
    lints = " | ".join(r.details["lints"])
    assert "2.16.840.1.114569.1.1.3 absent" in lints
    assert "'SHAKEN 9999' does not read 'SHAKEN 1234'" in lints


async def test_leaf_without_its_intermediate_is_untrusted(
    svc: CertificateService, sti_pki: StiPki
) -> None:
    r = await svc.get(sti_pki.serve(sti_pki.leaf.cert_pem), sti_pki.now)
    assert r.reason == CertReason.CERT_UNTRUSTED.value


async def test_chain_order_and_extra_certs_do_not_matter(
    svc: CertificateService, sti_pki: StiPki
) -> None:
    # rule 18: everything after the leaf is a pool of untrusted intermediates
    other = pki.make_root("Unrelated", now=sti_pki.now)
    body = sti_pki.leaf.cert_pem + other.cert_pem + sti_pki.intermediate.cert_pem
    r = await svc.get(sti_pki.serve(body), sti_pki.now)
    assert r.ok, r.details


async def test_validity_is_judged_at_the_verification_time(
    svc: CertificateService, sti_pki: StiPki
) -> None:
    leaf = sti_pki.leaf.cert
    r = await svc.get(sti_pki.x5u(), leaf.not_valid_after_utc.timestamp() + 1)
    assert r.reason == CertReason.CERT_EXPIRED.value
    # the chain is cached even so, and still judged per verification time
    ok = await svc.get(sti_pki.x5u(), sti_pki.now)
    before = await svc.get(sti_pki.x5u(), leaf.not_valid_before_utc.timestamp() - 1)
    assert ok.ok and ok.details["cached"]
    assert before.reason == CertReason.CERT_NOT_YET_VALID.value
    assert svc.stats["fetches"] == 1


async def test_cached_chain_revalidated_per_time(svc: CertificateService, sti_pki: StiPki) -> None:
    url = sti_pki.serve(sti_pki.chain_pem)
    assert (await svc.get(url, sti_pki.now)).ok
    leaf = sti_pki.leaf.cert
    late = await svc.get(url, leaf.not_valid_after_utc.timestamp() + 10)
    early = await svc.get(url, leaf.not_valid_before_utc.timestamp() - 10)
    assert late.reason == CertReason.CERT_EXPIRED.value and late.details["cached"]
    assert early.reason == CertReason.CERT_NOT_YET_VALID.value
    assert (await svc.get(url, sti_pki.now)).ok
    assert sti_pki.hits(url) == 1


def test_expired_trust_anchor(sti_pki: StiPki) -> None:
    t = pki.utc(sti_pki.now)
    root = pki.make_root(
        now=sti_pki.now, not_before=t - dt.timedelta(days=90), not_after=t - dt.timedelta(days=1)
    )
    inter = pki.make_intermediate(root, now=sti_pki.now)
    leaf = pki.make_leaf(inter, now=sti_pki.now)
    r = validate([leaf.cert, inter.cert], [root.cert], sti_pki.now)
    assert isinstance(r, CertFailure)
    assert r.reason in (CertReason.CERT_EXPIRED, CertReason.CERT_UNTRUSTED)


def test_no_trust_anchors_means_untrusted(sti_pki: StiPki) -> None:
    certs = parse_pem_chain(sti_pki.chain_pem, 5)
    assert isinstance(certs, list)
    r = validate(certs, [], sti_pki.now)
    assert isinstance(r, CertFailure) and r.reason is CertReason.CERT_UNTRUSTED


def test_the_system_store_is_never_used(sti_pki: StiPki) -> None:
    # a chain to a root that only the TLS layer trusts is still untrusted
    tls_root = x509.load_pem_x509_certificate(sti_pki.tls_ca.read_bytes())
    certs = parse_pem_chain(sti_pki.chains["untrusted"], 5)
    assert isinstance(certs, list)
    r = validate(certs, [tls_root], sti_pki.now)
    assert isinstance(r, CertFailure) and r.reason is CertReason.CERT_UNTRUSTED


def test_delegate_scope_must_stay_within_the_issuer(sti_pki: StiPki) -> None:
    from attestation.tnauthlist import (
        ServiceProviderCode,
        TelephoneNumber,
        TelephoneNumberRange,
        encode,
    )

    now = sti_pki.now
    root = pki.make_root(now=now)
    inter = pki.make_intermediate(root, now=now, path_length=None)
    # an SP "CA" cert scoped to a range, issuing a delegate leaf (RFC 9060 shape)
    import cryptography.hazmat.primitives.hashes as hashes

    sp_key = pki.new_key()
    sp_ca_cert = (
        x509.CertificateBuilder()
        .subject_name(pki._name("SP delegate CA"))
        .issuer_name(inter.cert.subject)
        .public_key(sp_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(pki.utc(now - 86400))
        .not_valid_after(pki.utc(now + 86400 * 30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(pki._key_usage(ca=True), critical=True)
        .add_extension(pki._aki(inter), critical=False)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(sp_key.public_key()), critical=False
        )
        .add_extension(
            x509.UnrecognizedExtension(
                x509.ObjectIdentifier("1.3.6.1.5.5.7.1.26"),
                encode([ServiceProviderCode("1234"), TelephoneNumberRange("12155551000", 100)]),
            ),
            critical=False,
        )
        .sign(inter.key, hashes.SHA256())
    )
    sp_ca = pki.Issued(sp_ca_cert, sp_key)
    inside = pki.make_leaf(
        sp_ca,
        now=now,
        tnauthlist_der=encode([ServiceProviderCode("1234"), TelephoneNumber("12155551042")]),
    )
    outside = pki.make_leaf(
        sp_ca,
        now=now,
        tnauthlist_der=encode([ServiceProviderCode("1234"), TelephoneNumber("12155559999")]),
    )
    ok = validate([inside.cert, sp_ca.cert, inter.cert], [root.cert], now)
    assert not isinstance(ok, CertFailure), ok
    assert ok.tnauth.covers_tn("12155551042")
    bad = validate([outside.cert, sp_ca.cert, inter.cert], [root.cert], now)
    assert isinstance(bad, CertFailure) and bad.reason is CertReason.CERT_SCOPE_EXCEEDED


def test_mutated_certificates_never_raise(sti_pki: StiPki) -> None:
    # bad input is normal input: random byte corruption of the leaf or intermediate DER
    # must end in a reason (mostly cert_malformed / cert_bad_signature), never an exception
    rnd = random.Random(8226)
    leaf_der = sti_pki.leaf.cert.public_bytes(Encoding.DER)
    inter_der = sti_pki.intermediate.cert.public_bytes(Encoding.DER)
    seen: set[str] = set()
    for _ in range(400):
        which = rnd.random() < 0.7
        d = bytearray(leaf_der if which else inter_der)
        for _ in range(rnd.randint(1, 3)):
            d[rnd.randrange(len(d))] = rnd.randrange(256)
        leaf, inter = (bytes(d), inter_der) if which else (leaf_der, bytes(d))
        body = _pem(leaf) + _pem(inter)
        certs = parse_pem_chain(body, 5)
        result = (
            certs
            if isinstance(certs, CertFailure)
            else validate(certs, [sti_pki.root.cert], sti_pki.now)
        )
        seen.add(result.reason.value if isinstance(result, CertFailure) else "ok")
    assert {"cert_malformed", "cert_bad_signature"} <= seen


def _pem(der: bytes) -> bytes:
    return (
        b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(der) + b"-----END CERTIFICATE-----\n"
    )
