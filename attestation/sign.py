"""The STIR/SHAKEN authentication service (STI-AS): signing policy and PASSporT signing.

Two halves, kept apart on purpose:

* :func:`shaken_claims` is the *policy*: a pure function from a trunk's configuration and
  the call's TNs to the claims an operator is willing to sign (ATIS-1000074 §5.2:
  ``A`` full attestation when the customer is known and owns the calling number, ``B``
  partial when the customer is known but the number is not theirs, ``C`` gateway when we
  only know where the call entered). It never touches keys, so it is tested with tables.
* :class:`Signer` turns claims into a signed full-form PASSporT (ES256, RFC 8225 §9
  deterministic JSON) and the Identity header value
  ``<jwt>;info=<x5u>;alg=ES256;ppt=shaken`` (RFC 8224 §4, RFC 8588). It also signs RFC 8946
  ``div`` PASSporTs for calls we retarget.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from . import passport as passport_mod
from .config import AttestationConfig, SigningTrunk
from .tn import is_canonical


class SigningError(ValueError):
    """Bad input to the signer (non-canonical TN, unknown attest, wrong key type)."""


@dataclass(frozen=True, slots=True)
class ShakenClaims:
    """The RFC 8588 claim set of one call."""

    orig_tn: str
    dest_tns: tuple[str, ...]
    attest: str
    origid: str
    iat: int

    def to_json(self) -> dict[str, Any]:
        return {
            "attest": self.attest,
            "dest": {"tn": list(self.dest_tns)},
            "iat": self.iat,
            "orig": {"tn": self.orig_tn},
            "origid": self.origid,
        }


def owns(trunk: SigningTrunk, tn: str) -> bool:
    """True when ``tn`` is one of the trunk's numbers (exact, or a ``prefix*`` entry)."""
    for entry in trunk.owned_tns:
        if entry.endswith("*"):
            if tn.startswith(entry[:-1]):
                return True
        elif tn == entry:
            return True
    return False


def attestation_level(trunk: SigningTrunk, orig_tn: str) -> str:
    """ATIS-1000074 §5.2 level for a call from ``orig_tn`` on ``trunk``."""
    if trunk.kind == "gateway":
        return "C"
    return "A" if owns(trunk, orig_tn) else "B"


def shaken_claims(
    trunk: SigningTrunk,
    orig_tn: str,
    dest_tns: Sequence[str],
    iat: int,
    *,
    new_origid: str | None = None,
) -> ShakenClaims:
    """The claims our STI-AS signs for one call (pure: ``new_origid`` is used only when the
    trunk has no fixed origid; pass ``str(uuid.uuid4())``)."""
    _check_tns(orig_tn, dest_tns)
    origid = trunk.origid or new_origid
    if not origid:
        raise SigningError("trunk has no origid and none was supplied")
    return ShakenClaims(orig_tn, tuple(dest_tns), attestation_level(trunk, orig_tn), origid, iat)


def _check_tns(orig_tn: str, dest_tns: Sequence[str]) -> None:
    if not is_canonical(orig_tn):
        raise SigningError(f"orig TN {orig_tn!r} is not canonical (digits with country code)")
    if not dest_tns:
        raise SigningError("at least one dest TN is needed")
    for tn in dest_tns:
        if not is_canonical(tn):
            raise SigningError(f"dest TN {tn!r} is not canonical (digits with country code)")


def load_private_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    """An EC P-256 private key from PEM (PKCS#8 or SEC1); SigningError otherwise."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningError(f"cannot read private key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise SigningError("ES256 needs an EC P-256 private key")
    return key


class Signer:
    """Signs PASSporTs with one key whose certificate chain is published at ``x5u``."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, x5u: str) -> None:
        if not isinstance(key.curve, ec.SECP256R1):
            raise SigningError("ES256 needs an EC P-256 private key")
        if not x5u.startswith("https://"):
            raise SigningError("x5u must be an https URL (ATIS-1000074)")
        self.key = key
        self.x5u = x5u

    def _header(self, ppt: str) -> dict[str, Any]:
        return {"alg": "ES256", "ppt": ppt, "typ": "passport", "x5u": self.x5u}

    def passport(self, claims: ShakenClaims) -> str:
        """The signed full-form SHAKEN PASSporT."""
        if claims.attest not in passport_mod.ATTEST_LEVELS:
            raise SigningError(f"attest must be A, B or C, got {claims.attest!r}")
        _check_tns(claims.orig_tn, claims.dest_tns)
        return passport_mod.encode(self._header("shaken"), claims.to_json(), self.key)

    def identity(self, claims: ShakenClaims) -> str:
        """The Identity header value ``<jwt>;info=<x5u>;alg=ES256;ppt=shaken``."""
        return self.header_value(self.passport(claims), "shaken")

    def div_identity(self, orig_tn: str, dest_tns: Sequence[str], div_tn: str, iat: int) -> str:
        """An RFC 8946 div Identity value: the call for ``div_tn`` now goes to ``dest_tns``."""
        _check_tns(orig_tn, dest_tns)
        if not is_canonical(div_tn):
            raise SigningError(f"div TN {div_tn!r} is not canonical")
        claims = {
            "dest": {"tn": list(dest_tns)},
            "div": {"tn": div_tn},
            "iat": iat,
            "orig": {"tn": orig_tn},
        }
        return self.header_value(passport_mod.encode(self._header("div"), claims, self.key), "div")

    def header_value(self, token: str, ppt: str) -> str:
        return f"{token};info=<{self.x5u}>;alg=ES256;ppt={ppt}"


def signer_from_config(config: AttestationConfig) -> Signer | None:
    """The STI-AS configured by ``signing_key``/``signing_x5u``; None when signing is off.
    A missing or unusable key is a SigningError naming the file (fail at start, not per call)."""
    if config.signing_key is None:
        return None
    try:
        pem = Path(config.signing_key).read_bytes()
    except OSError as exc:
        raise SigningError(f"signing_key {config.signing_key}: {exc.strerror or exc}") from None
    try:
        return Signer(load_private_key(pem), config.signing_x5u)
    except SigningError as exc:
        raise SigningError(f"signing_key {config.signing_key}: {exc}") from None


def sign_call(
    signer: Signer,
    trunk: SigningTrunk,
    orig_tn: str,
    dest_tns: Sequence[str],
    now: float,
) -> str:
    """Identity header value for a call leaving on ``trunk`` (the proxy's STI-AS mode)."""
    claims = shaken_claims(trunk, orig_tn, dest_tns, int(now), new_origid=str(uuid.uuid4()))
    return signer.identity(claims)
