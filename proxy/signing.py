"""The proxy's STI-AS mode: sign calls that leave the provider from a customer trunk.

Theory of operation. A new INVITE whose source address belongs to a configured signing
trunk (``[attestation.signing_trunks.NAME] sources``) and that carries no Identity header
is an *outbound* call: our customer is calling out through us, so we are its originating
service provider and must sign it (ATIS-1000074 §5.2), not screen it as inbound spam. The
pipeline asks :meth:`OutboundSigning.outbound` first; ``None`` means "not ours to sign"
and the call takes the normal verify → score → decide path.

======================================  ==============================================
the INVITE                              result
======================================  ==============================================
source in no trunk                      ``None``: inbound, screened as usual
from a trunk, already has Identity      ``None``: someone signed it; verified as usual
from a trunk, orig and dest are TNs     :class:`Signed`: ``Forward`` adding ``Identity``
from a trunk, orig or dest not a TN     :class:`NotSigned`: ``Forward`` without one
                                        (nothing to attest; ATIS-1000074 lets it go
                                        unsigned, the far end sees No-TN-Validation)
======================================  ==============================================

The attestation level is the trunk's policy (``attestation.sign.attestation_level``: A for
a number the customer owns, B for other numbers of a known customer, C for a gateway
trunk), the origid the trunk's own or a fresh UUID. The orig TN comes from the
P-Asserted-Identity, else From; the dest TN from the Request-URI, else To — the same
fields, canonicalised the same way (``attestation.tn.tn_from_uri``), that the terminating
verifier binds the PASSporT to (RFC 8224 §8.3). Both kinds of result are written to the
attestation log as a ``signing`` record (action ``signed`` or ``forward_unsigned``).

Which trunk a source belongs to is the pure :func:`trunk_for_source` over a
:class:`TrunkTable` compiled once from config: the most specific CIDR wins, so a
``127.0.0.0/8`` gateway and a ``127.0.0.1/32`` customer can coexist; the same prefix in
two trunks is a config error.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from attestation.audit import AuditEntry
from attestation.config import SigningTrunk
from attestation.sign import Signer, SigningError, shaken_claims
from attestation.tn import tn_from_uri

from .prefixes import PrefixTable, compile_prefixes
from .prefixes import parse_source as parse_source  # re-exported for callers
from .screen import Forward, InviteFacts

SIGNING_KIND = "signing"
"""Attestation-log ``kind`` of the records this module writes."""
SIGNED_ACTION = "signed"
UNSIGNED_ACTION = "forward_unsigned"


# -- which trunk a source address belongs to -----------------------------------------------


@dataclass(frozen=True, slots=True)
class TrunkMatch:
    """The trunk an INVITE came from, and the configured prefix that said so."""

    name: str
    trunk: SigningTrunk
    network: str
    """The matching CIDR as configured (normalised), e.g. ``127.0.0.1/32``."""


@dataclass(frozen=True, slots=True)
class TrunkTable(PrefixTable[TrunkMatch]):
    """Source prefixes of every signing trunk (the shared :class:`proxy.prefixes.PrefixTable`)."""


def compile_trunks(trunks: Mapping[str, SigningTrunk]) -> TrunkTable:
    """The lookup table for ``trunks``' ``sources``. ValueError when one prefix is
    claimed by two trunks (which one would sign is then a guess) or is not a CIDR."""
    table = compile_prefixes(
        ((name, trunks[name].sources) for name in sorted(trunks)),
        lambda name, net: TrunkMatch(name, trunks[name], net),
        "signing_trunks",
    )
    return TrunkTable(table.levels)


def trunk_for_source(table: TrunkTable, source_ip: str) -> TrunkMatch | None:
    """The signing trunk ``source_ip`` belongs to (most specific prefix), or None."""
    return table.lookup(source_ip)


# -- signing one call ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Signed:
    """An outbound call we signed: the Identity header value and what it attests."""

    trunk: str
    identity: str
    attest: str
    origid: str
    orig_tn: str
    dest_tn: str
    iat: int
    x5u: str

    def forward(self, decision_id: str | None = None) -> Forward:
        """Forward with the Identity header added (no ``verstat``: we did not verify)."""
        return Forward(
            headers=(("Identity", self.identity),),
            decision_id=decision_id,
            note=f"signed attest {self.attest} for trunk {self.trunk}",
        )


@dataclass(frozen=True, slots=True)
class NotSigned:
    """An outbound call from a trunk that could not be signed, and why."""

    trunk: str
    reason: str
    """``no_orig_tn``, ``no_dest_tn`` or ``signing_error``."""
    detail: str
    orig_tn: str | None = None
    dest_tn: str | None = None

    def forward(self, decision_id: str | None = None) -> Forward:
        return Forward(
            decision_id=decision_id, note=f"not signed ({self.reason}) for trunk {self.trunk}"
        )


class OutboundSigning:
    """The STI-AS step of the call pipeline (``proxy.pipeline.CallScreener(signing=…)``)."""

    def __init__(
        self,
        signer: Signer,
        trunks: TrunkTable,
        *,
        country_code: str = "1",
        new_origid: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self.signer = signer
        self.trunks = trunks
        self.country_code = country_code
        self._new_origid = new_origid

    def outbound(self, facts: InviteFacts) -> Signed | NotSigned | None:
        """Sign ``facts``' call if it leaves the provider from a trunk; see the module."""
        if facts.identity:
            return None
        match = trunk_for_source(self.trunks, facts.source_ip)
        if match is None:
            return None
        cc = self.country_code
        orig_uri = facts.pai_uris[0] if facts.pai_uris else facts.from_uri
        orig = tn_from_uri(orig_uri, cc)
        dest = tn_from_uri(facts.request_uri, cc) or tn_from_uri(facts.to_uri, cc)
        if orig is None:
            why = f"calling party {orig_uri!r} is not a telephone number"
            return NotSigned(match.name, "no_orig_tn", why, None, dest)
        if dest is None:
            why = f"neither Request-URI nor To is a telephone number ({facts.request_uri!r})"
            return NotSigned(match.name, "no_dest_tn", why, orig, None)
        iat = int(facts.time)
        try:
            claims = shaken_claims(match.trunk, orig, (dest,), iat, new_origid=self._new_origid())
            identity = self.signer.identity(claims)
        except SigningError as exc:
            return NotSigned(match.name, "signing_error", str(exc), orig, dest)
        return Signed(
            match.name, identity, claims.attest, claims.origid, orig, dest, iat, self.signer.x5u
        )

    def audit_entry(
        self, facts: InviteFacts, result: Signed | NotSigned, elapsed_ms: float
    ) -> AuditEntry:
        """The attestation-log record of one outbound call (kind ``signing``)."""
        source = f"{facts.source_ip}:{facts.source_port}"
        if isinstance(result, Signed):
            return AuditEntry(
                time=facts.time,
                kind=SIGNING_KIND,
                call_id=facts.call_id,
                source=source,
                orig_tn=result.orig_tn,
                dest_tn=result.dest_tn,
                identity_headers=(result.identity,),
                passport_header={
                    "alg": "ES256",
                    "ppt": "shaken",
                    "typ": "passport",
                    "x5u": result.x5u,
                },
                passport_claims={
                    "attest": result.attest,
                    "dest": {"tn": [result.dest_tn]},
                    "iat": result.iat,
                    "orig": {"tn": result.orig_tn},
                    "origid": result.origid,
                },
                x5u=result.x5u,
                attest=result.attest,
                origid=result.origid,
                action=SIGNED_ACTION,
                elapsed_ms=elapsed_ms,
                details={"trunk": result.trunk},
            )
        return AuditEntry(
            time=facts.time,
            kind=SIGNING_KIND,
            call_id=facts.call_id,
            source=source,
            orig_tn=result.orig_tn,
            dest_tn=result.dest_tn,
            action=UNSIGNED_ACTION,
            elapsed_ms=elapsed_ms,
            details={"trunk": result.trunk, "unsigned": result.reason, "detail": result.detail},
        )
