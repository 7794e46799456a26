"""Telephone numbers as the scorer sees them: canonical digits plus named signals.

Why this module exists: every list lookup, counter key and neighbour comparison needs the
*same* spelling of a number, and every odd caller identity (``Anonymous``, ``sip:alice@…``,
``+1 (212) 555-0123``, garbage) must become a named signal rather than an exception.

Canonical form follows ATIS-1000074: strip visual separators and the leading ``+``; national
numbers are read in the configured default region so that ``(212) 555-0123`` and
``+12125550123`` are both ``12125550123``. Validity and number type come from
``phonenumbers``' offline metadata; the NANP N11 and 555-01xx rules are checked by hand
because the metadata treats those ranges as ordinary numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberType


class NumberFlag(StrEnum):
    """A named property of a caller identity. Values are the signal names used in reasons."""

    ANONYMOUS = "number.anonymous"
    NOT_A_TN = "number.not_a_tn"
    NOT_POSSIBLE = "number.not_possible"
    UNALLOCATED = "number.unallocated"
    N11 = "number.n11"
    FICTION = "number.fiction"
    PREMIUM_RATE = "number.premium_rate"
    TOLL_FREE = "number.toll_free"


ANONYMOUS_USERS = frozenset(
    {
        "",
        "anonymous",
        "anonymous.invalid",
        "restricted",
        "private",
        "unavailable",
        "unknown",
        "withheld",
        "unknown-caller",
        "blocked",
    }
)
"""URI user parts that mean "no caller identity" (RFC 3323 §4.1.1.3 uses ``anonymous``)."""

MAX_IDENTITY_LENGTH = 256
"""Longer identities are not numbers; they are not parsed (bounds the parse cache too)."""

_SEPARATORS = re.compile(r"[\s\-.()/\[\]]")
_DIGITS = re.compile(r"^\+?[0-9]+$")
_N11 = frozenset(f"{d}11" for d in range(2, 10))

_TYPE_NAMES = {
    PhoneNumberType.FIXED_LINE: "fixed_line",
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.PERSONAL_NUMBER: "personal",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.VOICEMAIL: "voicemail",
    PhoneNumberType.UNKNOWN: "unknown",
}


@dataclass(frozen=True, slots=True)
class NumberInfo:
    """One caller or callee identity, read once."""

    raw: str
    """What was received (URI, user part or digits), unchanged."""
    user: str
    """The user part extracted from a SIP/tel URI, or the input itself."""
    digits: str = ""
    """Canonical E.164 digits without ``+`` (empty when the identity is not a number)."""
    country_code: int = 0
    national: str = ""
    """National significant number (no trunk prefix)."""
    area_code_len: int = 0
    """Length of the geographic area code within ``national`` (0 if none / unknown)."""
    region: str = ""
    """ISO region of the number, when the metadata knows it."""
    number_type: str = "unknown"
    possible: bool = False
    valid: bool = False
    flags: frozenset[NumberFlag] = frozenset()
    detail: str = ""
    """Why the identity is odd, in words (for reasons and logs)."""

    @property
    def anonymous(self) -> bool:
        return NumberFlag.ANONYMOUS in self.flags

    @property
    def is_tn(self) -> bool:
        """True when the identity yielded canonical digits."""
        return bool(self.digits)

    @property
    def nanp(self) -> bool:
        return self.country_code == 1 and len(self.national) == 10


def uri_user(value: str) -> str:
    """The user part of a ``sip:``/``sips:``/``tel:`` URI or name-addr; the value if not a URI.

    ``"Bob" <sip:+1-212-555-0123@host;user=phone>`` → ``+1-212-555-0123``;
    ``tel:+12125550123;verstat=TN-Validation-Passed`` → ``+12125550123``.
    """
    s = value.strip()
    if "<" in s:
        start = s.index("<") + 1
        end = s.find(">", start)
        s = s[start:] if end < 0 else s[start:end]
    s = s.strip()
    low = s.lower()
    for scheme in ("sips:", "sip:", "tel:"):
        if low.startswith(scheme):
            s = s[len(scheme) :]
            if scheme != "tel:":
                at = s.rfind("@")
                s = s[:at] if at >= 0 else ""
            break
    s = s.split(";", 1)[0]
    return s.split("?", 1)[0].strip()


def canonical(value: str) -> str:
    """ATIS-1000074 canonical digits of a string that is already E.164-ish, else ``""``.

    Only strips separators and ``+``; use :func:`read_number` to apply a default region.
    """
    s = _SEPARATORS.sub("", uri_user(value))
    return s.lstrip("+") if _DIGITS.match(s) else ""


def is_anonymous(value: str | None, privacy: str | None = None) -> bool:
    """Withheld identity: no value, an anonymous user part, or ``Privacy: id`` / ``header``."""
    if privacy is not None:
        tokens = {t.strip().lower() for t in privacy.replace(",", ";").split(";")}
        if tokens & {"id", "header", "user"}:
            return True
    if value is None:
        return True
    user = uri_user(value).lower()
    return user in ANONYMOUS_USERS


def read_number(value: str | None, region: str = "US", privacy: str | None = None) -> NumberInfo:
    """Read a caller/callee identity into a :class:`NumberInfo`. Never raises."""
    raw = "" if value is None else str(value)
    if is_anonymous(value, privacy):
        return NumberInfo(
            raw=raw,
            user=uri_user(raw),
            flags=frozenset({NumberFlag.ANONYMOUS}),
            detail="caller identity withheld" if privacy else "anonymous caller identity",
        )
    if len(raw) > MAX_IDENTITY_LENGTH:
        return NumberInfo(
            raw=raw[:MAX_IDENTITY_LENGTH],
            user="",
            flags=frozenset({NumberFlag.NOT_A_TN}),
            detail=f"identity of {len(raw)} characters is not a telephone number",
        )
    return _read_cached(raw, region)


@lru_cache(maxsize=32_768)
def _read_cached(raw: str, region: str) -> NumberInfo:
    user = uri_user(raw)
    stripped = _SEPARATORS.sub("", user)
    if not stripped or not _DIGITS.match(stripped):
        return NumberInfo(
            raw=raw,
            user=user,
            flags=frozenset({NumberFlag.NOT_A_TN}),
            detail=f"identity {user[:40]!r} is not a telephone number",
        )
    try:
        parsed = phonenumbers.parse(stripped, region if region else None)
    except NumberParseException as exc:
        digits = stripped.lstrip("+")
        return NumberInfo(
            raw=raw,
            user=user,
            digits=digits,
            flags=frozenset({NumberFlag.NOT_POSSIBLE}),
            detail=f"{digits[:20]} cannot be read as a number ({_parse_error(exc)})",
        )
    cc = int(parsed.country_code or 0)
    national = phonenumbers.national_significant_number(parsed)
    digits = f"{cc}{national}"
    possible = phonenumbers.is_possible_number(parsed)
    nanp = cc == 1 and len(national) == 10
    if not possible:
        number_region, valid, ntype, area_len = "", False, "unknown", 0
    elif nanp:
        number_region, valid, ntype = _nanp_class(national[:6], parsed)
        area_len = 3
    else:
        number_region, valid, ntype, area_len = _classify(parsed)
    flags: set[NumberFlag] = set()
    details: list[str] = []
    if not possible:
        flags.add(NumberFlag.NOT_POSSIBLE)
        details.append(f"+{digits} has an impossible length or leading digits")
    elif not valid:
        flags.add(NumberFlag.UNALLOCATED)
        details.append(f"+{digits} lies in an unassigned range")
    if nanp:
        npa, nxx, line = national[:3], national[3:6], national[6:]
        if npa in _N11 or nxx in _N11:
            flags.add(NumberFlag.N11)
            details.append(f"+{digits} uses an N11 code ({npa if npa in _N11 else nxx})")
        if nxx == "555" and "0100" <= line <= "0199":
            flags.add(NumberFlag.FICTION)
            details.append(f"+{digits} is in 555-0100…0199, reserved for fiction")
    if ntype == "premium_rate":
        flags.add(NumberFlag.PREMIUM_RATE)
        details.append(f"+{digits} is premium rate")
    elif ntype == "toll_free":
        flags.add(NumberFlag.TOLL_FREE)
        details.append(f"+{digits} is toll-free")
    return NumberInfo(
        raw=raw,
        user=user,
        digits=digits,
        country_code=cc,
        national=national,
        area_code_len=area_len,
        region=number_region,
        number_type=ntype,
        possible=possible,
        valid=valid,
        flags=frozenset(flags),
        detail="; ".join(details),
    )


def _classify(parsed: PhoneNumber) -> tuple[str, bool, str, int]:
    """Region, validity, type name and geographic area-code length of a possible number.

    ``region_code_for_number`` is the expensive step (it tries every region sharing the
    country code); it runs once and the region is reused for the validity check.
    """
    number_region = phonenumbers.region_code_for_number(parsed) or ""
    valid = bool(number_region) and phonenumbers.is_valid_number_for_region(parsed, number_region)
    if not valid:
        return number_region, False, "unknown", 0
    ntype = _TYPE_NAMES.get(phonenumbers.number_type(parsed), "unknown")
    return number_region, True, ntype, phonenumbers.length_of_geographical_area_code(parsed)


_NANP_CLASSES: dict[str, tuple[str, bool, str]] = {}
_NANP_CLASSES_MAX = 200_000


def _nanp_class(npa_nxx: str, parsed: PhoneNumber) -> tuple[str, bool, str]:
    """Region, validity and type of a NANP number, remembered per NPA-NXX.

    Why: the NANP metadata is written per NPA-NXX (the line digits never change the
    answer: checked on 18,000 random numbers), and classifying a +1 number means trying
    some 25 regions' patterns, a few hundred microseconds. Toll-free and premium-rate are
    whole NPAs, so the type needs no second metadata walk. The dict is bounded.
    """
    hit = _NANP_CLASSES.get(npa_nxx)
    if hit is None:
        npa = npa_nxx[:3]
        number_region = phonenumbers.region_code_for_number(parsed) or ""
        valid = bool(number_region) and phonenumbers.is_valid_number_for_region(
            parsed, number_region
        )
        if not valid:
            ntype = "unknown"
        elif npa in _NANP_TOLL_FREE:
            ntype = "toll_free"
        elif npa == "900":
            ntype = "premium_rate"
        elif npa[0] in "56":  # non-geographic services (personal, VoIP): rare, ask
            ntype = _TYPE_NAMES.get(phonenumbers.number_type(parsed), "unknown")
        else:
            ntype = "fixed_line_or_mobile"
        hit = (number_region, valid, ntype)
        if len(_NANP_CLASSES) >= _NANP_CLASSES_MAX:
            _NANP_CLASSES.clear()
        _NANP_CLASSES[npa_nxx] = hit
    return hit


_NANP_TOLL_FREE = frozenset({"800", "833", "844", "855", "866", "877", "888"})


def _parse_error(exc: NumberParseException) -> str:
    return str(exc).split(") ", 1)[-1].rstrip(".").lower()


def same_number(a: NumberInfo, b: NumberInfo) -> bool:
    """True when both identities are the same telephone number (caller == callee spoof)."""
    return bool(a.digits) and a.digits == b.digits


def dialled_digits(value: str) -> str:
    """Digits as dialled (no region applied): ``911``, ``112``, ``+44 999`` → ``44999``."""
    return _SEPARATORS.sub("", uri_user(value)).lstrip("+")


def is_emergency(callee: str, emergency_numbers: tuple[str, ...], region: str = "US") -> bool:
    """True when the callee is one of the configured emergency numbers.

    Matches the dialled digits, and also the national part when the dialled form carries the
    country code (``+1911``), so that a reformatting upstream proxy cannot hide 911.
    """
    dialled = dialled_digits(callee)
    if not dialled or not dialled.isdigit():
        return False
    if dialled in emergency_numbers:
        return True
    cc = phonenumbers.country_code_for_region(region) if region else 0
    prefix = str(cc) if cc else ""
    return (
        bool(prefix) and dialled.startswith(prefix) and dialled[len(prefix) :] in emergency_numbers
    )
