"""The SIP message model: an ordered, immutable header list and Request/Response values.

Why raw header values: a proxy must not rewrite what it does not own (RFC 3261 §16.6
changes only Request-URI, Max-Forwards, Via, Record-Route and Route). :class:`Headers`
therefore stores each field as ``(name as received, value as received)`` — unfolded and
stripped, nothing else — and serializes an untouched header block byte-for-byte. Typed
views (:class:`~proxy.sip.headers.Via`, :class:`~proxy.sip.headers.NameAddr`, ...) are
parsed on demand and cached inside the (immutable) Headers object, so each is parsed
at most once per message. Every edit returns a new Headers; nothing is mutated.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, overload

from .grammar import TOKEN_RE, bounded_int, comma_spans, slot_setters, split_commas
from .headers import (
    CSeq,
    NameAddr,
    Via,
    parse_contacts,
    parse_cseq,
    parse_max_forwards,
    parse_name_addr,
    parse_option_tags,
    parse_routes,
    parse_via,
)
from .uri import Uri

T = TypeVar("T")

COMPACT_FORMS: dict[str, str] = {
    "a": "accept-contact",
    "b": "referred-by",
    "c": "content-type",
    "d": "request-disposition",
    "e": "content-encoding",
    "f": "from",
    "i": "call-id",
    "j": "reject-contact",
    "k": "supported",
    "l": "content-length",
    "m": "contact",
    "n": "identity-info",
    "o": "event",
    "r": "refer-to",
    "s": "subject",
    "t": "to",
    "u": "allow-events",
    "v": "via",
    "x": "session-expires",
    "y": "identity",
}
"""IANA "Header Field Parameters and Parameter Values" compact forms, lower-cased."""

_KEY_CACHE: dict[str, str] = {}
_KEY_CACHE_MAX = 4096
_COMMON = (
    "Via",
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Max-Forwards",
    "Contact",
    "Content-Type",
    "Content-Length",
    "Route",
    "Record-Route",
    "Allow",
    "Supported",
    "Require",
    "Proxy-Require",
    "User-Agent",
    "Server",
    "Expires",
    "Identity",
    "P-Asserted-Identity",
    "Privacy",
    "Diversion",
    "History-Info",
    "Reason",
    "Call-Info",
    "Accept",
    "Event",
    "Session-Expires",
    "Min-SE",
    "Authorization",
    "Proxy-Authorization",
    "WWW-Authenticate",
    "Proxy-Authenticate",
    "Subject",
    "Date",
    "Timestamp",
    "Warning",
    "Retry-After",
    "Allow-Events",
    "Referred-By",
    "Refer-To",
    "P-Charging-Vector",
    "Organization",
    "v",
    "f",
    "t",
    "i",
    "m",
    "l",
    "c",
    "k",
    "s",
    "e",
    "o",
    "r",
    "b",
    "u",
    "y",
    "x",
)
_KNOWN: dict[str, str] = {}
"""Header-name spellings already checked to be tokens, with their lookup key."""
for _n in _COMMON:
    for _spelling in (_n, _n.lower(), _n.upper()):
        _KNOWN[_spelling] = sys.intern(COMPACT_FORMS.get(_n.lower(), _n.lower()))
known_key = _KNOWN.get


def header_key(name: str) -> str:
    """Canonical lookup key: lower-case long form (``"V"`` and ``"VIA"`` give ``"via"``)."""
    key = _KNOWN.get(name) or _KEY_CACHE.get(name)
    if key is not None:
        return key
    low = name.strip().lower()
    key = sys.intern(COMPACT_FORMS.get(low, low))
    if len(_KEY_CACHE) < _KEY_CACHE_MAX:
        _KEY_CACHE[name] = key
    return key


def _checked(name: str, value: str) -> tuple[str, str]:
    """Refuse fields that would corrupt the wire form (header injection through a CR/LF
    in a value built from untrusted data is a programming error, not a parse error)."""
    if not isinstance(name, str) or not isinstance(value, str):
        raise TypeError("header names and values are str")
    if (name not in _KNOWN and not TOKEN_RE.match(name)) or "\r" in value or "\n" in value:
        raise ValueError(f"invalid header field {name[:40]!r}: {value[:40]!r}")
    return name, value


def _line(name: str, value: str) -> bytes:
    return f"{name}: {value}".encode("utf-8", "surrogateescape")


class Headers:
    """Ordered immutable sequence of ``(name, value)`` header fields, as received.

    Lookup is case-insensitive and understands compact forms. Edits return new objects.

    Why it is cheap for a proxy: beside the fields it keeps their lookup keys (one tuple,
    searched in C), the header block as received (``raw``) and, once edited, each field's
    wire line, so that a relayed message is re-serialised by joining the lines it did not
    change as they arrived plus the few it wrote (a new Via, Record-Route, Max-Forwards).
    """

    __slots__ = ("_cache", "_fields", "_keys", "_lines", "_raw")

    _fields: tuple[tuple[str, str], ...]
    _keys: tuple[str, ...] | None
    _cache: dict[str, Any]
    _raw: bytes | None
    _lines: tuple[bytes, ...] | None

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        self._fields = tuple([_checked(n, v) for n, v in fields])
        self._keys = None
        self._cache = {}
        self._raw = None
        self._lines = None

    @classmethod
    def _parsed(
        cls, fields: tuple[tuple[str, str], ...], keys: tuple[str, ...], raw: bytes | None
    ) -> Headers:
        """The parser's Headers: fields, their keys, and the block as received."""
        return _make(fields, keys, raw, None)

    @classmethod
    def _trusted(
        cls, fields: tuple[tuple[str, str], ...], keys: tuple[str, ...] | None = None
    ) -> Headers:
        """Fields whose names are tokens and whose values came out of a parsed message (no
        CR/LF), with their lookup keys if known: skip the per-field check (responses
        built from a request)."""
        return _make(fields, keys, None, None)

    def _with(
        self,
        fields: tuple[tuple[str, str], ...],
        keys: tuple[str, ...],
        lines: tuple[bytes, ...] | None,
    ) -> Headers:
        """An edit's result: new fields, keys and (when known) wire lines."""
        return _make(fields, keys, None, lines)

    # -- sequence protocol -------------------------------------------------------------
    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    @overload
    def __getitem__(self, i: int) -> tuple[str, str]: ...
    @overload
    def __getitem__(self, i: slice) -> tuple[tuple[str, str], ...]: ...
    def __getitem__(self, i: int | slice) -> tuple[str, str] | tuple[tuple[str, str], ...]:
        return self._fields[i]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self._fields == other._fields
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._fields)

    def __repr__(self) -> str:
        return f"Headers({list(self._fields)!r})"

    @property
    def fields(self) -> tuple[tuple[str, str], ...]:
        return self._fields

    @property
    def raw(self) -> bytes | None:
        """The header block exactly as received (each line with CRLF), when unmodified."""
        return self._raw

    # -- lookup -----------------------------------------------------------------------
    @property
    def lookup_keys(self) -> tuple[str, ...]:
        """The lookup key (:func:`header_key`) of each field, in order."""
        keys = self._keys
        if keys is None:
            known = _KNOWN.get
            keys = self._keys = tuple([known(n) or header_key(n) for n, _ in self._fields])
        return keys

    def positions(self, name: str) -> list[int]:
        """Indexes of the fields called ``name`` (in order)."""
        key = _KNOWN.get(name) or header_key(name)
        keys = self._keys or self.lookup_keys
        n = keys.count(key)
        if n < 2:
            return [keys.index(key)] if n else []
        return [i for i, k in enumerate(keys) if k == key]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (_KNOWN.get(name) or header_key(name)) in (
            self._keys or self.lookup_keys
        )

    def get(self, name: str) -> str | None:
        """Value of the first field called ``name``, or ``None``."""
        key = _KNOWN.get(name) or header_key(name)
        keys = self._keys or self.lookup_keys
        if key in keys:
            return self._fields[keys.index(key)][1]
        return None

    def get_all(self, name: str) -> list[str]:
        """Every field value of ``name``, one entry per header line."""
        key = _KNOWN.get(name) or header_key(name)
        keys = self._keys or self.lookup_keys
        n = keys.count(key)
        if n < 2:
            return [self._fields[keys.index(key)][1]] if n else []
        fields = self._fields
        out = []
        i = -1
        for _ in range(n):
            i = keys.index(key, i + 1)
            out.append(fields[i][1])
        return out

    def values(self, name: str) -> list[str]:
        """Comma-separated elements of every ``name`` field (quote- and ``<>``-aware)."""
        out: list[str] = []
        for value in self.get_all(name):
            out.extend(split_commas(value))
        return out

    def cached(self, key: str, make: Callable[[], T]) -> T:
        """Parse once per Headers object: ``make()`` result stored under ``key``."""
        try:
            return self._cache[key]  # type: ignore[no-any-return]
        except KeyError:
            value = make()
            self._cache[key] = value
            return value

    # -- edits (each returns a new Headers) -------------------------------------------
    def _wire(self) -> tuple[bytes, ...] | None:
        """Each field's wire line (no CRLF) when known without formatting: from the block
        as received, or kept through earlier edits; None for built headers."""
        lines = self._lines
        if lines is None and self._raw is not None:
            lines = self._lines = tuple(self._raw.split(b"\r\n")[:-1])
        return lines

    def _set(self, i: int, name: str, value: str) -> Headers:
        """Field ``i`` replaced by ``(name, value)`` (checked by the caller)."""
        lines = self._wire()
        return self._with(
            (*self._fields[:i], (name, value), *self._fields[i + 1 :]),
            self._keys or self.lookup_keys,
            None if lines is None else (*lines[:i], _line(name, value), *lines[i + 1 :]),
        )

    def _drop(self, drop: Iterable[int]) -> Headers:
        gone = set(drop)
        lines = self._wire()
        keys = self._keys or self.lookup_keys
        keep = [i for i in range(len(self._fields)) if i not in gone]
        return self._with(
            tuple([self._fields[i] for i in keep]),
            tuple([keys[i] for i in keep]),
            None if lines is None else tuple([lines[i] for i in keep]),
        )

    def add(self, name: str, value: str) -> Headers:
        """Append a field at the end."""
        field = _checked(name, value)
        lines = self._wire()
        return self._with(
            (*self._fields, field),
            (*(self._keys or self.lookup_keys), header_key(name)),
            None if lines is None else (*lines, _line(name, value)),
        )

    def prepend(self, name: str, value: str) -> Headers:
        """Insert a field above all others (a new top Via or Record-Route, §16.6)."""
        field = _checked(name, value)
        lines = self._wire()
        return self._with(
            (field, *self._fields),
            (header_key(name), *(self._keys or self.lookup_keys)),
            None if lines is None else (_line(name, value), *lines),
        )

    def remove(self, name: str) -> Headers:
        """Drop every field called ``name``."""
        pos = self.positions(name)
        if not pos:
            return self
        return self._drop(pos)

    def replace(self, name: str, value: str) -> Headers:
        """Set ``name`` to one field with ``value``: the first field keeps its position and
        its spelling of the name; further fields of that name are dropped; appended if
        absent."""
        pos = self.positions(name)
        if not pos:
            return self.add(name, value)
        _checked(name, value)
        first = pos[0]
        h = self._set(first, self._fields[first][0], value)
        return h._drop(pos[1:]) if len(pos) > 1 else h

    def _first_value_field(self, name: str) -> tuple[int, list[tuple[int, int]]] | None:
        """Position of the first ``name`` field holding a non-empty element, and the
        spans of its non-empty elements."""
        for i in self.positions(name):
            value = self._fields[i][1]
            if "," not in value:
                if value.strip():
                    return i, [(0, len(value))]
                continue
            spans = [s for s in comma_spans(value) if value[s[0] : s[1]].strip()]
            if spans:
                return i, spans
        return None

    def remove_first_value(self, name: str) -> Headers:
        """Pop the first comma element of ``name`` (fields with no element are skipped);
        drop the field when it becomes empty. For removing our own Via (§16.7) or a
        Route entry (§16.4)."""
        found = self._first_value_field(name)
        if found is None:
            return self
        i, spans = found
        if len(spans) == 1:
            return self._drop((i,))
        fname, value = self._fields[i]
        return self._set(i, fname, value[spans[1][0] :].strip())

    def replace_first_value(self, name: str, value: str) -> Headers:
        """Replace the first comma element of ``name`` (e.g. stamping ``received``/``rport``
        on the top Via, RFC 3581), keeping the other elements; appended if absent."""
        found = self._first_value_field(name)
        if found is None:
            return self.add(name, value)
        _checked(name, value)
        i, spans = found
        fname, old = self._fields[i]
        new = value if len(spans) == 1 else value + ", " + old[spans[1][0] :].strip()
        return self._set(i, fname, new)

    def to_bytes(self) -> bytes:
        """Header block: one ``Name: value\\r\\n`` line per field; fields not edited since
        they were received go out byte-for-byte as they came."""
        if self._raw is not None:
            return self._raw
        lines = self._lines
        if lines is not None:
            return b"\r\n".join(lines) + b"\r\n" if lines else b""
        return "".join([f"{n}: {v}\r\n" for n, v in self._fields]).encode(
            "utf-8", "surrogateescape"
        )


