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

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Literal, TypeVar, overload

from .grammar import TOKEN_RE, bounded_int, comma_spans, split_commas
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
        _KNOWN[_spelling] = COMPACT_FORMS.get(_n.lower(), _n.lower())
known_key = _KNOWN.get


def header_key(name: str) -> str:
    """Canonical lookup key: lower-case long form (``"V"`` and ``"VIA"`` give ``"via"``)."""
    key = _KEY_CACHE.get(name)
    if key is not None:
        return key
    low = name.strip().lower()
    key = COMPACT_FORMS.get(low, low)
    if len(_KEY_CACHE) < _KEY_CACHE_MAX:
        _KEY_CACHE[name] = key
    return key


def _checked(name: str, value: str) -> tuple[str, str]:
    """Refuse fields that would corrupt the wire form (header injection through a CR/LF
    in a value built from untrusted data is a programming error, not a parse error)."""
    if not isinstance(name, str) or not isinstance(value, str):
        raise TypeError("header names and values are str")
    if not TOKEN_RE.match(name) or "\r" in value or "\n" in value:
        raise ValueError(f"invalid header field {name[:40]!r}: {value[:40]!r}")
    return name, value


class Headers:
    """Ordered immutable sequence of ``(name, value)`` header fields, as received.

    Lookup is case-insensitive and understands compact forms. Edits return new objects.
    """

    __slots__ = ("_cache", "_fields", "_index", "_raw")

    _fields: tuple[tuple[str, str], ...]
    _index: dict[str, list[int]] | None
    _cache: dict[str, object]
    _raw: bytes | None

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        self._fields = tuple(_checked(n, v) for n, v in fields)
        self._index = None
        self._cache = {}
        self._raw = None

    @classmethod
    def _parsed(
        cls, fields: tuple[tuple[str, str], ...], index: dict[str, list[int]], raw: bytes | None
    ) -> Headers:
        h = cls.__new__(cls)
        h._fields = fields
        h._index = index
        h._cache = {}
        h._raw = raw
        return h

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
    def _idx(self) -> dict[str, list[int]]:
        index = self._index
        if index is None:
            index = {}
            known = _KNOWN.get
            for i, (name, _) in enumerate(self._fields):
                key = known(name) or header_key(name)
                pos = index.get(key)
                if pos is None:
                    index[key] = [i]
                else:
                    pos.append(i)
            self._index = index
        return index

    def positions(self, name: str) -> list[int]:
        """Indexes of the fields called ``name`` (in order)."""
        return self._idx().get(header_key(name), [])

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and header_key(name) in self._idx()

    def get(self, name: str) -> str | None:
        """Value of the first field called ``name``, or ``None``."""
        pos = self._idx().get(header_key(name))
        return self._fields[pos[0]][1] if pos else None

    def get_all(self, name: str) -> list[str]:
        """Every field value of ``name``, one entry per header line."""
        return [self._fields[i][1] for i in self._idx().get(header_key(name), ())]

    def values(self, name: str) -> list[str]:
        """Comma-separated elements of every ``name`` field (quote- and ``<>``-aware)."""
        out: list[str] = []
        for i in self._idx().get(header_key(name), ()):
            out.extend(split_commas(self._fields[i][1]))
        return out

    def cached(self, key: str, make: Callable[[], T]) -> T:
        """Parse once per Headers object: ``make()`` result stored under ``key``."""
        try:
            return self._cache[key]  # type: ignore[return-value]
        except KeyError:
            value = make()
            self._cache[key] = value
            return value

    # -- edits (each returns a new Headers) -------------------------------------------
    def _with(self, fields: Iterable[tuple[str, str]]) -> Headers:
        h = Headers.__new__(Headers)
        h._fields = tuple(fields)
        h._index = None
        h._cache = {}
        h._raw = None
        return h

    def add(self, name: str, value: str) -> Headers:
        """Append a field at the end."""
        return self._with((*self._fields, _checked(name, value)))

    def prepend(self, name: str, value: str) -> Headers:
        """Insert a field above all others (a new top Via or Record-Route, §16.6)."""
        return self._with((_checked(name, value), *self._fields))

    def remove(self, name: str) -> Headers:
        """Drop every field called ``name``."""
        drop = set(self.positions(name))
        if not drop:
            return self
        return self._with(f for i, f in enumerate(self._fields) if i not in drop)

    def replace(self, name: str, value: str) -> Headers:
        """Set ``name`` to one field with ``value``: the first field keeps its position and
        its spelling of the name; further fields of that name are dropped; appended if
        absent."""
        pos = self.positions(name)
        if not pos:
            return self.add(name, value)
        _checked(name, value)
        first, rest = pos[0], set(pos[1:])
        return self._with(
            (f[0], value) if i == first else f for i, f in enumerate(self._fields) if i not in rest
        )

    def _first_value_field(self, name: str) -> tuple[int, list[tuple[int, int]]] | None:
        """Position of the first ``name`` field holding a non-empty element, and the
        spans of its non-empty elements."""
        for i in self.positions(name):
            value = self._fields[i][1]
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
            return self._with(f for j, f in enumerate(self._fields) if j != i)
        fname, value = self._fields[i]
        rest = value[spans[1][0] :].strip()
        return self._with((fname, rest) if j == i else f for j, f in enumerate(self._fields))

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
        return self._with((fname, new) if j == i else f for j, f in enumerate(self._fields))

    def to_bytes(self) -> bytes:
        """Header block: one ``Name: value\\r\\n`` line per field (raw fast path)."""
        if self._raw is not None:
            return self._raw
        return "".join([f"{n}: {v}\r\n" for n, v in self._fields]).encode(
            "utf-8", "surrogateescape"
        )


