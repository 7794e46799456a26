"""The values that cross the attestation package boundary.

Failures are values: a verification never raises into the caller, it returns a Verdict
whose ``reason`` comes from a fixed vocabulary and whose ``sip_code``/``sip_text`` are the
RFC 8224 response a rejecting policy would send.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Verstat(StrEnum):
    """3GPP TS 24.229 ``verstat`` values put on the P-Asserted-Identity/From URI."""

    PASSED = "TN-Validation-Passed"
    FAILED = "TN-Validation-Failed"
    NONE = "No-TN-Validation"


@dataclass(frozen=True, slots=True)
class IdentityInput:
    """What the verifier needs from one SIP request (plain strings, no proxy types)."""

    identity_headers: tuple[str, ...]
    """Raw values of every Identity header field, in order (a field may hold one value)."""
    from_uri: str
    """The From header's URI (``sip:+12155551212@host`` or ``tel:+1-215-555-1212``)."""
    to_uri: str
    """The To header's URI."""
    request_uri: str
    """The Request-URI."""
    pai_uri: str | None = None
    """The first P-Asserted-Identity URI, if any (SHAKEN binds ``orig`` to it)."""
    call_id: str = ""
    """Call-ID, for replay detection (same PASSporT in another dialog)."""
    now: float = 0.0
    """Verification time, UNIX seconds (the caller's clock, never read here)."""
    source: str = ""
    """``IP:PORT`` the request came from (for the log only)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of verifying one request's Identity header(s)."""

    verstat: Verstat
    attest: str | None = None
    """``A``, ``B`` or ``C`` from a valid SHAKEN PASSporT."""
    origid: str | None = None
    spc: str | None = None
    """Service Provider Code from the signing certificate's TNAuthList."""
    reason: str | None = None
    """Failure reason from the fixed vocabulary (``stale``, ``bad_signature`` …); None if valid."""
    sip_code: int | None = None
    """RFC 8224 code for this failure (403, 428, 436, 437, 438); None when valid."""
    sip_text: str | None = None
    orig_tn: str | None = None
    dest_tns: tuple[str, ...] = ()
    x5u: str | None = None
    cert_fingerprint: str | None = None
    """SHA-256 of the leaf certificate, hex."""
    issuer: str | None = None
    diverted: bool = False
    """A valid div PASSporT chain explains retargeting (RFC 8946)."""
    details: dict[str, Any] = field(default_factory=dict)
    """Decoded PASSporT header and claims, timings and anything else worth auditing."""
    failure_class: str | None = None
    """Policy class of the failure (``attestation.failure.FailureClass`` value), None when valid."""
    reject: bool = False
    """Configured policy for this failure class is ``reject``: answer ``sip_code``/``sip_text``
    instead of forwarding (otherwise forward with verstat and a ``Reason`` header)."""

    @property
    def valid(self) -> bool:
        return self.verstat is Verstat.PASSED
