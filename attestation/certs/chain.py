"""Certificate path validation for SHAKEN chains (rules 18, 20, 22-24), pure and offline.

Theory of operation. The x5u body is a PEM leaf followed by untrusted intermediates
(rule 18). The authority on whether a path exists is ``cryptography``'s
``PolicyBuilder`` (RFC 5280 path building, signature checks, validity of every
certificate at the verification time, basicConstraints, pathLen, CA keyUsage), fed only the
configured STI-CA trust anchors: the system web-PKI store is never consulted. Its default
*end-entity* policy is web-PKI (SAN, EKU), which SHAKEN certificates do not follow, so the
leaf gets a permissive extension policy and SHAKEN's own leaf rules are applied here:
keyUsage digitalSignature, not a CA, an EC P-256 key, and a TNAuthList with exactly one SPC.

When ``PolicyBuilder`` refuses, its message is prose; to give the verifier a reason from
the fixed vocabulary we rebuild the path by names and signatures ignoring time and
constraints, then ask which rule the best path breaks (not yet valid, expired, not a CA,
keyUsage, a bad signature) — falling back to ``cert_untrusted``.

A :class:`ValidChain` records the interval in which every certificate of the path is
valid, so a cached chain is re-checked against each verification time without redoing
signature work.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import verification as xv

from ..tnauthlist import OID_TNAUTHLIST, TNAuthList, TNAuthListError, decode
from .result import CertFailure, CertReason

SHAKEN_POLICY_OID = "2.16.840.1.114569.1.1.3"
MAX_DEPTH = 6
_TNAUTH_OID = x509.ObjectIdentifier(OID_TNAUTHLIST)


@dataclass(frozen=True, slots=True)
class ValidChain:
    """A chain that passed everything except time-dependent and revocation checks
    (those are :meth:`check_time` and the CRL set)."""

    path: tuple[x509.Certificate, ...]
    """Leaf first, trust anchor last."""
    public_key: ec.EllipticCurvePublicKey
    tnauth: TNAuthList
    spc: str
    not_before: float
    """Latest notBefore in the path (UNIX seconds)."""
    not_after: float
    """Earliest notAfter in the path."""
    fingerprint_sha256: str
    lints: tuple[str, ...] = field(default=())

    @property
    def leaf(self) -> x509.Certificate:
        return self.path[0]

    def check_time(self, at: float) -> CertFailure | None:
        if self.not_before <= at <= self.not_after:
            return None
        return _time_failure(self.path, at)


def parse_pem_chain(body: bytes, max_certs: int) -> list[x509.Certificate] | CertFailure:
    """Leaf + chain from a PEM body (rule 18); non-PEM and broken certificates are values."""
    if b"-----BEGIN CERTIFICATE-----" not in body:
        return CertFailure(CertReason.X5U_NOT_PEM, "no PEM CERTIFICATE block in the response")
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        return CertFailure(CertReason.X5U_NOT_PEM, "the response is not ASCII PEM text")
    if text.count("-----BEGIN CERTIFICATE-----") > max_certs:
        return CertFailure(CertReason.CERT_MALFORMED, f"more than {max_certs} certificates")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. non-positive serials: judged below
            certs = x509.load_pem_x509_certificates(body)
            for c in certs:  # parse lazily-decoded parts now, not in the middle of a check
                _ = (c.subject, c.issuer, c.not_valid_before_utc, c.not_valid_after_utc)
                _ = (list(c.extensions), c.public_key(), c.serial_number)
    except Exception as exc:  # ValueError, InvalidVersion, UnsupportedAlgorithm, ...
        return CertFailure(
            CertReason.CERT_MALFORMED, f"unparsable certificate: {type(exc).__name__}: {exc}"[:300]
        )
    if not certs:
        return CertFailure(CertReason.X5U_NOT_PEM, "no certificate in the response")
    return certs


def _ts(d: dt.datetime) -> float:
    return d.timestamp()


def _name(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def _time_failure(path: Sequence[x509.Certificate], at: float) -> CertFailure | None:
    for cert in path:
        if at < _ts(cert.not_valid_before_utc):
            return CertFailure(
                CertReason.CERT_NOT_YET_VALID,
                f"{_name(cert)} is valid from {cert.not_valid_before_utc.isoformat()}",
            )
        if at > _ts(cert.not_valid_after_utc):
            return CertFailure(
                CertReason.CERT_EXPIRED,
                f"{_name(cert)} expired {cert.not_valid_after_utc.isoformat()}",
            )
    return None


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _ext(cert: x509.Certificate, cls: type[Any]) -> Any:
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None


def _diagnose(
    leaf: x509.Certificate,
    untrusted: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    at: float,
    library_message: str,
) -> CertFailure:
    """Why PolicyBuilder found no path: rebuild one by names/signatures, name the rule."""
    bad_link: CertFailure | None = None
    path = [leaf]
    while len(path) <= MAX_DEPTH:
        cur = path[-1]
        if any(cur == a for a in anchors):
            break
        cands = [a for a in anchors if a.subject == cur.issuer] + [
            c for c in untrusted if c.subject == cur.issuer and c not in path
        ]
        nxt = next((c for c in cands if _signed_by(cur, c)), None)
        if nxt is None:
            if cands and not any(c in anchors for c in cands):
                bad_link = CertFailure(
                    CertReason.CERT_BAD_SIGNATURE,
                    f"{_name(cur)} is not signed by {_name(cands[0])}",
                )
            break
        path.append(nxt)
    if not any(path[-1] == a for a in anchors):
        return bad_link or CertFailure(
            CertReason.CERT_UNTRUSTED,
            f"no path from {_name(leaf)} to a configured trust anchor ({library_message})",
        )
    timed = _time_failure(path, at)
    if timed:
        return timed
    for i, issuer in enumerate(path[1:], start=1):
        bc = _ext(issuer, x509.BasicConstraints)
        if bc is None or not bc.ca:
            return CertFailure(CertReason.CERT_NOT_CA, f"{_name(issuer)} is not a CA")
        if bc.path_length is not None and i - 1 > bc.path_length:
            return CertFailure(
                CertReason.CERT_NOT_CA, f"{_name(issuer)} pathLenConstraint exceeded"
            )
        ku = _ext(issuer, x509.KeyUsage)
        if ku is not None and not ku.key_cert_sign:
            return CertFailure(
                CertReason.CERT_BAD_KEY_USAGE, f"{_name(issuer)} lacks keyUsage keyCertSign"
            )
    return CertFailure(CertReason.CERT_UNTRUSTED, library_message[:300])


def _verify_path(
    leaf: x509.Certificate,
    untrusted: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    at: float,
) -> list[x509.Certificate] | CertFailure:
    if not anchors:
        return CertFailure(CertReason.CERT_UNTRUSTED, "no trust anchors configured")
    builder = (
        xv.PolicyBuilder()
        .store(xv.Store(list(anchors)))
        .time(dt.datetime.fromtimestamp(at, dt.UTC))
        .max_chain_depth(MAX_DEPTH)
        .extension_policies(
            ca_policy=xv.ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=xv.ExtensionPolicy.permit_all(),
        )
    )
    try:
        verified = builder.build_client_verifier().verify(leaf, list(untrusted))
    except xv.VerificationError as exc:
        return _diagnose(leaf, untrusted, anchors, at, str(exc))
    except (ValueError, TypeError, OverflowError) as exc:
        return CertFailure(CertReason.CERT_UNTRUSTED, f"{type(exc).__name__}: {exc}"[:300])
    path = list(verified.chain)
    # Belt and braces: every certificate, the anchor included, valid at `at`.
    return _time_failure(path, at) or path


def _leaf_rules(leaf: x509.Certificate) -> CertFailure | None:
    bc = _ext(leaf, x509.BasicConstraints)
    if bc is not None and bc.ca:
        return CertFailure(CertReason.CERT_BAD_KEY_USAGE, "the leaf is a CA certificate")
    ku = _ext(leaf, x509.KeyUsage)
    if ku is None or not ku.digital_signature:
        return CertFailure(
            CertReason.CERT_BAD_KEY_USAGE, "the leaf lacks keyUsage digitalSignature"
        )
    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        what = key.curve.name if isinstance(key, ec.EllipticCurvePublicKey) else type(key).__name__
        return CertFailure(CertReason.CERT_BAD_KEY, f"leaf key is {what}, ES256 needs P-256")
    return None


def tnauthlist_of(cert: x509.Certificate) -> TNAuthList | TNAuthListError | None:
    """The decoded TNAuthList extension, a decode error, or None when absent."""
    try:
        ext = cert.extensions.get_extension_for_oid(_TNAUTH_OID)
    except x509.ExtensionNotFound:
        return None
    value = ext.value
    if not isinstance(value, x509.UnrecognizedExtension):
        return TNAuthListError("unexpected extension type")
    return decode(value.value)


def _tnauth_rules(path: Sequence[x509.Certificate]) -> tuple[TNAuthList, str] | CertFailure:
    tn = tnauthlist_of(path[0])
    if tn is None:
        return CertFailure(CertReason.CERT_NO_TNAUTHLIST, "leaf has no TNAuthList extension")
    if isinstance(tn, TNAuthListError):
        return CertFailure(CertReason.CERT_BAD_TNAUTHLIST, str(tn))
    spcs = tn.spcs
    if not spcs:
        return CertFailure(CertReason.CERT_NO_SPC, "TNAuthList holds no SPC")
    if len(spcs) > 1:
        return CertFailure(
            CertReason.CERT_MULTIPLE_SPC, f"TNAuthList holds {len(spcs)} SPCs: {', '.join(spcs)}"
        )
    child = tn
    for issuer in path[1:]:  # RFC 9060: each scope within its issuer's, where one is given
        parent = tnauthlist_of(issuer)
        if isinstance(parent, TNAuthList):
            if not child.within(parent):
                return CertFailure(
                    CertReason.CERT_SCOPE_EXCEEDED,
                    f"TNAuthList of {_name(path[0])} exceeds that of {_name(issuer)}",
                )
            child = parent
    return tn, spcs[0]


def _lints(leaf: x509.Certificate, spc: str) -> tuple[str, ...]:
    """ATIS-1000080 profile checks worth logging but not failing (rule 23)."""
    out: list[str] = []
    pol = _ext(leaf, x509.CertificatePolicies)
    oids = [p.policy_identifier.dotted_string for p in pol] if pol is not None else []
    if SHAKEN_POLICY_OID not in oids:
        out.append(f"certificate policy {SHAKEN_POLICY_OID} absent")
    cns = leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    cn = str(cns[0].value) if cns else ""
    if "SHAKEN" not in cn or spc not in cn.split():
        out.append(f"CN {cn!r} does not read 'SHAKEN {spc}'")
    if _ext(leaf, x509.CRLDistributionPoints) is None:
        out.append("no CRL distribution point")
    known = {
        x509.BasicConstraints.oid,
        x509.KeyUsage.oid,
        x509.SubjectKeyIdentifier.oid,
        x509.AuthorityKeyIdentifier.oid,
        x509.CertificatePolicies.oid,
        x509.CRLDistributionPoints.oid,
        _TNAUTH_OID,
    }
    for ext in leaf.extensions:
        if ext.oid not in known:
            out.append(f"unexpected extension {ext.oid.dotted_string}")
    return tuple(out)


def validate(
    certs: Sequence[x509.Certificate], anchors: Sequence[x509.Certificate], at: float
) -> ValidChain | CertFailure:
    """Rules 18, 20, 22-24 for a received leaf + chain at verification time ``at``."""
    leaf = certs[0]
    path = _verify_path(leaf, certs[1:], anchors, at)
    if isinstance(path, CertFailure):
        return path
    bad = _leaf_rules(leaf)
    if bad:
        return bad
    tn = _tnauth_rules(path)
    if isinstance(tn, CertFailure):
        return tn
    tnauth, spc = tn
    key = leaf.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return ValidChain(
        path=tuple(path),
        public_key=key,
        tnauth=tnauth,
        spc=spc,
        not_before=max(_ts(c.not_valid_before_utc) for c in path),
        not_after=min(_ts(c.not_valid_after_utc) for c in path),
        fingerprint_sha256=leaf.fingerprint(hashes.SHA256()).hex(),
        lints=_lints(leaf, spc),
    )
