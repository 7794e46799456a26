"""Rules 16-18 end to end: the guarded fetcher against a real HTTPS server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from attestation.certs import CertificateService, CertResult
from attestation.certs.fetch import Fetcher
from attestation.certs.result import CertFailure, CertReason

from .conftest import StiPki


@pytest.fixture
async def svc(sti_pki: StiPki) -> AsyncIterator[CertificateService]:
    s = CertificateService(sti_pki.config(crl_fetch=False))
    yield s
    await s.close()


def assert_fails(r: CertResult, reason: CertReason, code: int = 436) -> None:
    assert not r.ok, r
    assert r.reason == reason.value, (r.reason, r.details)
    assert r.sip_code == code and r.sip_text
    assert r.public_key is None


async def test_good_chain(svc: CertificateService, sti_pki: StiPki) -> None:
    r = await svc.get(sti_pki.x5u(), sti_pki.now)
    assert r.ok, r.details
    assert r.spc == "1234" and r.public_key is not None
    assert r.leaf == sti_pki.leaf.cert
    assert [c.subject for c in r.chain] == [
        sti_pki.leaf.cert.subject,
        sti_pki.intermediate.cert.subject,
        sti_pki.root.cert.subject,
    ]
    assert r.fingerprint_sha256 and len(r.fingerprint_sha256) == 64
    assert r.issuer == sti_pki.intermediate.cert.subject.rfc4514_string()
    assert r.tnauth is not None and r.tnauth.spcs == ("1234",)
    assert r.details["cached"] is False and "lints" not in r.details


async def test_404(svc: CertificateService, sti_pki: StiPki) -> None:
    r = await svc.get(sti_pki.server.url("/missing.pem"), sti_pki.now)
    assert_fails(r, CertReason.X5U_FETCH_FAILED)
    assert "HTTP 404" in r.details["detail"]


async def test_500(svc: CertificateService, sti_pki: StiPki) -> None:
    r = await svc.get(sti_pki.serve(sti_pki.chain_pem, status=500), sti_pki.now)
    assert_fails(r, CertReason.X5U_FETCH_FAILED)


async def test_redirect_is_refused(svc: CertificateService, sti_pki: StiPki) -> None:
    target = sti_pki.serve(sti_pki.chain_pem)
    url = sti_pki.serve(redirect_to=target)
    r = await svc.get(url, sti_pki.now)
    assert_fails(r, CertReason.X5U_FETCH_FAILED)
    assert "redirect refused" in r.details["detail"]
    assert sti_pki.hits(url) == 1 and sti_pki.hits(target) == 0


async def test_timeout_when_the_server_never_answers(sti_pki: StiPki) -> None:
    s = CertificateService(sti_pki.config(x5u_timeout=0.3, crl_fetch=False))
    try:
        r = await s.get(sti_pki.serve(hang=True), sti_pki.now)
        assert_fails(r, CertReason.X5U_TIMEOUT)
    finally:
        await s.close()


async def test_too_large_body(svc: CertificateService, sti_pki: StiPki) -> None:
    big = sti_pki.chain_pem * 20
    assert len(big) > 16384
    assert_fails(await svc.get(sti_pki.serve(big), sti_pki.now), CertReason.X5U_TOO_LARGE)


async def test_too_large_streamed_without_length(sti_pki: StiPki) -> None:
    # the fetcher must stop reading at the cap even when Content-Length is absent/lying
    f = Fetcher(allow_hosts=("127.0.0.1",), ca_file=sti_pki.tls_ca, clock=lambda: 0.0)
    try:
        got = await f.fetch(sti_pki.serve(b"x" * 5000), max_bytes=1000)
        assert isinstance(got, CertFailure) and got.reason is CertReason.X5U_TOO_LARGE
    finally:
        await f.close()


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"hello world",
        b"\x30\x82\x01\x00" + b"\x00" * 300,  # DER, not PEM
        "-----BEGIN CERTIFICATE-----\nü\n-----END CERTIFICATE-----\n".encode(),
        b"<html>Not here</html>",
    ],
)
async def test_not_pem(svc: CertificateService, sti_pki: StiPki, body: bytes) -> None:
    assert_fails(await svc.get(sti_pki.serve(body), sti_pki.now), CertReason.X5U_NOT_PEM)


async def test_pem_with_garbage_inside_is_malformed(
    svc: CertificateService, sti_pki: StiPki
) -> None:
    body = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    r = await svc.get(sti_pki.serve(body), sti_pki.now)
    assert_fails(r, CertReason.CERT_MALFORMED, 437)


async def test_too_many_certificates(svc: CertificateService, sti_pki: StiPki) -> None:
    body = sti_pki.chain_pem + sti_pki.root.cert_pem * 5
    r = await svc.get(sti_pki.serve(body), sti_pki.now)
    assert_fails(r, CertReason.CERT_MALFORMED, 437)


async def test_tls_not_trusted_without_the_ca_file(sti_pki: StiPki) -> None:
    s = CertificateService(sti_pki.config(x5u_ca_file=None, crl_fetch=False))
    try:
        r = await s.get(sti_pki.x5u(), sti_pki.now)
        assert_fails(r, CertReason.X5U_FETCH_FAILED)
    finally:
        await s.close()


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "localhost", "[::1]", "[::ffff:127.0.0.1]", "127.0.0.2"]
)
async def test_loopback_refused_without_allow_list(sti_pki: StiPki, host: str) -> None:
    s = CertificateService(sti_pki.config(x5u_allow_hosts=(), crl_fetch=False))
    try:
        url = f"https://{host}:8443/good.pem"
        r = await s.get(url, sti_pki.now)
        assert_fails(r, CertReason.X5U_FORBIDDEN_ADDRESS)
        assert s.fetcher.requests == (1 if host == "localhost" else 0)  # no connection made
    finally:
        await s.close()


async def test_localhost_refused_even_on_the_real_port(sti_pki: StiPki) -> None:
    # allow-listing 127.0.0.1 does not allow the name `localhost` (also resolving there)
    s = CertificateService(sti_pki.config(crl_fetch=False))
    try:
        url = f"https://localhost:{sti_pki.server.port}/good.pem"
        r = await s.get(url, sti_pki.now)
        assert_fails(r, CertReason.X5U_BAD_URL)  # not allow-listed: the port rule applies
        s2 = CertificateService(sti_pki.config(crl_fetch=False, x5u_ports=(sti_pki.server.port,)))
        try:
            r2 = await s2.get(url, sti_pki.now)
            assert_fails(r2, CertReason.X5U_FORBIDDEN_ADDRESS)
        finally:
            await s2.close()
    finally:
        await s.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/good.pem",
        "https://127.0.0.1/good.pem?x",
        "https://127.0.0.1/good.pem#f",
        "https://u:p@127.0.0.1/good.pem",
        "https://cr.example.com:8080/sp.pem",
    ],
)
async def test_bad_urls_never_reach_the_network(svc: CertificateService, url: str) -> None:
    r = await svc.get(url, 0)
    assert_fails(r, CertReason.X5U_BAD_URL)
    assert svc.fetcher.requests == 0


def test_bad_x5u_ca_file_is_a_startup_error(sti_pki: StiPki, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="x5u_ca_file"):
        CertificateService(sti_pki.config(x5u_ca_file=tmp_path / "missing.pem"))
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(ValueError, match="x5u_ca_file"):
        CertificateService(sti_pki.config(x5u_ca_file=junk))
