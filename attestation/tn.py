"""Telephone numbers in canonical form (RFC 8224 §8.3) from tel URIs, SIP URIs and bare TNs.

Why: a PASSporT signs ``orig``/``dest`` as canonical TNs (digits with the country code, no
``+``, no visual separators) while the SIP request carries them in whatever form the
previous hop liked: ``tel:+1-215-555-1212``, ``sip:+12155551212;npdi@host;user=phone``,
``"Bob" <sip:2155551212@gw>``. Binding the PASSporT to the request means canonicalising the
request side with the same rules:

1. take the number: a tel URI's telephone-subscriber, a SIP URI's user part (without user
   parameters such as ``;npdi`` or ``;rn=``, percent-decoded), or the bare string;
2. a global number (leading ``+``) keeps its digits after removing the RFC 3966 visual
   separators ``- . ( )``;
3. a local tel number with a ``phone-context`` of the form ``+digits`` gets those digits in
   front; any other national number is completed with the configured country code, using
   ``phonenumbers`` to strip a national (trunk) prefix such as ``0`` or NANP ``1``;
4. anything left that is not 1-15 digits is not a telephone number (``None``).

The PASSporT side is *not* canonicalised: it must already be canonical (see
``is_canonical``), a signer sending ``+1-215…`` is sending a non-conforming PASSporT.
"""

from __future__ import annotations

import re

import phonenumbers

VISUAL_SEPARATORS = frozenset("-.()")
_CANONICAL = re.compile(r"[0-9]{1,15}")
_DIALABLE = re.compile(r"\+?[0-9\-.()]+")
_GLOBAL_URI = re.compile(r"(?:[Ss][Ii][Pp][Ss]?:|[Tt][Ee][Ll]:)\+([0-9]{1,15})(?=[@;]|$)")
_ANONYMOUS_USERS = frozenset({"anonymous", "restricted", "unavailable", "unknown", "private"})


def is_canonical(tn: str) -> bool:
    """True when ``tn`` is already RFC 8224 §8.3 canonical: 1-15 ASCII digits, nothing else."""
    return _CANONICAL.fullmatch(tn) is not None


def strip_separators(number: str) -> str:
    """Remove RFC 3966 visual separators (and nothing else)."""
    return number.replace("-", "").replace(".", "").replace("(", "").replace(")", "")


def canonicalize(number: str, country_code: str | None) -> str | None:
    """Canonical TN for a bare number (global with ``+`` or national), or None.

    ``country_code`` completes national numbers (``"1"``, ``"49"``); when None, national
    numbers are taken as they stand (digits only).
    """
    number = number.strip()
    if not number or _DIALABLE.fullmatch(number) is None:
        return None
    digits = strip_separators(number)
    if digits.startswith("+"):
        digits = digits[1:]
        return digits if is_canonical(digits) else None
    if not digits.isdigit():
        return None
    return _national(digits, country_code)


def _national(digits: str, country_code: str | None) -> str | None:
    if not country_code:
        return digits if is_canonical(digits) else None
    if not country_code.isdigit():
        return None
    region = phonenumbers.region_code_for_country_code(int(country_code))
    if region != "ZZ":
        try:
            parsed = phonenumbers.parse(digits, region)
        except phonenumbers.NumberParseException:
            parsed = None
        if (
            parsed is not None
            and str(parsed.country_code) == country_code
            and phonenumbers.is_possible_number(parsed)
        ):
            # E.164 formatting keeps the leading zeros some plans need (Italy).
            out = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)[1:]
            return out if is_canonical(out) else None
    candidate = digits if digits.startswith(country_code) else country_code + digits
    return candidate if is_canonical(candidate) else None


def _addr_spec(value: str) -> str:
    """The URI inside a name-addr (``"Bob" <sip:…>;tag=x``) or the value itself."""
    value = value.strip()
    lt = value.find("<")
    if lt >= 0:
        gt = value.find(">", lt)
        return value[lt + 1 : gt if gt >= 0 else len(value)].strip()
    return value


def uri_user(uri: str) -> tuple[str, str] | None:
    """``(scheme, number part)`` of a tel/sip/sips URI, or ``("", value)`` for a bare string.

    For tel URIs the number part keeps its ``;phone-context`` (needed for local numbers);
    for SIP URIs it is the user part without user parameters, percent-decoded. None when
    the URI has no user part at all.
    """
    spec = _addr_spec(uri)
    colon = spec.find(":")
    scheme = spec[:colon].lower() if colon > 0 else ""
    if scheme == "tel":
        return "tel", spec[colon + 1 :]
    if scheme in ("sip", "sips"):
        rest = spec[colon + 1 :]
        at = rest.rfind("@")
        if at < 0:
            return None
        user = rest[:at]
        # user:password — a TN user part never has a password
        user = user.split(":", 1)[0]
        return scheme, _percent_decode(user.split(";", 1)[0])
    if colon > 0 and not spec[:colon].lstrip("+").replace("-", "").isdigit():
        return None  # another scheme (mailto:, urn:, …)
    return "", spec


_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")


def _percent_decode(text: str) -> str:
    """RFC 3261 escaped user part (``%2B`` → ``+``). Done here rather than with
    ``urllib.parse``: this package's architecture test keeps network modules out."""
    if "%" not in text:
        return text
    return _PERCENT.sub(lambda m: chr(int(m.group(1), 16)), text)


def is_anonymous(uri: str) -> bool:
    """True for RFC 3323 anonymous identities (``sip:anonymous@anonymous.invalid``, …)."""
    if _GLOBAL_URI.match(uri) is not None:
        return False
    parts = uri_user(uri)
    if parts is None:
        spec = _addr_spec(uri).lower()
        return "anonymous.invalid" in spec
    user = parts[1].strip().lower()
    return user in _ANONYMOUS_USERS or "@anonymous.invalid" in _addr_spec(uri).lower()


def global_tn(uri: str) -> str | None:
    """The TN of a plain global-number URI (``sip:+12155551212@…``, ``tel:+1215…;…``), else
    None. The shape nearly all signed traffic has: such a URI is never anonymous and
    ``tn_from_uri`` gives the same TN; anything else needs ``tn_from_uri``."""
    fast = _GLOBAL_URI.match(uri)
    return None if fast is None else fast.group(1)


def tn_from_uri(uri: str, country_code: str | None) -> str | None:
    """Canonical TN carried by a tel/sip URI, name-addr, or bare number; None if none."""
    fast = _GLOBAL_URI.match(uri)
    if fast is not None:  # sip:+12155551212@…, tel:+12155551212;…: nothing to canonicalise
        return fast.group(1)
    parts = uri_user(uri)
    if parts is None:
        return None
    scheme, number = parts
    if scheme == "tel":
        subscriber, _, params = number.partition(";")
        if subscriber.strip().startswith("+"):
            return canonicalize(subscriber, country_code)
        context = _tel_param(params, "phone-context")
        if context is not None and context.startswith("+"):
            prefix = canonicalize(context, None)
            local = strip_separators(subscriber.strip())
            if prefix is None or not local.isdigit():
                return None
            joined = prefix + local
            return joined if is_canonical(joined) else None
        return canonicalize(subscriber, country_code)
    return canonicalize(number, country_code)


def _tel_param(params: str, name: str) -> str | None:
    for item in params.split(";"):
        key, _, val = item.partition("=")
        if key.strip().lower() == name:
            return val.strip()
    return None
