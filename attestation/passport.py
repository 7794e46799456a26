"""PASSporT tokens (RFC 8225) with the SHAKEN (RFC 8588) and div (RFC 8946) extensions.

Decoding is strict because every leniency here is an interop or security hole somewhere
else: base64url without padding and with zero spare bits (RFC 7515 §2, so one token has
one spelling), UTF-8 JSON objects without duplicate member names or NaN (RFC 7159 §4
leaves duplicates undefined; two parsers can see two different claims), JOSE ``crit``
refused, ``alg`` exactly ``ES256`` (RFC 8588; RFC 8725 §3.1 alg confusion), and TNs already
canonical (RFC 8225 §5.2.1). Unknown claims are kept and ignored (RFC 7519 §4).

The signature is verified over the *received* ``header.payload`` bytes (``signing_input``),
never over a re-serialisation (OpenSIPS rebuilds the JSON and then fails on extra claims
or another member order). ``encode`` produces RFC 8225 §9 deterministic JSON (members in
lexicographic order, no whitespace) for our own STI-AS.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from .failure import Failure, Reason
from .tn import is_canonical

SUPPORTED_PPTS = frozenset({"shaken", "div"})
ATTEST_LEVELS = frozenset({"A", "B", "C"})
_B64URL = re.compile(r"[A-Za-z0-9_\-]*")
MAX_SEGMENT = 8192
"""Longest header/payload segment accepted (characters)."""


@dataclass(frozen=True, slots=True)
class Passport:
    """A decoded full-form PASSporT; typed views of the claims SHAKEN and div define."""

    token: str
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    """ASCII ``base64url(header) "." base64url(payload)`` exactly as received."""
    signature: bytes
    """The raw JWS signature bytes (64 for ES256: ``r || s``)."""
    alg: str
    typ: str
    ppt: str | None
    x5u: str
    iat: float
    orig_tn: str
    dest_tns: tuple[str, ...]
    dest_uris: tuple[str, ...] = ()
    attest: str | None = None
    origid: str | None = None
    div_tn: str | None = None
    """RFC 8946 ``div.tn``: the TN the call was originally addressed to."""
    unknown_claims: tuple[str, ...] = field(default=())


def b64url_decode(segment: str) -> bytes | None:
    """Strict base64url (RFC 7515 §2): no padding, no other alphabet, zero spare bits."""
    if _B64URL.fullmatch(segment) is None or len(segment) % 4 == 1:
        return None
    try:
        data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        return None
    if b64url_encode(data) != segment:  # non-zero spare bits: a second spelling
        return None
    return data


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, val in pairs:
        if key in out:
            raise ValueError(f"duplicate member {key!r}")
        out[key] = val
    return out


def _json_object(data: bytes, what: str) -> dict[str, Any] | Failure:
    try:
        text = data.decode("utf-8", errors="strict")
        obj = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return Failure.of(Reason.BAD_JSON, f"{what}: {str(exc)[:120]}")
    if not isinstance(obj, dict):
        return Failure.of(Reason.BAD_JSON, f"{what} is not a JSON object")
    return obj


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def decode(token: str, *, expect_ppt: str | None = None) -> Passport | Failure:
    """Decode and type-check a full-form PASSporT; never raises.

    ``expect_ppt`` is the Identity header's ``ppt`` parameter: the claims required depend
    on it (``shaken``: attest/origid; ``div``: div).
    """
    parts = token.split(".")
    if len(parts) != 3:
        return Failure.of(Reason.MALFORMED_HEADER, f"expected 3 segments, got {len(parts)}")
    h64, p64, s64 = parts
    if h64 == "" or p64 == "":
        return Failure.of(Reason.COMPACT_FORM, "compact form PASSporT (RFC 8225 §7) not accepted")
    if len(h64) > MAX_SEGMENT or len(p64) > MAX_SEGMENT:
        return Failure.of(Reason.BAD_ENCODING, "PASSporT segment too long")
    hbytes, pbytes, sig = b64url_decode(h64), b64url_decode(p64), b64url_decode(s64)
    if hbytes is None:
        return Failure.of(Reason.BAD_ENCODING, "header is not unpadded base64url")
    if pbytes is None:
        return Failure.of(Reason.BAD_ENCODING, "payload is not unpadded base64url")
    if sig is None:
        return Failure.of(Reason.BAD_ENCODING, "signature is not unpadded base64url")
    header = _json_object(hbytes, "header")
    if isinstance(header, Failure):
        return header
    claims = _json_object(pbytes, "payload")
    if isinstance(claims, Failure):
        return claims
    hdr = check_header(header, expect_ppt)
    if isinstance(hdr, Failure):
        return hdr
    alg, typ, ppt, x5u = hdr
    return _check_claims(
        token, header, claims, f"{h64}.{p64}".encode("ascii"), sig, alg, typ, ppt, x5u
    )


def check_header(
    header: dict[str, Any], expect_ppt: str | None
) -> tuple[str, str, str | None, str] | Failure:
    """RFC 8225 §5.1 / RFC 8588: alg ES256, typ passport, ppt as announced, x5u present."""
    alg = header.get("alg")
    if not isinstance(alg, str):
        return Failure.of(Reason.UNSUPPORTED_ALG, "header 'alg' missing or not a string")
    if alg != "ES256":
        return Failure.of(Reason.UNSUPPORTED_ALG, f"alg {alg[:20]!r} is not ES256")
    if "crit" in header:
        return Failure.of(Reason.UNSUPPORTED_CRIT, "JOSE 'crit' names extensions we do not know")
    typ = header.get("typ")
    if typ != "passport":
        return Failure.of(Reason.BAD_TYP, f"typ must be 'passport', got {str(typ)[:20]!r}")
    ppt = header.get("ppt")
    if ppt is not None and not isinstance(ppt, str):
        return Failure.of(Reason.BAD_PPT, "header 'ppt' is not a string")
    if ppt != expect_ppt:
        return Failure.of(
            Reason.PPT_MISMATCH,
            f"Identity ppt parameter {expect_ppt!r} differs from PASSporT ppt {ppt!r}",
        )
    x5u = header.get("x5u")
    if not isinstance(x5u, str) or not x5u:
        return Failure.of(Reason.MISSING_X5U, "header 'x5u' missing or not a string")
    return alg, typ, ppt, x5u


def _tn_object(
    value: Any, what: str, *, many: bool
) -> tuple[tuple[str, ...], tuple[str, ...]] | Failure:
    """``{"tn": …, "uri": …}`` with tn a string (orig/div) or an array of strings (dest)."""
    if not isinstance(value, dict):
        return Failure.of(Reason.BAD_CLAIM, f"{what} is not a JSON object")
    tns: list[str] = []
    uris: list[str] = []
    for key, items in (("tn", tns), ("uri", uris)):
        if key not in value:
            continue
        raw = value[key]
        seq = raw if many else [raw]
        if many and (not isinstance(raw, list) or not raw):
            return Failure.of(Reason.BAD_CLAIM, f"{what}.{key} must be a non-empty array")
        for item in seq:
            if not isinstance(item, str) or not item:
                return Failure.of(
                    Reason.BAD_CLAIM, f"{what}.{key} holds a non-string or empty value"
                )
            if key == "tn" and not is_canonical(item):
                return Failure.of(
                    Reason.NON_CANONICAL_TN,
                    f"{what}.tn {item[:24]!r} is not canonical (RFC 8224 §8.3: digits only)",
                )
            items.append(item)
    if not tns and not uris:
        return Failure.of(Reason.MISSING_CLAIM, f"{what} has neither 'tn' nor 'uri'")
    return tuple(tns), tuple(uris)


def _check_claims(
    token: str,
    header: dict[str, Any],
    claims: dict[str, Any],
    signing_input: bytes,
    sig: bytes,
    alg: str,
    typ: str,
    ppt: str | None,
    x5u: str,
) -> Passport | Failure:
    for name in ("iat", "orig", "dest"):
        if name not in claims:
            return Failure.of(Reason.MISSING_CLAIM, f"required claim {name!r} missing")
    iat = claims["iat"]
    if not _is_number(iat):
        return Failure.of(Reason.BAD_CLAIM, "iat is not a JSON number")
    orig = _tn_object(claims["orig"], "orig", many=False)
    if isinstance(orig, Failure):
        return orig
    if not orig[0]:
        return Failure.of(Reason.MISSING_CLAIM, "orig.tn missing (SHAKEN signs telephone numbers)")
    dest = _tn_object(claims["dest"], "dest", many=True)
    if isinstance(dest, Failure):
        return dest
    attest: str | None = None
    origid: str | None = None
    div_tn: str | None = None
    if ppt == "shaken":
        if "attest" not in claims:
            return Failure.of(Reason.MISSING_CLAIM, "SHAKEN claim 'attest' missing")
        if not isinstance(claims["attest"], str) or claims["attest"] not in ATTEST_LEVELS:
            return Failure.of(Reason.BAD_ATTEST, f"attest {str(claims['attest'])[:8]!r} not A/B/C")
        attest = claims["attest"]
        origid = claims.get("origid")
        if not isinstance(origid, str) or not origid.strip():
            return Failure.of(Reason.MISSING_ORIGID, "SHAKEN claim 'origid' missing or empty")
    elif ppt == "div":
        if "div" not in claims:
            return Failure.of(Reason.MISSING_CLAIM, "div claim 'div' missing")
        div = _tn_object(claims["div"], "div", many=False)
        if isinstance(div, Failure):
            return div
        if not div[0]:
            return Failure.of(Reason.MISSING_CLAIM, "div.tn missing")
        div_tn = div[0][0]
    known = {"iat", "orig", "dest", "attest", "origid", "div"}
    return Passport(
        token=token,
        header=header,
        claims=claims,
        signing_input=signing_input,
        signature=sig,
        alg=alg,
        typ=typ,
        ppt=ppt,
        x5u=x5u,
        iat=float(iat),
        orig_tn=orig[0][0],
        dest_tns=dest[0],
        dest_uris=dest[1],
        attest=attest,
        origid=origid,
        div_tn=div_tn,
        unknown_claims=tuple(sorted(k for k in claims if k not in known)),
    )


def verify_signature(passport: Passport, public_key: Any) -> Failure | None:
    """ES256 over the received bytes with the leaf's P-256 key (RFC 7518 §3.4)."""
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
        public_key.curve, ec.SECP256R1
    ):
        return Failure.of(Reason.BAD_KEY, "certificate key is not EC P-256")
    sig = passport.signature
    if len(sig) != 64:
        return Failure.of(Reason.BAD_SIGNATURE, f"ES256 signature must be 64 bytes, got {len(sig)}")
    r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    if r == 0 or s == 0:
        return Failure.of(Reason.BAD_SIGNATURE, "signature r or s is zero")
    try:
        public_key.verify(
            encode_dss_signature(r, s), passport.signing_input, ec.ECDSA(hashes.SHA256())
        )
    except InvalidSignature:
        return Failure.of(Reason.BAD_SIGNATURE, "ES256 signature does not verify")
    return None


def canonical_json(obj: dict[str, Any]) -> bytes:
    """RFC 8225 §9: members in lexicographic order, no insignificant whitespace."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def encode(header: dict[str, Any], claims: dict[str, Any], key: ec.EllipticCurvePrivateKey) -> str:
    """Sign ``header``/``claims`` with ES256 and return the full-form PASSporT."""
    signing_input = (
        f"{b64url_encode(canonical_json(header))}.{b64url_encode(canonical_json(claims))}"
    )
    der = key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return f"{signing_input}.{b64url_encode(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