class _Common:
    """Typed accessors shared by Request and Response (parsed lazily, cached)."""

    __slots__ = ()
    headers: Headers
    body: bytes

    @property
    def call_id(self) -> str | None:
        return self.headers.get("call-id")

    @property
    def cseq(self) -> CSeq:
        h = self.headers
        return h.cached("cseq", lambda: parse_cseq(h.get("cseq") or ""))

    @property
    def vias(self) -> list[Via]:
        """Every Via value, top first (a fresh list; the parsed values are cached)."""
        h = self.headers
        return list(h.cached("vias", lambda: tuple(parse_via(v) for v in h.values("via"))))

    @property
    def top_via(self) -> Via | None:
        h = self.headers
        return h.cached("via0", lambda: _top_via(h))

    @property
    def from_(self) -> NameAddr:
        h = self.headers
        return h.cached("from", lambda: parse_name_addr(h.get("from") or "", "From"))

    @property
    def to(self) -> NameAddr:
        h = self.headers
        return h.cached("to", lambda: parse_name_addr(h.get("to") or "", "To"))

    @property
    def max_forwards(self) -> int | None:
        h = self.headers
        v = h.get("max-forwards")
        return None if v is None else h.cached("mf", lambda: parse_max_forwards(v))

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
        return h.cached("route", lambda: parse_routes(h.values("route")))

    @property
    def record_routes(self) -> tuple[NameAddr, ...]:
        h = self.headers
        return h.cached("rr", lambda: parse_routes(h.values("record-route"), "Record-Route"))

    def option_tags(self, name: str) -> tuple[str, ...]:
        """Require / Proxy-Require / Supported / Unsupported option tags."""
        h = self.headers
        return h.cached("opt:" + name.lower(), lambda: parse_option_tags(h.values(name), name))


def _top_via(h: Headers) -> Via | None:
    for value in h.get_all("via"):
        first = split_commas(value)
        if first:
            return parse_via(first[0])
    return None


def _with_length(headers: Headers, body: bytes) -> Headers:
    cl = headers.get("content-length")
    n = len(body)
    if cl is not None and bounded_int(cl, n) == n and len(headers.positions("l")) == 1:
        return headers
    return headers.replace("Content-Length", str(n))


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
        return start + _with_length(self.headers, self.body).to_bytes() + b"\r\n" + self.body

    def with_headers(self, headers: Headers) -> Request:
        return replace(self, headers=headers)

    def with_uri(self, uri: Uri) -> Request:
        return replace(self, uri=uri)

    def with_body(self, body: bytes, content_type: str | None = None) -> Request:
        h = (
            self.headers
            if content_type is None
            else self.headers.replace("Content-Type", content_type)
        )
        return replace(self, body=body, headers=h)


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
        return start + _with_length(self.headers, self.body).to_bytes() + b"\r\n" + self.body

    def with_headers(self, headers: Headers) -> Response:
        return replace(self, headers=headers)

    def with_body(self, body: bytes, content_type: str | None = None) -> Response:
        h = (
            self.headers
            if content_type is None
            else self.headers.replace("Content-Type", content_type)
        )
        return replace(self, body=body, headers=h)


Message = Request | Response
