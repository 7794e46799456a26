"""Shared lexical rules of RFC 3261 §25.1: tokens, quoted strings, comma lists, params.

Why a module of its own: Via, Contact, Route, URIs and the message container all split
on commas and semicolons that may hide inside quoted strings or ``<...>``; one careful
implementation keeps them consistent.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import SipParseError

V = TypeVar("V")

Params = tuple[tuple[str, str | None], ...]
"""Ordered ``(name, value)`` pairs as received; ``None`` for a flag (``;lr``)."""

TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")
TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+\Z")
_PARAM_VALUE_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~:\[\]/&$@?=]+\Z")
_LWS_RE = re.compile(r"[ \t]+")


class Memo(dict[str, V]):
    """A bounded memo of a pure parse: field text -> its (immutable) parsed value.

    Why: the same field values come back all the time — a call's From and To in each of
    its messages, ``1 INVITE`` in every call, the Request-URI of a busy callee, our own
    Route — and a dict lookup costs a fraction of a parse. Only successes are stored (a
    malformed value is parsed, and refused, every time), and only short texts. When full
    it starts over: the bounds keep a flood of distinct values from growing memory (at
    most ``limit`` x ``max_key`` characters plus their views); what is lost is speed.
    Kept views are objects the garbage collector walks: memoise only what comes back.
    """

    __slots__ = ("limit", "max_key")

    def __init__(self, limit: int = 4096, max_key: int = 256) -> None:
        super().__init__()
        self.limit = limit
        """Entries kept before starting over."""
        self.max_key = max_key
        """Longer texts are parsed but not kept: a peer's 8 KB header values must not
        make the memo hold ``limit`` of them (real field values are far shorter)."""

    def parsed(self, text: str, parse: Callable[[str], V]) -> V:
        """``parse(text)``, from the memo when seen before (only successes are kept)."""
        value = self.get(text)
        if value is None:
            value = self.put(text, parse(text))
        return value

    def put(self, key: str, value: V) -> V:
        if len(key) <= self.max_key:
            if len(self) >= self.limit:
                self.clear()
            self[key] = value
        return value


def slot_setters(cls: type, names: tuple[str, ...]) -> tuple[Callable[[Any, Any], None], ...]:
    """The slot descriptors' setters of a frozen slotted class, in ``names`` order.

    Why: the parser builds a Via, a URI, a NameAddr and a Request or Response for every
    datagram, and a frozen dataclass's ``__init__`` sets each field through
    ``object.__setattr__`` (a type lookup per field); calling the slot's own setter on
    ``object.__new__(cls)`` builds the same value in half the time. ``names`` must be every
    field (checked here, so a field added later cannot be left unset silently).
    """
    if dataclasses.is_dataclass(cls):
        fields = tuple(f.name for f in dataclasses.fields(cls))
        if set(fields) != set(names):
            raise TypeError(f"{cls.__name__}: setters for {names}, fields are {fields}")
    return tuple(cls.__dict__[n].__set__ for n in names)


def bounded_int(text: str, maximum: int) -> int | None:
    """``text`` as an int if it is ASCII digits (leading zeros allowed) and <= ``maximum``.

    Never calls ``int()`` on a huge digit string (CPython refuses > 4300 digits).
    """
    if not (text.isascii() and text.isdigit()):  # ASCII-only, so exactly [0-9]+
        return None
    if len(text) <= 9:
        value = int(text)
        return value if value <= maximum else None
    t = text.lstrip("0") or "0"
    if len(t) > len(str(maximum)):
        return None
    value = int(t)
    return value if value <= maximum else None


def is_token(text: str) -> bool:
    """``token`` of RFC 3261 §25.1 (non-empty)."""
    return TOKEN_RE.match(text) is not None


def split_commas(value: str) -> list[str]:
    """Split a header field value on the commas that separate list elements.

    Commas inside quoted strings (with ``\\`` escapes) and inside ``<...>`` are kept.
    Elements are stripped of surrounding whitespace; empty elements are dropped.
    """
    if "," not in value:  # one element (the common Route, Contact, P-Asserted-Identity)
        value = value.strip()
        return [value] if value else []
    if '"' not in value and "<" not in value:
        return [part for part in (p.strip() for p in value.split(",")) if part]
    return [value[a:b].strip() for a, b in comma_spans(value) if value[a:b].strip()]


def comma_spans(value: str) -> list[tuple[int, int]]:
    """``(start, end)`` offsets of each comma-separated element (unstripped, may be empty)."""
    spans: list[tuple[int, int]] = []
    start = 0
    in_quote = False
    in_angle = False
    i = 0
    n = len(value)
    while i < n:
        c = value[i]
        if in_quote:
            if c == "\\":
                i += 1
            elif c == '"':
                in_quote = False
        elif c == '"':
            in_quote = True
        elif in_angle:
            if c == ">":
                in_angle = False
        elif c == "<":
            in_angle = True
        elif c == ",":
            spans.append((start, i))
            start = i + 1
        i += 1
    spans.append((start, n))
    return spans


def find_unquoted(text: str, chars: str, start: int = 0) -> int:
    """Index of the first of ``chars`` outside a quoted string, or -1."""
    in_quote = False
    i = start
    n = len(text)
    while i < n:
        c = text[i]
        if in_quote:
            if c == "\\":
                i += 1
            elif c == '"':
                in_quote = False
        elif c == '"':
            in_quote = True
        elif c in chars:
            return i
        i += 1
    return -1


def read_quoted(text: str, start: int) -> tuple[str, int]:
    """Read the quoted string that starts at ``text[start] == '"'``.

    Returns ``(unescaped content, index after the closing quote)``.
    """
    out: list[str] = []
    i = start + 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            if i + 1 >= n:
                break
            out.append(text[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1
        out.append(c)
        i += 1
    raise SipParseError("Unterminated Quoted String", detail=text[:80])


def quote(text: str) -> str:
    """Render ``text`` as a quoted-string (escaping ``"`` and ``\\``)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_params(text: str, what: str) -> Params:
    """Parse ``;name[=value]`` parameters (``text`` starts at the first ``;`` or is empty).

    Whitespace around ``;`` and ``=`` is allowed (RFC 3261 SEMI/EQUAL are LWS-tolerant).
    Values keep their quotes if quoted, so serialization is faithful.
    """
    text = text.strip()
    if not text:
        return ()
    if text[0] != ";":
        raise SipParseError(f"Bad {what} Parameters", detail=text[:80])
    out: list[tuple[str, str | None]] = []
    if '"' not in text:
        pieces = text[1:].split(";")
    else:
        pieces = []
        i = 1
        while True:
            j = find_unquoted(text, ";", i)
            if j < 0:
                pieces.append(text[i:])
                break
            pieces.append(text[i:j])
            i = j + 1
    for piece in pieces:
        eq = piece.find("=")
        if eq < 0:
            name = piece.strip()
            value: str | None = None
        else:
            name = piece[:eq].strip()
            value = piece[eq + 1 :].strip()
            if value.startswith('"'):
                _, end = read_quoted(value, 0)
                if end != len(value):
                    raise SipParseError(f"Bad {what} Parameter", detail=piece[:80])
            elif not _PARAM_VALUE_RE.match(value):
                raise SipParseError(f"Bad {what} Parameter", detail=piece[:80])
        if not TOKEN_RE.match(name):
            raise SipParseError(f"Bad {what} Parameter", detail=piece[:80])
        out.append((name, value))
    return tuple(out)


def split_checked_params(text: str) -> Params:
    """``;a=b;c`` that a fast-path regex already validated (no quotes, no LWS)."""
    if not text:
        return ()
    out: list[tuple[str, str | None]] = []
    for piece in text[1:].split(";"):
        name, eq, value = piece.partition("=")
        out.append((name, value if eq else None))
    return tuple(out)


def format_params(params: Params) -> str:
    return "".join(f";{n}" if v is None else f";{n}={v}" for n, v in params)


def get_param(params: Params, name: str) -> str | None:
    """Value of the first parameter called ``name`` (case-insensitive); ``""`` for a flag."""
    lname = name.lower()
    for n, v in params:
        if n.lower() == lname:
            return "" if v is None else v
    return None


def param_map(params: Params) -> dict[str, str]:
    """``{lower-case name: value}`` of the first parameter of each name (``""`` for a
    flag): what :func:`get_param` answers, as one dict a parsed view can keep."""
    return {n.lower(): "" if v is None else v for n, v in reversed(params)}


def lookup_param(pmap: dict[str, str], name: str) -> str | None:
    """:func:`get_param` over a :func:`param_map`."""
    value = pmap.get(name)
    if value is None and not name.islower():
        value = pmap.get(name.lower())
    return value


def has_param(params: Params, name: str) -> bool:
    lname = name.lower()
    return any(n.lower() == lname for n, _ in params)


def set_param(params: Params, name: str, value: str | None) -> Params:
    """Replace the first parameter ``name`` in place, or append it."""
    lname = name.lower()
    out = list(params)
    for i, (n, _) in enumerate(out):
        if n.lower() == lname:
            out[i] = (n, value)
            return tuple(out)
    out.append((name, value))
    return tuple(out)


def drop_param(params: Params, name: str) -> Params:
    lname = name.lower()
    return tuple(p for p in params if p[0].lower() != lname)


def collapse_lws(text: str) -> str:
    return _LWS_RE.sub(" ", text)


_HEX = "0123456789abcdefABCDEF"


def unescape(text: str) -> str:
    """Decode ``%xx`` escapes (RFC 3261 §19.1.2) as UTF-8; invalid octets are kept escaped
    in the surrogateescape sense so nothing is lost. A ``%`` not followed by two hex digits
    is kept literally (RFC 4475 §3.1.1.5 asks parsers to survive it)."""
    if "%" not in text:
        return text
    out = bytearray()
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "%" and i + 2 < n and text[i + 1] in _HEX and text[i + 2] in _HEX:
            out.append(int(text[i + 1 : i + 3], 16))
            i += 3
            continue
        out += c.encode("utf-8", "surrogateescape")
        i += 1
    return out.decode("utf-8", "surrogateescape")
