"""The screening step: the seam where attestation, reputation and policy attach to the proxy.

Theory of operation. For each *new* dialog-creating INVITE (no To tag) that the proxy will
forward, the core extracts ``InviteFacts`` (plain strings and numbers, no SIP objects) and
the runtime awaits ``Screener.screen(facts)`` exactly once, under
``proxy.screening_timeout``. Retransmissions of that INVITE are absorbed by the server
transaction while screening runs (they never reach the screener). The returned ``Action``
is carried out by the core:

- ``Forward``: the INVITE goes to its next hop, optionally with ``verstat`` added as a URI
  parameter of the P-Asserted-Identity (or, without PAI, the From) URI, and extra headers
  (``X-Spitwall-Score``, ``Reason`` …) appended and the header fields named in
  ``remove_headers`` dropped.
- ``Divert``: the Request-URI is replaced by ``target`` with the documented URI parameters
  of the challenge UA's contract (``challenge/__init__.py``): ``sw-callee`` (the original
  callee; the original Request-URI, %-escaped, unless the screener already put the E.164
  number in ``target``), ``sw-decision`` (the decision id) and, set by the screener,
  ``sw-mode`` (``challenge``/``voicemail``), ``sw-vm`` and ``sw-caller``. Every ``sw-*``
  parameter arriving on a Request-URI from outside is stripped before screening, so a
  caller cannot forge a diversion.
- ``Reject``: the caller gets ``code`` with ``reason`` and the extra headers (``Reason``,
  ``Call-Info`` …); nothing is forwarded.

Whatever the action, an INVITE the proxy forwards or diverts never carries
``X-Spitwall-Pass`` (``PASS_HEADER``): the screener reads the token from ``InviteFacts``,
and the callee (or the challenge UA) must never see it.

On timeout or on an exception in the screener the call is forwarded unscreened; both are
counted (``spitwall_screening_timeouts``) and logged. ``OutcomeObserver`` receives what
happened to screened calls afterwards (final response, BYE with duration, CANCEL) so that
reputation can learn; both protocols have no-op defaults here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from attestation.model import IdentityInput
from reputation.model import CallFacts

DIVERT_CALLEE_PARAM = "sw-callee"
"""Request-URI parameter of a diverted INVITE: the original callee, %-escaped."""
DIVERT_DECISION_PARAM = "sw-decision"
"""Request-URI parameter of a diverted INVITE: the screening decision id."""
DIVERT_PARAMS = (DIVERT_CALLEE_PARAM, DIVERT_DECISION_PARAM, "sw-mode", "sw-vm", "sw-caller")
"""Every parameter of the divert contract: stripped when they arrive from outside."""

PASS_HEADER = "X-Spitwall-Pass"
"""Header of the challenge UA's bridged leg: a one-time HMAC token that lets the call
through without a second screening (checked by the screener, never trusted on its own)."""

REJECT_CODES = frozenset(
    {403, 404, 410, 428, 433, 436, 437, 438, 480, 486, 488, 600, 603, 604, 606, 607, 608}
)
"""Codes a screener may reject with (RFC 3261, RFC 8224 428/436/437/438, RFC 8197 607,
RFC 8688 608)."""


@dataclass(frozen=True, slots=True)
class InviteFacts:
    """What the proxy knows about one new call, as plain data."""

    call_id: str
    request_uri: str
    from_uri: str
    to_uri: str
    time: float
    """UNIX seconds when the INVITE arrived."""
    source_ip: str
    source_port: int
    transport: Literal["udp", "tcp", "tls"]
    from_display: str | None = None
    pai_uris: tuple[str, ...] = ()
    """P-Asserted-Identity URIs, in order (sip:/tel:)."""
    identity: tuple[str, ...] = ()
    """Raw values of every Identity header field, in order."""
    user_agent: str | None = None
    caller_user: str | None = None
    """User part of the first PAI URI, else of the From URI (a TN or a name), else None."""
    callee_user: str = ""
    """User part of the Request-URI (else of To)."""
    pass_token: str | None = None
    """Value of the ``X-Spitwall-Pass`` header, if any (see PASS_HEADER)."""
    trunk: str | None = None
    """Name of the ``[proxy.trunks]`` entry whose sources hold ``source_ip``, if any."""

    def identity_input(self) -> IdentityInput:
        """The attestation package's view of this call."""
        return IdentityInput(
            identity_headers=self.identity,
            from_uri=self.from_uri,
            to_uri=self.to_uri,
            request_uri=self.request_uri,
            pai_uri=self.pai_uris[0] if self.pai_uris else None,
            call_id=self.call_id,
            now=self.time,
            source=f"{self.source_ip}:{self.source_port}",
        )

    def call_facts(self) -> CallFacts:
        """The reputation package's view of this call (before verification)."""
        return CallFacts(
            call_id=self.call_id,
            caller=self.caller_user,
            callee=self.callee_user,
            time=self.time,
            source_ip=self.source_ip,
            source_port=self.source_port,
            transport=self.transport,
            display_name=self.from_display,
            user_agent=self.user_agent,
            trunk=self.trunk,
        )


