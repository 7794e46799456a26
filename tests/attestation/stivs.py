"""Helpers for the STI-VS/STI-AS tests: an in-memory certificate source and a call factory.

The in-memory source stands in for ``attestation.certs.CertificateService`` in unit tests
(no network, no chain validation: those are the certificate service's own tests); the
end-to-end tests use the real service against the local HTTPS x5u server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from attestation.config import AttestationConfig, SigningTrunk
from attestation.model import IdentityInput
from attestation.sign import Signer, shaken_claims
from attestation.verify import Verifier

NOW = 1_800_000_000.0
X5U = "https://cr.example.net/sp.pem"
ORIG = "12155551212"
DEST = "12155551213"
ORIGID = "123e4567-e89b-12d3-a456-426655440000"


@dataclass(frozen=True, slots=True)
class StaticResult:
    ok: bool
    reason: str | None = None
    sip_code: int | None = None
    sip_text: str | None = None
    public_key: Any = None
    spc: str | None = None
    fingerprint_sha256: str | None = None
    issuer: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class StaticCerts:
    """x5u → public key (or a failing result); counts lookups."""

    def __init__(self, keys: dict[str, Any] | None = None) -> None:
        self.keys: dict[str, Any] = dict(keys or {})
        self.calls: list[tuple[str, float]] = []

    async def get(self, x5u: str, at: float) -> StaticResult:
        self.calls.append((x5u, at))
        entry = self.keys.get(x5u)
        if entry is None:
            return StaticResult(False, "x5u_fetch_failed", 436, "Bad Identity Info")
        if hasattr(entry, "ok"):
            return entry
        return StaticResult(
            True, public_key=entry, spc="1234", fingerprint_sha256="ab" * 32, issuer="CN=Test CA"
        )


KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())
SIGNER = Signer(KEY, X5U)
TRUNK = SigningTrunk(kind="customer", owned_tns=(ORIG,), origid=ORIGID)


def shaken(
    orig: str = ORIG,
    dest: tuple[str, ...] = (DEST,),
    iat: float = NOW,
    attest_trunk: SigningTrunk = TRUNK,
    signer: Signer = SIGNER,
) -> str:
    return signer.identity(shaken_claims(attest_trunk, orig, dest, int(iat)))


def call(
    *identity: str,
    from_uri: str = f"sip:+{ORIG}@carrier.example;user=phone",
    to_uri: str = f"sip:+{DEST}@spitwall.example",
    request_uri: str | None = None,
    pai_uri: str | None = None,
    call_id: str = "call-1@test",
    now: float = NOW,
) -> IdentityInput:
    return IdentityInput(
        identity_headers=tuple(identity),
        from_uri=from_uri,
        to_uri=to_uri,
        request_uri=request_uri if request_uri is not None else to_uri,
        pai_uri=pai_uri,
        call_id=call_id,
        now=now,
    )


def verifier(certs: StaticCerts | None = None, **config: Any) -> Verifier:
    source = certs if certs is not None else StaticCerts({X5U: KEY.public_key()})
    return Verifier(AttestationConfig(**config), source)
