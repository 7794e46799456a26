"""A production SHAKEN chain validates: TransNexus Root CA1 -> Issuing CA3 -> "SHAKEN 060K"
(valid 2022-11-01..08), public certificates from martinisecurity/shaken-pki-reports.

Why: generated test PKIs only prove we accept what we generate. This chain has the quirks of
real STI certificates (non-minimal keyUsage bit strings, OU in names, an indirect CRL
distribution point naming the STI-PA CRL issuer), so it guards the choice of
``cryptography``'s PolicyBuilder with a relaxed end-entity policy against web-PKI rules
that SHAKEN certificates do not follow.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509

from attestation.certs.chain import ValidChain, parse_pem_chain, validate
from attestation.certs.crl import distribution_points
from attestation.certs.result import CertFailure, CertReason

CHAIN = Path(__file__).parent / "data" / "transnexus-060K-chain.pem"
AT = dt.datetime(2022, 11, 2, tzinfo=dt.UTC).timestamp()


def _certs() -> list[x509.Certificate]:
    certs = parse_pem_chain(CHAIN.read_bytes(), 5)
    assert isinstance(certs, list) and len(certs) == 3
    return certs


def test_production_chain_validates() -> None:
    leaf, ca3, root = _certs()
    r = validate([leaf, ca3], [root], AT)
    assert isinstance(r, ValidChain), r
    assert r.spc == "060K"
    assert r.fingerprint_sha256.startswith("b030c024fa6dce4b")
    assert [c.subject for c in r.path] == [leaf.subject, ca3.subject, root.subject]
    assert r.lints == ()
    assert distribution_points(leaf) == ["https://authenticate-api.iconectiv.com/download/v1/crl"]


def test_production_chain_expires_and_needs_its_anchor() -> None:
    leaf, ca3, root = _certs()
    late = validate([leaf, ca3], [root], AT + 7 * 86400)
    assert isinstance(late, CertFailure) and late.reason is CertReason.CERT_EXPIRED
    alone = validate([leaf, ca3, root], [], AT)
    assert isinstance(alone, CertFailure) and alone.reason is CertReason.CERT_UNTRUSTED
    # a self-signed root inside the x5u response is not an anchor (rule 20)
    other = validate([leaf, ca3, root], [ca3], AT)
    assert not isinstance(other, CertFailure)  # ca3 itself configured as anchor: fine
    assert other.path[-1] == ca3
