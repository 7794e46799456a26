"""A test STI PKI: root, intermediate, SHAKEN service-provider certificates and CRLs.

Why: the verifier must be exercised against real certificate chains, including every way a
chain can be wrong, without any network beyond 127.0.0.1. The builders here make a correct
ATIS-1000080-shaped profile by default (P-256 keys, ``CN=SHAKEN <SPC>``, TNAuthList with
one SPC, certificate policy ``2.16.840.1.114569.1.1.3``, CRL distribution point) and take
keyword arguments for each deviation (expired, no TNAuthList, two SPCs, P-384, CA:false
intermediate, wrong keyUsage, signed by the wrong key, ...).

:func:`init_pki` writes a complete directory (used by ``spitwall pki init``) and returns a
:class:`PkiManifest` of the paths; ``manifest.json`` in the directory holds the same.
Development tooling only: keys are written unencrypted.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .tnauthlist import OID_TNAUTHLIST, encode_spcs

SHAKEN_POLICY_OID = "2.16.840.1.114569.1.1.3"
"""ATIS-1000080 SHAKEN certificate policy."""

_CURVES: dict[str, ec.EllipticCurve] = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1()}
_DAY = dt.timedelta(days=1)


def utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def new_key(curve: str = "P-256") -> ec.EllipticCurvePrivateKey:
    """A fresh EC key on ``P-256`` (SHAKEN) or ``P-384`` (for the wrong-curve test)."""
    return ec.generate_private_key(_CURVES[curve])


def _name(cn: str, org: str = "spitwall test PKI") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _key_usage(*, digital_signature: bool = False, ca: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
    serial: int | None,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def make_root(
    cn: str = "SPITWALL Test STI-CA Root",
    *,
    now: float,
    days: int = 3650,
    key: ec.EllipticCurvePrivateKey | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> Issued:
    """A self-signed STI-CA (or STI-PA) trust anchor."""
    key = key or new_key()
    name = _name(cn)
    nb = not_before or utc(now) - _DAY
    na = not_after or utc(now) + days * _DAY
    cert = (
        _builder(name, name, key.public_key(), nb, na, None)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def _aki(issuer: Issued) -> x509.AuthorityKeyIdentifier:
    return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key())


def make_intermediate(
    issuer: Issued,
    cn: str = "SPITWALL Test STI-CA Intermediate",
    *,
    now: float,
    days: int = 1825,
    ca: bool = True,
    path_length: int | None = 0,
    key_cert_sign: bool = True,
    key: ec.EllipticCurvePrivateKey | None = None,
    crl_url: str | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> Issued:
    """An issuing STI-CA. ``ca=False`` or ``key_cert_sign=False`` make the bad variants."""
    key = key or new_key()
    b = (
        _builder(
            _name(cn),
            issuer.cert.subject,
            key.public_key(),
            not_before or utc(now) - _DAY,
            not_after or utc(now) + days * _DAY,
            None,
        )
        .add_extension(
            x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=not key_cert_sign,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=key_cert_sign,
                crl_sign=key_cert_sign,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(_aki(issuer), critical=False)
    )
    if crl_url:
        b = b.add_extension(_crl_dp(crl_url), critical=False)
    return Issued(b.sign(issuer.key, hashes.SHA256()), key)


def _crl_dp(url: str) -> x509.CRLDistributionPoints:
    return x509.CRLDistributionPoints(
        [
            x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(url)],
                relative_name=None,
                reasons=None,
                crl_issuer=None,
            )
        ]
    )


def make_leaf(
    issuer: Issued,
    spcs: Sequence[str] | None = ("1234",),
    *,
    now: float,
    days: int = 365,
    cn: str | None = None,
    curve: str = "P-256",
    key: ec.EllipticCurvePrivateKey | None = None,
    tnauthlist_der: bytes | None = None,
    crl_url: str | None = None,
    policy: bool = True,
    digital_signature: bool = True,
    signing_key: ec.EllipticCurvePrivateKey | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    serial: int | None = None,
) -> Issued:
    """A SHAKEN service-provider certificate.

    ``spcs=None`` omits TNAuthList (unless ``tnauthlist_der`` gives raw bytes for it);
    ``spcs=("1", "2")`` makes the two-SPC variant; ``curve="P-384"`` the wrong-curve one;
    ``signing_key`` signs with a key other than the issuer's (a broken link).
    """
    key = key or new_key(curve)
    first = spcs[0] if spcs else "NONE"
    b = (
        _builder(
            _name(cn or f"SHAKEN {first}", "spitwall test service provider"),
            issuer.cert.subject,
            key.public_key(),
            not_before or utc(now) - _DAY,
            not_after or utc(now) + days * _DAY,
            serial,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=digital_signature), critical=True)
        .add_extension(_aki(issuer), critical=False)
    )
    der = tnauthlist_der if tnauthlist_der is not None else (encode_spcs(*spcs) if spcs else None)
    if der is not None:
        b = b.add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier(OID_TNAUTHLIST), der),
            critical=False,
        )
    if policy:
        b = b.add_extension(
            x509.CertificatePolicies(
                [x509.PolicyInformation(x509.ObjectIdentifier(SHAKEN_POLICY_OID), None)]
            ),
            critical=False,
        )
    if crl_url:
        b = b.add_extension(_crl_dp(crl_url), critical=False)
    return Issued(b.sign(signing_key or issuer.key, hashes.SHA256()), key)


def make_crl_signer(
    issuer: Issued, cn: str = "SPITWALL Test STI-PA CRL", *, now: float, days: int = 365
) -> Issued:
    """A CRL-signing certificate (keyUsage cRLSign only), as the STI-PA signs its CRL with."""
    key = new_key()
    cert = (
        _builder(
            _name(cn),
            issuer.cert.subject,
            key.public_key(),
            utc(now) - _DAY,
            utc(now) + days * _DAY,
            None,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(_aki(issuer), critical=False)
        .sign(issuer.key, hashes.SHA256())
    )
    return Issued(cert, key)


def make_crl(
    issuer: Issued,
    revoked: Sequence[x509.Certificate] = (),
    *,
    now: float,
    next_update_days: float = 7,
    indirect: bool = False,
) -> x509.CertificateRevocationList:
    """A CRL signed by ``issuer`` revoking ``revoked``.

    ``indirect=True`` makes an RFC 5280 indirect CRL (as an STI-PA publishes): every entry
    carries a certificateIssuer extension naming the revoked certificate's own issuer."""
    b = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(utc(now) - dt.timedelta(minutes=5))
        .next_update(utc(now) + dt.timedelta(days=next_update_days))
        .add_extension(x509.CRLNumber(1), critical=False)
        .add_extension(_aki(issuer), critical=False)
    )
    if indirect:
        b = b.add_extension(
            x509.IssuingDistributionPoint(
                full_name=None,
                relative_name=None,
                only_contains_user_certs=False,
                only_contains_ca_certs=False,
                only_some_reasons=None,
                indirect_crl=True,
                only_contains_attribute_certs=False,
            ),
            critical=True,
        )
    for cert in revoked:
        rb = (
            x509.RevokedCertificateBuilder()
            .serial_number(cert.serial_number)
            .revocation_date(utc(now) - dt.timedelta(minutes=10))
        )
        if indirect:
            rb = rb.add_extension(
                x509.CertificateIssuer([x509.DirectoryName(cert.issuer)]), critical=True
            )
        b = b.add_revoked_certificate(rb.build())
    return b.sign(issuer.key, hashes.SHA256())