def _make(
    fields: tuple[tuple[str, str], ...],
    keys: tuple[str, ...] | None,
    raw: bytes | None,
    lines: tuple[bytes, ...] | None,
) -> Headers:
    """A Headers without ``__init__``'s per-field check (the callers vouch for the fields)."""
    h = Headers.__new__(Headers)
    h._fields = fields
    h._keys = keys
    h._cache = {}
    h._raw = raw
    h._lines = lines
    return h


_MISSING: Any = object()


class _Common:
    """Typed accessors shared by Request and Response (parsed lazily, cached).

    The parser has already checked (or parsed) the fields every proxy needs — Via, From,
    To, CSeq, Call-ID, Max-Forwards — so reading them cannot fail for a parsed message;
    the views of the others (Contact, Route, ...) are parsed on first access.
    """

    __slots__ = ()
    headers: Headers
    body: bytes

    @property
    def call_id(self) -> str | None:
        return self.headers.get("call-id")

    @property
    def cseq(self) -> CSeq:
        h = self.headers
        v = h._cache.get("cseq")
        if v is None:
            v = h._cache["cseq"] = parse_cseq(h.get("cseq") or "")
        return v

    @property
    def vias(self) -> list[Via]:
        """Every Via value, top first (a fresh list; the parsed values are cached)."""
        h = self.headers
        v = h._cache.get("vias")
        if v is None:
            values = h.values("via")
            top = h._cache.get("via0")
            if len(values) == 1 and top is not None:
                v = (top,)
            else:
                v = tuple([parse_via(x) for x in values])
            h._cache["vias"] = v
        return list(v)

    @property
    def top_via(self) -> Via | None:
        h = self.headers
        v = h._cache.get("via0", _MISSING)
        if v is _MISSING:
            v = h._cache["via0"] = _top_via(h)
        return v  # type: ignore[no-any-return]

    @property
    def from_(self) -> NameAddr:
        h = self.headers
        v = h._cache.get("from")
        if v is None:
            v = h._cache["from"] = parse_name_addr(h.get("from") or "", "From")
        return v

    @property
    def to(self) -> NameAddr:
        h = self.headers
        v = h._cache.get("to")
        if v is None:
            v = h._cache["to"] = parse_name_addr(h.get("to") or "", "To")
        return v

    @property
    def max_forwards(self) -> int | None:
        h = self.headers
        v = h._cache.get("mf", _MISSING)
        if v is _MISSING:
            raw = h.get("max-forwards")
            v = h._cache["mf"] = None if raw is None else parse_max_forwards(raw)
        return v  # type: ignore[no-any-return]

    @property
    def content_length(self) -> int:
        """The body length (what ``to_bytes`` puts in Content-Length)."""
        return len(self.body)

    @property
    def contacts(self) -> tuple[NameAddr, ...] | Literal["*"]:
        h = self.headers
        return h.cached("contact", lambda: parse_contacts(h.values("contact")))

    @property
    def routes(self) -> tuple[NameAddr, ...]:
        h = self.headers
        v = h._cache.get("route")
        if v is None:
            keys = h._keys or h.lookup_keys
            v = h._cache["route"] = parse_routes(h.values("route")) if "route" in keys else ()
        return v

    @property
    def record_routes(self) -> tuple[NameAddr, ...]:
        h = self.headers
        return h.cached("rr", lambda: parse_routes(h.values("record-route"), "Record-Route"))

    def option_tags(self, name: str) -> tuple[str, ...]:
        """Require / Proxy-Require / Supported / Unsupported option tags."""
        h = self.headers
        if name not in h:
            return ()
        return h.cached("opt:" + name.lower(), lambda: parse_option_tags(h.values(name), name))


