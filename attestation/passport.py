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
import functools
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from .failure import Failure, Reason
from .tn import is_canonical

SUPPORTED_PPTS = frozenset({"shaken", "div"})
ATTEST_LEVELS = frozenset({"A", "B", "C"})
_CANONICAL_TN = re.compile(r"[0-9]{1,15}")
"""Same rule as ``tn.is_canonical``, inlined for the hot path."""
_B64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_B64URL_INDEX = {c: i for i, c in enumerate(_B64URL_ALPHABET)}
MAX_SEGMENT = 8192
"""Longest header/payload segment accepted (characters)."""


@dataclass(frozen=True, slots=True)
class Passport:
    """A decoded full-form PASSporT; typed views of the claims SHAKEN and div define.

    Only what the verifier reads on every call is a field (a frozen dataclass pays per
    field at construction, and this sits on the hot path); the rest are properties over
    the decoded ``header``/``claims``, which ``decode`` has already type-checked."""

    token: str
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    """ASCII ``base64url(header) "." base64url(payload)`` exactly as received."""
    signature: bytes
    """The raw JWS signature bytes (64 for ES256: ``r || s``)."""
    ppt: str | None
    x5u: str
    iat: float
    orig_tn: str
    dest_tns: tuple[str, ...]

    @property
    def alg(self) -> str:
        return str(self.header["alg"])

    @property
    def typ(self) -> str:
        return str(self.header["typ"])

    @property
    def attest(self) -> str | None:
        """SHAKEN ``attest`` (A/B/C); None for other ``ppt``s."""
        return self.claims["attest"] if self.ppt == "shaken" else None

    @property
    def origid(self) -> str | None:
        return self.claims["origid"] if self.ppt == "shaken" else None

    @property
    def div_tn(self) -> str | None:
        """RFC 8946 ``div.tn``: the TN the call was originally addressed to."""
        return self.claims["div"]["tn"] if self.ppt == "div" else None

    @property
    def dest_uris(self) -> tuple[str, ...]:
        return tuple(self.claims["dest"].get("uri", ()))

    @property
    def unknown_claims(self) -> tuple[str, ...]:
        """Claims this implementation does not interpret (ignored, RFC 7519 §4)."""
        return tuple(sorted(k for k in self.claims if k not in KNOWN_CLAIMS))


KNOWN_CLAIMS = frozenset({"iat", "orig", "dest", "attest", "origid", "div"})
"""Claims this module interprets; any other claim is carried along and ignored."""


def b64url_decode(segment: str) -> bytes | None:
    """Strict base64url (RFC 7515 §2): no padding, no other alphabet, zero spare bits.

    ``a2b_base64(strict_mode=True)`` refuses every character outside the standard alphabet
    and any misplaced ``=``; the standard-only ``+``/``/`` and our own ``=`` are refused
    first, so exactly the base64url alphabet passes (4x cheaper than a regex pass first).
    """
    rem = len(segment) % 4
    if rem == 1 or "+" in segment or "/" in segment or "=" in segment:
        return None
    # Spare bits of the last character must be zero, else one token has two spellings.
    if rem and _B64URL_INDEX.get(segment[-1], 0xFF) & (0x0F if rem == 2 else 0x03):
        return None
    try:
        std = segment.replace("-", "+").replace("_", "/")  # str.translate is 50x slower here
        return binascii.a2b_base64(std + _PAD[rem], strict_mode=True)
    except (binascii.Error, ValueError):  # ValueError: non-ASCII text
        return None


_PAD = ("", "", "==", "=")
"""Padding that completes an unpadded segment of length ``4k + index``."""


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate member {key!r}")
            seen.add(key)
    return out


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
"""One decoder for all tokens: duplicate member names and NaN/Infinity are errors."""
_SCAN: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]
"""The decoder's C scanner (the same hooks); ``_json_object`` uses it when it parses all."""


