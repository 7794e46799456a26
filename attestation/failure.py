"""The verifier's failure vocabulary and the RFC 8224 responses each failure maps to.

Why a fixed vocabulary: the screening step, the audit log and operators' dashboards all
key on ``Verdict.reason``; a free-text reason would make every one of them parse prose.
Each reason belongs to exactly one *failure class* (the unit a deployment's policy is
written in: continue or reject) and carries the RFC 8224 §6.2.2 code and reason phrase a
rejecting policy answers with, or that a continuing policy puts in a ``Reason`` header.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum


class SipCode(IntEnum):
    """Response codes a STI-VS uses (RFC 8224 §6.2.2, RFC 3323/3261 for 433)."""

    STALE_DATE = 403
    USE_IDENTITY_HEADER = 428
    ANONYMITY_DISALLOWED = 433
    BAD_IDENTITY_INFO = 436
    UNSUPPORTED_CREDENTIAL = 437
    INVALID_IDENTITY_HEADER = 438
    SERVER_INTERNAL_ERROR = 500


SIP_TEXT: dict[SipCode, str] = {
    SipCode.STALE_DATE: "Stale Date",
    SipCode.USE_IDENTITY_HEADER: "Use Identity Header",
    SipCode.ANONYMITY_DISALLOWED: "Anonymity Disallowed",
    SipCode.BAD_IDENTITY_INFO: "Bad Identity Info",
    SipCode.UNSUPPORTED_CREDENTIAL: "Unsupported Credential",
    SipCode.INVALID_IDENTITY_HEADER: "Invalid Identity Header",
    SipCode.SERVER_INTERNAL_ERROR: "Server Internal Error",
}


class FailureClass(StrEnum):
    """What a deployment writes policy for (``[attestation.on_failure]`` keys)."""

    STALE_DATE = "stale_date"
    USE_IDENTITY = "use_identity"
    ANONYMITY = "anonymity"
    BAD_IDENTITY_INFO = "bad_identity_info"
    UNSUPPORTED_CREDENTIAL = "unsupported_credential"
    INVALID_IDENTITY = "invalid_identity"
    REPLAYED = "replayed"


_CLASS_OF_CODE: dict[SipCode, FailureClass] = {
    SipCode.STALE_DATE: FailureClass.STALE_DATE,
    SipCode.USE_IDENTITY_HEADER: FailureClass.USE_IDENTITY,
    SipCode.ANONYMITY_DISALLOWED: FailureClass.ANONYMITY,
    SipCode.BAD_IDENTITY_INFO: FailureClass.BAD_IDENTITY_INFO,
    SipCode.UNSUPPORTED_CREDENTIAL: FailureClass.UNSUPPORTED_CREDENTIAL,
    SipCode.INVALID_IDENTITY_HEADER: FailureClass.INVALID_IDENTITY,
}


class Reason(StrEnum):
    """Every way a verification can fail. The value is what ``Verdict.reason`` holds."""

    # 428: nothing to verify
    NO_IDENTITY = "no_identity"
    NO_SUPPORTED_PPT = "no_supported_ppt"
    # Identity header syntax (RFC 8224 §4)
    MALFORMED_HEADER = "malformed_header"
    MISSING_INFO = "missing_info"
    BAD_INFO_URI = "bad_info_uri"
    COMPACT_FORM = "compact_form"
    PPT_MISMATCH = "ppt_mismatch"
    ALG_MISMATCH = "alg_mismatch"
    INFO_MISMATCH = "info_mismatch"
    # PASSporT encoding and JOSE header (RFC 7515, RFC 8225 §5.1)
    BAD_ENCODING = "bad_encoding"
    BAD_JSON = "bad_json"
    UNSUPPORTED_ALG = "unsupported_alg"
    BAD_TYP = "bad_typ"
    BAD_PPT = "bad_ppt"
    MISSING_X5U = "missing_x5u"
    UNSUPPORTED_CRIT = "unsupported_crit"
    # claims (RFC 8225 §5.2, RFC 8588, RFC 8946)
    MISSING_CLAIM = "missing_claim"
    BAD_CLAIM = "bad_claim"
    BAD_ATTEST = "bad_attest"
    MISSING_ORIGID = "missing_origid"
    NON_CANONICAL_TN = "non_canonical_tn"
    # freshness (RFC 8224 §6.2 step 3)
    STALE = "stale"
    FUTURE_IAT = "future_iat"
    # signature (RFC 7518 §3.4)
    BAD_SIGNATURE = "bad_signature"
    # binding to the request (RFC 8224 §6.2 step 1, §12.1; RFC 8946)
    ORIG_MISMATCH = "orig_mismatch"
    ANONYMOUS_ORIG = "anonymous_orig"
    DEST_MISMATCH = "dest_mismatch"
    DIV_INVALID = "div_invalid"
    REPLAYED = "replayed"
    # certificate problems reported by the certificate source that carry no reason of ours
    CERT_UNAVAILABLE = "cert_unavailable"
    CERT_INVALID = "cert_invalid"
    BAD_KEY = "bad_key"
    TN_NOT_COVERED = "cert_tn_not_covered"
    """A delegate certificate (RFC 9060) whose TNAuthList does not hold the signed TN."""
    # a bug of ours: never expected, reported instead of raised into the proxy
    INTERNAL_ERROR = "internal_error"


_CODE_OF_REASON: dict[Reason, SipCode] = {
    Reason.NO_IDENTITY: SipCode.USE_IDENTITY_HEADER,
    Reason.NO_SUPPORTED_PPT: SipCode.USE_IDENTITY_HEADER,
    Reason.MISSING_INFO: SipCode.BAD_IDENTITY_INFO,
    Reason.BAD_INFO_URI: SipCode.BAD_IDENTITY_INFO,
    Reason.STALE: SipCode.STALE_DATE,
    Reason.FUTURE_IAT: SipCode.STALE_DATE,
    Reason.ANONYMOUS_ORIG: SipCode.ANONYMITY_DISALLOWED,
    Reason.CERT_UNAVAILABLE: SipCode.BAD_IDENTITY_INFO,
    Reason.CERT_INVALID: SipCode.UNSUPPORTED_CREDENTIAL,
    Reason.BAD_KEY: SipCode.UNSUPPORTED_CREDENTIAL,
    Reason.TN_NOT_COVERED: SipCode.UNSUPPORTED_CREDENTIAL,
    Reason.INTERNAL_ERROR: SipCode.SERVER_INTERNAL_ERROR,
}


def code_of(reason: Reason) -> SipCode:
    """The RFC 8224 code for ``reason`` (438 unless listed otherwise)."""
    return _CODE_OF_REASON.get(reason, SipCode.INVALID_IDENTITY_HEADER)


def class_of(reason: str, sip_code: int | None) -> FailureClass:
    """The policy class of a failure; replays get their own class, the rest go by code."""
    if reason == Reason.REPLAYED.value:
        return FailureClass.REPLAYED
    try:
        return _CLASS_OF_CODE[SipCode(sip_code if sip_code is not None else 438)]
    except ValueError:
        return FailureClass.INVALID_IDENTITY


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed check: a vocabulary reason, the response it maps to, and a detail line.

    ``reason`` is a plain string so that the certificate source's own vocabulary
    (``x5u_fetch_failed``, ``untrusted_chain``, …) passes through unchanged.
    """

    reason: str
    sip_code: int
    sip_text: str
    detail: str = ""

    @classmethod
    def of(cls, reason: Reason, detail: str = "") -> Failure:
        code = code_of(reason)
        return cls(reason.value, int(code), SIP_TEXT[code], detail)
