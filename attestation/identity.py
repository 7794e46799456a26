"""The SIP Identity header field (RFC 8224 §4): split, parse, and report what is wrong.

::

    Identity = "Identity" HCOLON signed-identity-digest SEMI ident-info
               *( SEMI ident-info-params )
    signed-identity-digest = 1*(base64-char / ".")
    ident-info       = "info" EQUAL ident-info-uri
    ident-info-uri   = LAQUOT absoluteURI RAQUOT
    ident-info-params = ident-info-alg / ident-type / ident-info-extension
    ident-info-alg   = "alg" EQUAL token
    ident-type       = "ppt" EQUAL token
    ident-info-extension = generic-param

Why a hand parser and not ``split(";")``: the ``info`` URI may itself hold ``;`` and ``=``
(secsipidx and Kamailio's secsipid break on it), ``ppt`` arrives quoted from some stacks
(OpenSIPS PR #2735), parameter names are case-insensitive, and a request may carry several
Identity values (SHAKEN, div, rcd) either as separate header fields or comma-joined in one.
Every malformed value becomes a ``Failure`` naming what is wrong; nothing here raises.

The digest is checked for the base64url alphabet (RFC 7515 §2: the PASSporT is a JWS in
compact serialisation); the erratum-era ``+``/``/`` characters of the RFC 8224 ABNF are
not base64url and are refused. Whether the token is the full or compact form is recorded,
not judged: the verifier decides (SHAKEN forbids compact, RFC 8588/ATIS-1000074).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .failure import Failure, Reason

_TOKEN_CHARS = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")  # RFC 3261 token
_B64URL_DOTS = re.compile(r"[A-Za-z0-9_\-.]+")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*:")
_WS = " \t\r\n"
_CANONICAL_FORM = re.compile(
    r"([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)"
    r";info=<([A-Za-z][A-Za-z0-9+\-.]*:[^\s<>\"]+)>"
    r"(?:;alg=([A-Za-z0-9]+))?(?:;ppt=([A-Za-z0-9]+))?"
)
"""``token;info=<uri>[;alg=x][;ppt=y]`` exactly, the shape nearly all traffic has."""
MAX_HEADER_LENGTH = 16384
"""Longer values are refused before parsing (a PASSporT with div and rcd stays far below)."""


@dataclass(frozen=True, slots=True)
class IdentityHeader:
    """One parsed Identity value."""

    token: str
    """The signed-identity-digest exactly as received (the PASSporT, full or compact form)."""
    info: str
    """The ``info`` URI without its angle brackets."""
    alg: str | None
    """The ``alg`` parameter (unquoted) or None when absent."""
    ppt: str | None
    """The ``ppt`` parameter (unquoted, as received) or None when absent."""
    params: tuple[tuple[str, str | None], ...]
    """Every parameter after the token, names lower-cased, values unquoted (info bracketed)."""
    raw: str

    @property
    def compact(self) -> bool:
        """RFC 8225 §7 compact form: header and payload segments left empty (``..sig``)."""
        parts = self.token.split(".")
        return len(parts) == 3 and (parts[0] == "" or parts[1] == "")


def split_values(fields: tuple[str, ...] | list[str]) -> list[str]:
    """Every Identity value in the given header fields, in order.

    A field may hold several comma-separated values (RFC 3261 §7.3.1 list syntax); commas
    inside ``<…>`` or quoted strings are not separators. Empty items are dropped.
    """
    out: list[str] = []
    for field in fields:
        if "," not in field:  # the common case: one value per field, no scan needed
            item = field.strip(_WS)
            if item:
                out.append(item)
            continue
        depth_angle = False
        quoted = False
        escaped = False
        start = 0
        for i, ch in enumerate(field):
            if quoted:
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == '"':
                    quoted = False
            elif ch == '"':
                quoted = True
            elif ch == "<":
                depth_angle = True
            elif ch == ">":
                depth_angle = False
            elif ch == "," and not depth_angle:
                item = field[start:i].strip(_WS)
                if item:
                    out.append(item)
                start = i + 1
        item = field[start:].strip(_WS)
        if item:
            out.append(item)
    return out


def parse(value: str) -> IdentityHeader | Failure:
    """Parse one Identity value; a ``Failure`` says precisely what is wrong."""
    fast = _CANONICAL_FORM.fullmatch(value)
    if fast is not None:  # what every STI-AS sends; the general parser below agrees with it
        token, info, alg, ppt = fast.groups()
        first = ("info", f"<{info}>")
        if alg is not None and ppt is not None:  # the usual spelling: no list to grow
            params: tuple[tuple[str, str | None], ...] = (first, ("alg", alg), ("ppt", ppt))
        else:
            params = (first,)
            if alg is not None:
                params += (("alg", alg),)
            if ppt is not None:
                params += (("ppt", ppt),)
        return IdentityHeader(token, info, alg, ppt, params, value)
    return _parse_general(value)


def _parse_general(value: str) -> IdentityHeader | Failure:
    raw = value
    if len(value) > MAX_HEADER_LENGTH:
        return Failure.of(
            Reason.MALFORMED_HEADER, f"Identity value longer than {MAX_HEADER_LENGTH}"
        )
    value = value.strip(_WS)
    semi = value.find(";")
    token = (value if semi < 0 else value[:semi]).strip(_WS)
    if not token:
        return Failure.of(Reason.MALFORMED_HEADER, "empty signed-identity-digest")
    if _B64URL_DOTS.fullmatch(token) is None:
        return Failure.of(
            Reason.MALFORMED_HEADER, "signed-identity-digest has characters outside base64url"
        )
    if token.count(".") != 2:
        return Failure.of(
            Reason.MALFORMED_HEADER,
            f"PASSporT must have 3 dot-separated segments, got {token.count('.') + 1}",
        )
    parsed = _parse_params(value[semi + 1 :] if semi >= 0 else "")
    if isinstance(parsed, Failure):
        return parsed
    params = parsed
    seen: dict[str, str | None] = {}
    for name, val in params:
        if name in ("info", "alg", "ppt") and name in seen:
            return Failure.of(Reason.MALFORMED_HEADER, f"duplicate {name!r} parameter")
        seen[name] = val
    if "info" not in seen:
        return Failure.of(Reason.MISSING_INFO, "Identity value has no 'info' parameter")
    info = seen["info"]
    if info is None or not (info.startswith("<") and info.endswith(">")):
        return Failure.of(Reason.BAD_INFO_URI, "'info' must be an absolute URI in <angle brackets>")
    uri = info[1:-1]
    if not uri or _SCHEME.match(uri) is None or any(c in uri for c in ' \t<>"'):
        return Failure.of(Reason.BAD_INFO_URI, f"'info' is not an absolute URI: {uri[:80]!r}")
    for name in ("alg", "ppt"):
        if name in seen and not seen[name]:
            return Failure.of(Reason.MALFORMED_HEADER, f"{name!r} parameter without a value")
    return IdentityHeader(
        token=token,
        info=uri,
        alg=seen.get("alg"),
        ppt=seen.get("ppt"),
        params=tuple(params),
        raw=raw,
    )


def _parse_params(text: str) -> list[tuple[str, str | None]] | Failure:
    """``name[=value]`` items separated by ``;`` with optional whitespace around ``;``/``=``.

    Values are a token, a quoted string (unquoted here), or ``<URI>`` (kept bracketed so the
    caller can tell a bracketed URI from a bare one).
    """
    out: list[tuple[str, str | None]] = []
    i, n = 0, len(text)
    while i <= n:
        i = _skip_ws(text, i)
        m = _TOKEN_CHARS.match(text, i)
        if m is None:
            if i >= n and not out and not text.strip(_WS):
                return out
            return Failure.of(Reason.MALFORMED_HEADER, f"bad parameter name at offset {i}")
        name = m.group(0).lower()
        i = _skip_ws(text, m.end())
        value: str | None = None
        if i < n and text[i] == "=":
            i = _skip_ws(text, i + 1)
            if i < n and text[i] == "<":
                end = text.find(">", i)
                if end < 0:
                    return Failure.of(Reason.BAD_INFO_URI, f"unterminated '<' in {name!r}")
                value = text[i : end + 1]
                i = end + 1
            elif i < n and text[i] == '"':
                j, buf = i + 1, []
                while j < n and text[j] != '"':
                    if text[j] == "\\" and j + 1 < n:
                        j += 1
                    buf.append(text[j])
                    j += 1
                if j >= n:
                    return Failure.of(Reason.MALFORMED_HEADER, f"unterminated quote in {name!r}")
                value = "".join(buf)
                i = j + 1
            elif name == "info":
                return Failure.of(Reason.BAD_INFO_URI, "'info' must be a URI in <angle brackets>")
            else:
                mv = _TOKEN_CHARS.match(text, i)
                if mv is None:
                    return Failure.of(Reason.MALFORMED_HEADER, f"bad value for {name!r}")
                value = mv.group(0)
                i = mv.end()
        out.append((name, value))
        i = _skip_ws(text, i)
        if i >= n:
            return out
        if text[i] != ";":
            return Failure.of(Reason.MALFORMED_HEADER, f"unexpected {text[i]!r} after {name!r}")
        i += 1
    return out


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WS:
        i += 1
    return i
