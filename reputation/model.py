"""The values that cross the reputation package boundary.

Plain data only: the proxy builds CallFacts from a SIP request and an attestation Verdict
(copying strings), so reputation depends on neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True, slots=True)
class CallFacts:
    """One new call, as the scorer sees it."""

    call_id: str
    caller: str | None
    """Caller identity as received (PAI if present, else From): a TN, URI user, or None if
    anonymous."""
    callee: str
    """Called number or user (To / Request-URI user part)."""
    time: float
    """UNIX seconds."""
    source_ip: str = ""
    source_port: int = 0
    transport: str = "udp"
    trunk: str | None = None
    """Name of the configured trunk the call came from, if any."""
    verstat: str | None = None
    """``TN-Validation-Passed`` / ``-Failed`` / ``No-TN-Validation`` (attestation.Verstat value)."""
    attest: str | None = None
    origid: str | None = None
    spc: str | None = None
    identity_reason: str | None = None
    """Attestation failure reason, when verification failed."""
    display_name: str | None = None
    user_agent: str | None = None
    privacy: str | None = None
    """Privacy header value (RFC 3323): ``id`` or ``header`` marks the identity as withheld."""


@dataclass(frozen=True, slots=True)
class Reason:
    """One signal's contribution to the score, with its evidence."""

    signal: str
    """Stable signal name (``shaken.attest_a``, ``list.user_block``, ``pattern.fanout`` …)."""
    weight: float
    """Log-odds contribution (positive = more likely spam)."""
    detail: str = ""
    infra: bool = False
    """True when the evidence is about shared infrastructure (the source address, SHAKEN
    ``origid``, signing certificate/SPC, or call patterns keyed only on those), not about
    this caller: such evidence alone may divert a call but never reject it (policy)."""
    volume: bool = False
    """True for call-volume statistics (rates, fan-out, concurrency, sweeps, repeats): a
    wanted broadcast shows them too, so volume alone may divert a call but never reject it
    (policy ``volume_only_action``)."""


class ActionKind(str, Enum):  # noqa: UP042 (str() must stay as it was for callers)
    FORWARD = "forward"
    FORWARD_TAGGED = "forward_tagged"
    CHALLENGE = "challenge"
    VOICEMAIL = "voicemail"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class Score:
    value: float
    """0 (certainly wanted) … 100 (certainly spam)."""
    reasons: tuple[Reason, ...] = ()
    """Ordered by absolute weight, largest first."""
    override: str | None = None
    """Name of the hard override that decided (``allow_list``, ``emergency`` …), if any."""
    log_odds: float = 0.0
    """Prior plus the sum of the reasons' weights (before the logistic and any override)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """What the policy wants done with a call."""

    action: ActionKind
    score: Score
    label: str = ""
    """Short label for the tag header (``spam-likely``, ``ok`` …)."""
    reject_code: int | None = None
    """603, 607 or 608 when action is REJECT."""
    reject_reason: str | None = None
    monitor: bool = False
    """True when enforcement is off: the action is what *would* happen; the call is forwarded."""
    intended: ActionKind | None = None
    """In monitor mode, the action enforcement would have taken (``action`` is FORWARD)."""
    band: str = ""
    """Score band that chose the action (``ok``, ``suspicious``, ``likely``, ``spam``,
    ``certain``), or the override / anonymous rule that did."""
    reason_phrase: str | None = None
    """SIP reason phrase for a reject (``Rejected``, ``Unwanted``, ``Network Blocked`` …)."""
    headers: tuple[tuple[str, str], ...] = ()
    """Header fields to add: the score tag, and for rejects ``Reason`` and ``Call-Info``."""