@dataclass(frozen=True, slots=True)
class Forward:
    """Send the call on, optionally tagged."""

    verstat: str | None = None
    """``TN-Validation-Passed`` etc., added as ``;verstat=`` on the PAI (else From) URI."""
    headers: tuple[tuple[str, str], ...] = ()
    """Header fields appended to the forwarded INVITE, e.g. ``("X-Spitwall-Score", "12")``."""
    decision_id: str | None = None
    note: str = ""
    """Why (for the log)."""
    remove_headers: tuple[str, ...] = ()
    """Names of header fields to drop from the forwarded INVITE (every field of each name,
    compact forms understood), before ``headers`` are appended. ``X-Spitwall-Pass`` is
    always dropped, named here or not."""


@dataclass(frozen=True, slots=True)
class Divert:
    """Send the call to another SIP URI (challenge IVR, voicemail) instead of the callee."""

    target: str
    """SIP URI of the new destination, e.g. ``sip:ivr@127.0.0.1:5070``."""
    decision_id: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    note: str = ""
    remove_headers: tuple[str, ...] = ()
    """As ``Forward.remove_headers`` (``X-Spitwall-Pass`` is always dropped)."""


@dataclass(frozen=True, slots=True)
class Reject:
    """Answer the caller with a final response and forward nothing."""

    code: int = 603
    reason: str = "Decline"
    headers: tuple[tuple[str, str], ...] = ()
    """Extra header fields, e.g. ``("Reason", 'SIP;cause=607;text="Unwanted"')``, ``Call-Info``."""
    decision_id: str | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if not 300 <= self.code <= 699:
            raise ValueError(f"reject code must be 3xx-6xx, got {self.code}")


Action = Forward | Divert | Reject


@runtime_checkable
class Screener(Protocol):
    """Decides what to do with one new call. Must not block the event loop."""

    async def screen(self, facts: InviteFacts) -> Action: ...


OutcomeKind = Literal["final", "bye", "cancel"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to a screened call afterwards."""

    kind: OutcomeKind
    call_id: str
    time: float
    """UNIX seconds of the event."""
    code: int | None = None
    """Final response code to the INVITE (``final``; 487 after a CANCEL)."""
    duration: float | None = None
    """Seconds from the 200 OK to the BYE (``bye``)."""
    by: Literal["caller", "callee"] | None = None
    """Which side sent the BYE."""
    decision_id: str | None = None
    facts: InviteFacts | None = None


@runtime_checkable
class OutcomeObserver(Protocol):
    """Receives outcomes of screened calls; must return quickly (queue work elsewhere)."""

    def observe(self, outcome: Outcome) -> None: ...


class ForwardAll:
    """The default screener: every call is forwarded untouched."""

    async def screen(self, facts: InviteFacts) -> Action:
        return Forward(note="default screener")


class IgnoreOutcomes:
    """The default observer: outcomes are dropped."""

    def observe(self, outcome: Outcome) -> None:
        return None


@dataclass(slots=True)
class RecordingObserver:
    """Keeps outcomes in a list (tests and debugging)."""

    outcomes: list[Outcome] = field(default_factory=list)

    def observe(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