def make_tls_cert(
    hosts: Sequence[str] = ("127.0.0.1", "localhost", "::1"), *, now: float, days: int = 3650
) -> Issued:
    """A self-signed TLS server certificate for the local x5u HTTPS server.

    The file doubles as the CA file the fetcher trusts (config ``x5u_ca_file``)."""
    key = new_key()
    name = _name("spitwall local x5u server")
    sans: list[x509.GeneralName] = []
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    cert = (
        _builder(name, name, key.public_key(), utc(now) - _DAY, utc(now) + days * _DAY, None)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def pem_chain(*certs: x509.Certificate) -> bytes:
    """What an x5u URL serves: the leaf first, then its issuers."""
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def crl_pem(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True, slots=True)
class PkiManifest:
    """Where :func:`init_pki` put everything (also written to ``manifest.json``)."""

    directory: str
    spc: str
    base_url: str
    x5u_url: str
    crl_url: str
    root_cert: str
    intermediate_cert: str
    leaf_cert: str
    leaf_key: str
    chain: str
    """Leaf + intermediate PEM: the file served at ``x5u_url``."""
    crl: str
    """PEM CRL signed by the intermediate (empty revocation list), served at ``crl_url``."""
    trust_anchors: str
    """PEM of the root: the ``trust_anchors`` config value."""
    tls_cert: str
    tls_key: str
    tns: tuple[str, ...] = field(default=())

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def load(cls, path: str | Path) -> PkiManifest:
        p = Path(path)
        data = json.loads((p / "manifest.json" if p.is_dir() else p).read_text())
        data["tns"] = tuple(data.get("tns", ()))
        return cls(**data)


def init_pki(
    directory: str | Path,
    spc: str,
    *,
    now: float,
    tns: Sequence[str] = (),
    base_url: str = "https://127.0.0.1:8443",
) -> PkiManifest:
    """Create a complete test STI PKI in ``directory`` for one service provider.

    The x5u chain is published as ``<base_url>/sp.pem`` and the CRL as ``<base_url>/ca.crl``
    (serve the directory with ``spitwall pki serve``). ``tns`` adds TN entries to the
    leaf's TNAuthList next to the SPC (a delegate-style certificate)."""
    from .tnauthlist import ServiceProviderCode, TelephoneNumber, encode

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    base = base_url.rstrip("/")
    root = make_root(now=now)
    inter = make_intermediate(root, now=now)
    tn_der = None
    if tns:
        tn_der = encode([ServiceProviderCode(spc), *(TelephoneNumber(t) for t in tns)])
    leaf = make_leaf(inter, (spc,), now=now, crl_url=f"{base}/ca.crl", tnauthlist_der=tn_der)
    crl = make_crl(inter, (), now=now, next_update_days=30)
    tls = make_tls_cert(now=now)
    files = {
        "root.pem": root.cert_pem,
        "intermediate.pem": inter.cert_pem,
        "sp.crt": leaf.cert_pem,
        "sp.key": leaf.key_pem,
        "sp.pem": pem_chain(leaf.cert, inter.cert),
        "ca.crl": crl_pem(crl),
        "trust-anchors.pem": root.cert_pem,
        "tls.crt": tls.cert_pem,
        "tls.key": tls.key_pem,
    }
    for name, data in files.items():
        (d / name).write_bytes(data)
        if name.endswith(".key"):
            (d / name).chmod(0o600)
    m = PkiManifest(
        directory=str(d),
        spc=spc,
        base_url=base,
        x5u_url=f"{base}/sp.pem",
        crl_url=f"{base}/ca.crl",
        root_cert=str(d / "root.pem"),
        intermediate_cert=str(d / "intermediate.pem"),
        leaf_cert=str(d / "sp.crt"),
        leaf_key=str(d / "sp.key"),
        chain=str(d / "sp.pem"),
        crl=str(d / "ca.crl"),
        trust_anchors=str(d / "trust-anchors.pem"),
        tls_cert=str(d / "tls.crt"),
        tls_key=str(d / "tls.key"),
        tns=tuple(tns),
    )
    (d / "manifest.json").write_text(m.to_json())
    return m
