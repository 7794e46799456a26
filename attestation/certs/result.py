"""What the certificate service answers: a :class:`CertResult`, failures included.

Why a fixed vocabulary: the verifier copies ``reason`` into ``Verdict.reason`` and the
audit log, and policy is written per RFC 8224 code. Every way that getting a usable
signing key out of an ``x5u`` URL can fail has exactly one :class:`CertReason`, and each
reason maps to 436 "Bad Identity Info" (the URL could not be dereferenced into
certificates) or 437 "Unsupported Credential" (certificates arrived, but they are not an
acceptable SHAKEN credential) — RFC 8224 §6.2.2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from ..tnauthlist import TNAuthList


class CertSipCode(IntEnum):
    BAD_IDENTITY_INFO = 436
    UNSUPPORTED_CREDENTIAL = 437


SIP_TEXT = {
    CertSipCode.BAD_IDENTITY_INFO: "Bad Identity Info",
    CertSipCode.UNSUPPORTED_CREDENTIAL: "Unsupported Credential",
}


class CertReason(StrEnum):
    """Failure reasons; the value is the string that ends up in ``Verdict.reason``."""

    # 436: the x5u URL could not be turned into certificates (rules 16-18)
    X5U_BAD_URL = "x5u_bad_url"
    """Not https, port not allowed, userinfo/query/fragment, unparsable."""
    X5U_FORBIDDEN_ADDRESS = "x5u_forbidden_address"
    """Host is or resolves to loopback/private/link-local/CGNAT/multicast/... (SSRF guard)."""
    X5U_FETCH_FAILED = "x5u_fetch_failed"
    """DNS, TCP or TLS failure, a redirect, or an HTTP status other than 200."""
    X5U_TIMEOUT = "x5u_timeout"
    X5U_TOO_LARGE = "x5u_too_large"
    X5U_NOT_PEM = "x5u_not_pem"
    """The body holds no PEM certificate."""
    # 437: the certificates are not an acceptable credential (rules 18-24)
    CERT_MALFORMED = "cert_malformed"
    """A PEM block does not hold a parsable certificate, or too many certificates."""
    CERT_UNTRUSTED = "cert_untrusted"
    """No path to a configured STI-CA trust anchor."""
    CERT_BAD_SIGNATURE = "cert_bad_signature"
    """A certificate in the response is not signed by the one that should have issued it."""
    CERT_EXPIRED = "cert_expired"
    CERT_NOT_YET_VALID = "cert_not_yet_valid"
    CERT_NOT_CA = "cert_not_ca"
    """An issuer lacks basicConstraints CA:true (or its pathLen is exceeded)."""
    CERT_BAD_KEY_USAGE = "cert_bad_key_usage"
    """An issuer lacks keyCertSign, or the leaf lacks digitalSignature / claims CA."""
    CERT_REVOKED = "cert_revoked"
    CERT_CRL_UNAVAILABLE = "cert_crl_unavailable"
    """Only with ``crl_fail_closed``: a CRL distribution point could not be fetched."""
    CERT_NO_TNAUTHLIST = "cert_no_tnauthlist"
    CERT_BAD_TNAUTHLIST = "cert_bad_tnauthlist"
    CERT_NO_SPC = "cert_no_spc"
    CERT_MULTIPLE_SPC = "cert_multiple_spc"
    CERT_SCOPE_EXCEEDED = "cert_scope_exceeded"
    """A TNAuthList is wider than its issuer's (RFC 9060 delegate certificates)."""
    CERT_BAD_KEY = "cert_bad_key"
    """The leaf key is not EC P-256 (ES256 only)."""

    @property
    def sip_code(self) -> CertSipCode:
        if self.value.startswith("x5u_"):
            return CertSipCode.BAD_IDENTITY_INFO
        return CertSipCode.UNSUPPORTED_CREDENTIAL

    @property
    def sip_text(self) -> str:
        return SIP_TEXT[self.sip_code]


@dataclass(frozen=True, slots=True)
class CertFailure:
    """A failure inside the certificate package (becomes a failed :class:`CertResult`)."""

    reason: CertReason
    detail: str = ""


@dataclass(frozen=True, slots=True, eq=False)
class CertResult:
    """The answer to ``CertificateService.get(x5u, at)``.

    ``ok`` is True only when the leaf's key may be used to verify an ES256 PASSporT signed
    at time ``at``. On failure the certificate fields are still filled in when the
    certificates were obtained (for the audit log: which revoked or expired certificate)."""

    ok: bool
    reason: str | None = None
    """A :class:`CertReason` value, None when ok."""
    sip_code: int | None = None
    """436 or 437, None when ok."""
    sip_text: str | None = None
    x5u: str = ""
    leaf: x509.Certificate | None = None
    public_key: ec.EllipticCurvePublicKey | None = None
    spc: str | None = None
    """The single SPC of the leaf's TNAuthList."""
    tnauth: TNAuthList | None = None
    fingerprint_sha256: str | None = None
    """SHA-256 of the leaf's DER, lower-case hex."""
    issuer: str | None = None
    """The leaf's issuer DN (RFC 4514)."""
    chain: tuple[x509.Certificate, ...] = ()
    """The validated path, leaf first, trust anchor last (or the certificates received)."""
    details: dict[str, Any] = field(default_factory=dict)
    """``detail`` text of a failure, ``cached``, ``lints``, CRL notes, timings."""

    @classmethod
    def failure(
        cls, reason: CertReason, detail: str = "", *, x5u: str = "", **kw: Any
    ) -> CertResult:
        details: dict[str, Any] = dict(kw.pop("details", {}))
        if detail:
            details["detail"] = detail
        return cls(
            ok=False,
            reason=reason.value,
            sip_code=int(reason.sip_code),
            sip_text=reason.sip_text,
            x5u=x5u,
            details=details,
            **kw,
        )