def _json_object(data: bytes, what: str) -> dict[str, Any] | Failure:
    try:
        text = data.decode()  # strict UTF-8
        try:  # the C scanner straight away: no whitespace regexes, no Python frames
            obj, end = _SCAN(text, 0)
        except StopIteration:
            end = -1
        if end != len(text):  # whitespace, trailing data or not JSON: the decoder judges
            obj = _DECODER.decode(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return Failure.of(Reason.BAD_JSON, f"{what}: {str(exc)[:120]}")
    if not isinstance(obj, dict):
        return Failure.of(Reason.BAD_JSON, f"{what} is not a JSON object")
    return obj


def _is_number(v: Any) -> bool:
    """A JSON number: int or finite float, never bool (``type`` is exact, so bool fails)."""
    kind = type(v)
    if kind is int:  # bounded: a 400-digit "NumericDate" must not overflow float()
        return bool(-_MAX_INT_CLAIM <= v <= _MAX_INT_CLAIM)
    return kind is float and math.isfinite(v)


_MAX_INT_CLAIM = 2**53
"""Largest integer a JSON number claim may hold (exact in IEEE doubles, RFC 7493 §2.2)."""


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
    head = _decode_header(h64, expect_ppt)
    if isinstance(head, Failure) and head.reason == Reason.BAD_ENCODING.value:
        return head
    pbytes, sig = b64url_decode(p64), b64url_decode(s64)
    if pbytes is None:
        return Failure.of(Reason.BAD_ENCODING, "payload is not unpadded base64url")
    if sig is None:
        return Failure.of(Reason.BAD_ENCODING, "signature is not unpadded base64url")
    if isinstance(head, Failure):
        return head
    header, (ppt, x5u) = head
    claims = _json_object(pbytes, "payload")
    if isinstance(claims, Failure):
        return claims
    return _check_claims(token, dict(header), claims, f"{h64}.{p64}".encode("ascii"), sig, ppt, x5u)


@functools.lru_cache(maxsize=512)
def _decode_header(
    h64: str, expect_ppt: str | None
) -> tuple[dict[str, Any], tuple[str | None, str]] | Failure:
    """Header segment → checked JOSE header. Pure, so memoised: one signer sends the same
    header bytes on every call (callers get a copy of the dict)."""
    hbytes = b64url_decode(h64)
    if hbytes is None:
        return Failure.of(Reason.BAD_ENCODING, "header is not unpadded base64url")
    header = _json_object(hbytes, "header")
    if isinstance(header, Failure):
        return header
    hdr = check_header(header, expect_ppt)
    if isinstance(hdr, Failure):
        return hdr
    return header, (hdr[2], hdr[3])


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
    if type(value) is dict and len(value) == 1:  # the usual {"tn": …}: check it directly
        tn = value.get("tn")
        if not many and type(tn) is str and _CANONICAL_TN.fullmatch(tn) is not None:
            return (tn,), ()
        if many and type(tn) is list and tn:
            if len(tn) == 1:  # one callee: no generator to run
                one = tn[0]
                if type(one) is str and _CANONICAL_TN.fullmatch(one) is not None:
                    return (one,), ()
            elif all(type(t) is str and _CANONICAL_TN.fullmatch(t) is not None for t in tn):
                return tuple(tn), ()
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
    ppt: str | None,
    x5u: str,
) -> Passport | Failure:
    if "iat" not in claims or "orig" not in claims or "dest" not in claims:
        name = next(n for n in ("iat", "orig", "dest") if n not in claims)
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
    if ppt == "shaken":
        if "attest" not in claims:
            return Failure.of(Reason.MISSING_CLAIM, "SHAKEN claim 'attest' missing")
        if not isinstance(claims["attest"], str) or claims["attest"] not in ATTEST_LEVELS:
            return Failure.of(Reason.BAD_ATTEST, f"attest {str(claims['attest'])[:8]!r} not A/B/C")
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
    return Passport(
        token, header, claims, signing_input, sig, ppt, x5u, float(iat), orig[0][0], dest[0]
    )


def _der_integer(raw: bytes) -> bytes:
    """DER INTEGER for an unsigned big-endian value (minimal, sign byte when needed)."""
    raw = raw.lstrip(b"\0") or b"\0"
    if raw[0] & 0x80:
        raw = b"\0" + raw
    return b"\x02" + bytes((len(raw),)) + raw


def raw_to_der(sig: bytes) -> bytes:
    """JWS ``r || s`` (RFC 7518 §3.4) → the DER ``ECDSA-Sig-Value`` OpenSSL verifies.
    Built by hand: at most 72 bytes, and 3x cheaper than a general ASN.1 encoder. When
    neither integer starts with a zero byte (255 in 256 of each) only the sign byte varies,
    so the framing comes from four prebuilt prefixes."""
    if len(sig) == 64 and sig[0] and sig[32]:
        rh, sh = sig[0] >> 7, sig[32] >> 7
        return _DER_HEAD[rh][sh] + sig[:32] + _DER_MID[sh] + sig[32:]
    r, s = _der_integer(sig[:32]), _der_integer(sig[32:])
    return b"\x30" + bytes((len(r) + len(s),)) + r + s


_DER_HEAD = tuple(
    tuple(bytes((0x30, 68 + rh + sh, 0x02, 32 + rh)) + b"\0" * rh for sh in (0, 1)) for rh in (0, 1)
)
"""SEQUENCE header and r's INTEGER header (+ sign byte), by r's and s's top bit."""
_DER_MID = (b"\x02\x20", b"\x02\x21\0")
"""s's INTEGER header (+ sign byte), by s's top bit."""


_ES256 = ec.ECDSA(hashes.SHA256())
_P256_KEY_TYPES: set[type] = set()
"""Key classes already seen to implement ``EllipticCurvePublicKey`` (an ABC check is slow)."""


def verify_signature(passport: Passport, public_key: Any) -> Failure | None:
    """ES256 over the received bytes with the leaf's P-256 key (RFC 7518 §3.4)."""
    kind = type(public_key)
    if kind not in _P256_KEY_TYPES:
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            return Failure.of(Reason.BAD_KEY, "certificate key is not an EC key")
        _P256_KEY_TYPES.add(kind)
    if not isinstance(public_key.curve, ec.SECP256R1):
        return Failure.of(Reason.BAD_KEY, "certificate key is not EC P-256")
    sig = passport.signature
    if len(sig) != 64:
        return Failure.of(Reason.BAD_SIGNATURE, f"ES256 signature must be 64 bytes, got {len(sig)}")
    if not (sig[0] and sig[32]) and (not sig[:32].strip(b"\0") or not sig[32:].strip(b"\0")):
        return Failure.of(Reason.BAD_SIGNATURE, "signature r or s is zero")
    try:
        public_key.verify(raw_to_der(sig), passport.signing_input, _ES256)
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