def _top_via(h: Headers) -> Via | None:
    # split_commas takes a comma-free value (the usual single Via) without scanning it
    for value in h.get_all("via"):
        first = split_commas(value)
        if first:
            return parse_via(first[0])
    return None


def _block(headers: Headers, body: bytes) -> bytes:
    """The header block with Content-Length set to ``len(body)`` (added at the end when
    missing, rewritten in place when wrong, one field kept when repeated)."""
    keys = headers._keys or headers.lookup_keys
    n = len(body)
    count = keys.count("content-length")
    if count == 1:
        cl = headers._fields[keys.index("content-length")][1]
        if cl == str(n) or bounded_int(cl, n) == n:
            return headers.to_bytes()
    elif count == 0:
        return headers.to_bytes() + b"Content-Length: %d\r\n" % n
    return headers.replace("Content-Length", str(n)).to_bytes()


@dataclass(frozen=True, slots=True)
class Request(_Common):
    """A SIP request. ``uri`` is the parsed Request-URI; ``version`` as received."""

    method: str
    uri: Uri
    headers: Headers
    body: bytes = b""
    version: str = "SIP/2.0"

    def to_bytes(self) -> bytes:
        """Wire form; Content-Length is set to ``len(body)`` if missing or wrong."""
        start = f"{self.method} {self.uri} {self.version}\r\n".encode("utf-8", "surrogateescape")
        return start + _block(self.headers, self.body) + b"\r\n" + self.body

    def with_headers(self, headers: Headers) -> Request:
        return _request(self.method, self.uri, headers, self.body, self.version)

    def with_uri(self, uri: Uri) -> Request:
        return _request(self.method, uri, self.headers, self.body, self.version)

    def with_body(self, body: bytes, content_type: str | None = None) -> Request:
        h = (
            self.headers
            if content_type is None
            else self.headers.replace("Content-Type", content_type)
        )
        return Request(self.method, self.uri, h, body, self.version)


@dataclass(frozen=True, slots=True)
class Response(_Common):
    """A SIP response. ``reason`` may be empty (RFC 4475 §3.1.1.13)."""

    status: int
    reason: str
    headers: Headers
    body: bytes = b""
    version: str = "SIP/2.0"

    def to_bytes(self) -> bytes:
        start = f"{self.version} {self.status} {self.reason}\r\n".encode("utf-8", "surrogateescape")
        return start + _block(self.headers, self.body) + b"\r\n" + self.body

    def with_headers(self, headers: Headers) -> Response:
        return _response(self.status, self.reason, headers, self.body, self.version)

    def with_body(self, body: bytes, content_type: str | None = None) -> Response:
        h = (
            self.headers
            if content_type is None
            else self.headers.replace("Content-Type", content_type)
        )
        return Response(self.status, self.reason, h, body, self.version)


Message = Request | Response

_new = object.__new__
_req_method, _req_uri, _req_headers, _req_body, _req_version = slot_setters(
    Request, ("method", "uri", "headers", "body", "version")
)
_resp_status, _resp_reason, _resp_headers, _resp_body, _resp_version = slot_setters(
    Response, ("status", "reason", "headers", "body", "version")
)


def _request(method: str, uri: Uri, headers: Headers, body: bytes, version: str) -> Request:
    """``Request(...)`` through the slots' setters (see ``grammar.slot_setters``): the
    parser and the ``with_*`` edits of a relayed message make one per datagram."""
    req: Request = _new(Request)
    _req_method(req, method)
    _req_uri(req, uri)
    _req_headers(req, headers)
    _req_body(req, body)
    _req_version(req, version)
    return req


def _response(status: int, reason: str, headers: Headers, body: bytes, version: str) -> Response:
    """``Response(...)`` through the slots' setters."""
    resp: Response = _new(Response)
    _resp_status(resp, status)
    _resp_reason(resp, reason)
    _resp_headers(resp, headers)
    _resp_body(resp, body)
    _resp_version(resp, version)
    return resp
