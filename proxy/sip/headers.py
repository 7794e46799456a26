"""Typed views of the header fields a proxy relies on (RFC 3261 §20, RFC 3581, RFC 5118).

Why views and not the stored form: :class:`~proxy.sip.message.Headers` keeps every field
value exactly as received, and these classes are parsed from it on demand (and cached
there). A proxy edits a header by building a new value with ``str(view)`` and replacing
the field, so fields it never touched go out byte-for-byte as they came in.
"""

from __future__ import annotations

import re
from dataclasses import FrozenInstanceError, dataclass, field
from typing import Literal

from .errors import SipParseError
from .grammar import (
    TOKEN_CHARS,
    Memo,
    Params,
    bounded_int,
    drop_param,
    find_unquoted,
    format_params,
    is_token,
    lookup_param,
    param_map,
    parse_params,
    quote,
    read_quoted,
    set_param,
    slot_setters,
    split_checked_params,
)
from .uri import SIP_FAST_BODY, SipUri, Uri, parse_uri, sip_fast_ok, split_hostport

_VIA_RE = re.compile(
    r"\s*([A-Za-z0-9\-.!%*_+`'~]+)\s*/\s*([A-Za-z0-9\-.!%*_+`'~]+)\s*/\s*"
    r"([A-Za-z0-9\-.!%*_+`'~]+)\s+(\[[^\]]*\]|[^\s;:\[\]]+)\s*(?::\s*([^\s;]*))?\s*(;.*)?\Z",
    re.S,
)
_TOK = r"[A-Za-z0-9\-.!%*_+`'~]+"
_PV = r"[A-Za-z0-9\-.!%*_+`'~:\[\]/&$@?]+"
_VIA_FAST_RE = re.compile(
    rf"({_TOK})/({_TOK})/({_TOK}) ([A-Za-z0-9](?:[A-Za-z0-9\-_.]*[A-Za-z0-9_.])?)"
    rf"(?::([0-9]{{1,5}}))?((?:;{_TOK}(?:={_PV})?)*)\Z"
)
"""The canonical Via spelling (no LWS, hostname or IPv4); anything else takes the
general path, which accepts the same language with LWS and IPv6 and names errors."""
_NA_FAST_RE = re.compile(
    rf'(?:"([^"\\\r\n]*)" ?|({_TOK}(?: {_TOK})*) ?)?<([^<>\s"]+)>((?:;{_TOK}(?:={_PV})?)*)\Z'
)
_ADDR_FAST_RE = re.compile(
    rf'(?:"([^"\\\r\n]*)" ?|({_TOK}(?: {_TOK})*) ?)?<([Ss][Ii][Pp][Ss]?:{SIP_FAST_BODY})>'
    rf"((?:;{_TOK}(?:={_PV})?)*)\Z"
)
"""``_NA_FAST_RE`` with the sip: URI fast path inside: one match checks a whole From/To.
Groups: 1 quoted / 2 plain display name, 3 URI, 7 URI port, 10 header parameters."""
_CSEQ_FAST_RE = re.compile(rf"([0-9]{{1,10}}) ({_TOK})\Z")
_CALL_ID_RE = re.compile(
    r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+(?:@[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+)?\Z"
)
_DIGITS_RE = re.compile(r"[0-9]+\Z")
_ADDR_MEMO: Memo[NameAddr] = Memo()
_CSEQ_MEMO: Memo[CSeq] = Memo(256)
_CALL_ID_MEMO: Memo[str] = Memo()
MAX_CSEQ = 2**32 - 1
"""RFC 3261 §8.1.1.5: the CSeq number must fit in 32 bits (new ones stay below 2**31)."""


@dataclass(frozen=True, slots=True)
class Via:
    """One Via field value: ``SIP/2.0/UDP host:port;branch=...;received=...;rport``."""

    transport: str
    host: str
    port: int | None = None
    params: Params = ()
    protocol_name: str = "SIP"
    protocol_version: str = "2.0"
    _pmap: dict[str, str] | None = field(default=None, init=False, repr=False, compare=False)
    """:func:`~proxy.sip.grammar.param_map` of ``params``, made on the first ``param()``
    (a proxy reads branch, rport, received, alias of the same Via several times)."""

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        host = self.host
        if ":" in host and host[:1] != "[":
            host = f"[{host}]"  # RFC 5118 §4.5: sent-by IPv6 is a reference
        return (
            f"{self.protocol_name}/{self.protocol_version}/{self.transport} "
            f"{host}{port}{format_params(self.params)}"
        )

    def param(self, name: str) -> str | None:
        pmap = self._pmap
        if pmap is None:
            pmap = param_map(self.params)
            object.__setattr__(self, "_pmap", pmap)
        return lookup_param(pmap, name)

    @property
    def protocol(self) -> str:
        """``"SIP/2.0"`` as received (name and version)."""
        return f"{self.protocol_name}/{self.protocol_version}"

    @property
    def branch(self) -> str | None:
        return self.param("branch")

    @property
    def is_rfc3261_branch(self) -> bool:
        """True if the branch carries the magic cookie and more (RFC 3261 §8.1.1.7).

        ``branch=z9hG4bK`` alone (RFC 4475 §3.2.1) is *not* a usable transaction id.
        """
        b = self.branch
        return b is not None and len(b) > 7 and b.startswith("z9hG4bK")

    @property
    def received(self) -> str | None:
        return self.param("received")

    @property
    def has_rport(self) -> bool:
        return self.param("rport") is not None

    @property
    def rport(self) -> int | None:
        """The filled-in ``rport`` value, if any (``;rport`` alone gives ``None``)."""
        v = self.param("rport")
        return bounded_int(v, 65535) if v else None

    @property
    def maddr(self) -> str | None:
        return self.param("maddr") or None

    @property
    def ttl(self) -> int | None:
        v = self.param("ttl")
        return bounded_int(v, 255) if v else None

    @property
    def transport_upper(self) -> str:
        return self.transport.upper()

    @property
    def host_bare(self) -> str:
        return self.host[1:-1] if self.host.startswith("[") else self.host

    @property
    def sent_by(self) -> tuple[str, int]:
        """``(host, port)`` with the transport's default port (RFC 3261 §18.2.2)."""
        default = 5061 if self.transport_upper in ("TLS", "WSS") else 5060
        return self.host_bare, self.port if self.port is not None else default

    def with_param(self, name: str, value: str | None = None) -> Via:
        return Via(
            self.transport,
            self.host,
            self.port,
            set_param(self.params, name, value),
            self.protocol_name,
            self.protocol_version,
        )

    def without_param(self, name: str) -> Via:
        return Via(
            self.transport,
            self.host,
            self.port,
            drop_param(self.params, name),
            self.protocol_name,
            self.protocol_version,
        )

    def with_received_rport(self, ip: str, port: int) -> Via:
        """What a server stamps on the top Via of a request from ``(ip, port)``.

        RFC 3261 §18.2.1: add ``received`` when the sent-by host differs from the source
        address. RFC 3581 §4: if the Via has ``rport``, fill it with the source port and
        always add ``received``. IPv6 goes in without brackets (RFC 5118 §4.5).
        """
        via = self
        ip_bare = ip[1:-1] if ip.startswith("[") else ip
        if self.has_rport:
            via = via.with_param("received", ip_bare).with_param("rport", str(port))
        elif self.host_bare.lower() != ip_bare.lower():
            via = via.with_param("received", ip_bare)
        return via


_new = object.__new__
(
    _via_transport,
    _via_host,
    _via_port,
    _via_params,
    _via_name,
    _via_version,
    _via_pmap,
) = slot_setters(
    Via, ("transport", "host", "port", "params", "protocol_name", "protocol_version", "_pmap")
)


def _make_via(
    transport: str, host: str, port: int | None, params: Params, name: str, version: str
) -> Via:
    """``Via(...)`` for the parser's fast path, without the dataclass ``__init__``."""
    via: Via = _new(Via)
    _via_transport(via, transport)
    _via_host(via, host)
    _via_port(via, port)
    _via_params(via, params)
    _via_name(via, name)
    _via_version(via, version)
    _via_pmap(via, None)
    return via


def parse_via(value: str) -> Via:
    """Parse one Via field value (one comma element). 400 ``Bad Via`` when malformed."""
    # Not memoised, unlike the others: nearly every Via is new (its branch names one
    # transaction), and keeping thousands of them cost more in garbage collection than
    # the rare hit saved (bench/core_bench.py: about -20 µs/call without the memo).
    return _parse_via(value)


def _parse_via(value: str) -> Via:
    m = _VIA_FAST_RE.match(value)
    if m is not None:
        name, version, transport, host, port_text, params_text = m.groups()
        port = None if port_text is None else bounded_int(port_text, 65535)
        if port_text is None or port is not None:
            params = split_checked_params(params_text)
            _check_via_params(params, value)
            return _make_via(transport, host, port, params, name, version)
    return _parse_via_slow(value)


def _parse_via_slow(value: str) -> Via:
    m = _VIA_RE.match(value)
    if m is None:
        raise SipParseError("Bad Via", detail=value[:80])
    name, version, transport, host, port_text, params_text = m.groups()
    try:
        host, _ = split_hostport(host, value)
        port: int | None = None
        if port_text is not None:
            port = bounded_int(port_text, 65535)
            if port is None:
                raise SipParseError("Bad Via", detail=value[:80])
        params = parse_params(params_text or "", "Via")
    except SipParseError as exc:
        raise SipParseError("Bad Via", detail=exc.detail or value[:80]) from None
    _check_via_params(params, value)
    return Via(transport, host, port, params, name, version)


def _check_via_params(params: Params, value: str) -> None:
    for pname, pvalue in params:
        low = pname.lower()
        if low == "ttl" and (pvalue is None or bounded_int(pvalue, 255) is None):
            raise SipParseError("Bad Via", detail="ttl: " + value[:80])
        if low == "rport" and pvalue is not None and bounded_int(pvalue, 65535) is None:
            raise SipParseError("Bad Via", detail="rport: " + value[:80])
        if low in ("branch", "received", "maddr") and not pvalue:
            raise SipParseError("Bad Via", detail=f"{pname}: " + value[:80])


class NameAddr:
    """``[display-name] <URI> ;params`` or ``addr-spec ;params`` (From, To, Contact, Route).

    In the addr-spec form (no ``<>``) everything after the first ``;`` belongs to the
    header, not to the URI (RFC 3261 §20.10). ``display_name`` is unquoted/unescaped.

    An immutable value like the dataclasses beside it (``NameAddr(uri, display_name=None,
    params=(), angle=True)``, equality and hash over those four). Why not a dataclass: a
    proxy reads the tag of every From and To but the URI of few, so the parser may hand
    over the URI *text* it has already checked (:meth:`lazy`) and ``.uri`` parses it on
    first access — the value is the same as an eager parse, only later.
    """

    __slots__ = ("_pmap", "_uri", "_uri_text", "angle", "display_name", "params")
    __match_args__ = ("uri", "display_name", "params", "angle")

    _uri: Uri | None
    _uri_text: str
    _pmap: dict[str, str] | None
    display_name: str | None
    params: Params
    angle: bool

    def __init__(
        self,
        uri: Uri,
        display_name: str | None = None,
        params: Params = (),
        angle: bool = True,
    ) -> None:
        _set = object.__setattr__
        _set(self, "_uri", uri)
        _set(self, "_uri_text", "")
        _set(self, "display_name", display_name)
        _set(self, "params", params)
        _set(self, "angle", angle)
        _set(self, "_pmap", None)

    @classmethod
    def lazy(
        cls, uri_text: str, display_name: str | None, params: Params, angle: bool = True
    ) -> NameAddr:
        """A NameAddr whose URI is parsed from ``uri_text`` on first access. The caller
        vouches that ``parse_uri(uri_text)`` succeeds (see :func:`parse_name_addr`)."""
        na = object.__new__(cls)
        _na_uri(na, None)
        _na_uri_text(na, uri_text)
        _na_display(na, display_name)
        _na_params(na, params)
        _na_angle(na, angle)
        _na_pmap(na, None)
        return na

    @property
    def uri(self) -> Uri:
        uri = self._uri
        if uri is None:
            uri = parse_uri(self._uri_text)
            object.__setattr__(self, "_uri", uri)
        return uri

    @property
    def uri_text(self) -> str:
        """The URI as written (``str(uri)`` without parsing it when it was not yet)."""
        return str(self._uri) if self._uri is not None else self._uri_text

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def _key(self) -> tuple[Uri, str | None, Params, bool]:
        return (self.uri, self.display_name, self.params, self.angle)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not NameAddr:
            return NotImplemented
        assert isinstance(other, NameAddr)
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"NameAddr(uri={self.uri!r}, display_name={self.display_name!r}, "
            f"params={self.params!r}, angle={self.angle!r})"
        )

    def __reduce__(self) -> tuple[type[NameAddr], tuple[Uri, str | None, Params, bool]]:
        return (NameAddr, self._key())

    def __str__(self) -> str:
        uri_obj = self.uri
        uri = str(uri_obj)
        disp = ""
        if self.display_name is not None:
            dn = self.display_name
            plain = dn and all(is_token(w) for w in dn.split(" "))
            disp = (dn if plain else quote(dn)) + " "
        if (
            self.angle
            or disp
            or (isinstance(uri_obj, SipUri) and (uri_obj.params or uri_obj.headers))
            or any(c in uri for c in ",;?")
        ):
            return f"{disp}<{uri}>{format_params(self.params)}"
        return f"{uri}{format_params(self.params)}"

    def param(self, name: str) -> str | None:
        pmap = self._pmap
        if pmap is None:
            pmap = param_map(self.params)
            object.__setattr__(self, "_pmap", pmap)
        return lookup_param(pmap, name)

    @property
    def tag(self) -> str | None:
        for name, value in self.params:  # usually one parameter: no map needed
            if name == "tag" or (len(name) == 3 and name.lower() == "tag"):
                return value or None
        return None

    def with_param(self, name: str, value: str | None = None) -> NameAddr:
        return NameAddr(
            self.uri, self.display_name, set_param(self.params, name, value), self.angle
        )

    def without_param(self, name: str) -> NameAddr:
        return NameAddr(self.uri, self.display_name, drop_param(self.params, name), self.angle)

    def with_tag(self, tag: str) -> NameAddr:
        return self.with_param("tag", tag)

    def with_uri(self, uri: Uri) -> NameAddr:
        return NameAddr(uri, self.display_name, self.params, self.angle)


_na_uri, _na_uri_text, _na_display, _na_params, _na_angle, _na_pmap = slot_setters(
    NameAddr, ("_uri", "_uri_text", "display_name", "params", "angle", "_pmap")
)


def address_fast(value: str) -> re.Match[str] | None:
    """A match when ``value`` is a name-addr with a sip:/sips: URI that
    :func:`parse_name_addr` takes through its fast path (so it cannot fail), else None —
    the careful parser must decide. One regex, nothing built: the check the parser makes
    of every From and To, most of which a proxy only relays."""
    m = _ADDR_FAST_RE.match(value)
    if m is None or "%" in value:
        return None
    port = m.group(7)
    if port is not None and int(port) > 65535:
        return None
    return m


def address_from_match(m: re.Match[str]) -> NameAddr:
    """The (lazy) NameAddr of an :func:`address_fast` match: equal to ``parse_name_addr``."""
    quoted, plain, uri_text = m.group(1, 2, 3)
    params_text = m.group(10)
    return NameAddr.lazy(
        uri_text,
        quoted if quoted is not None else plain,
        split_checked_params(params_text) if params_text else (),
    )


def _display_tokens(text: str, whole: str) -> str:
    words = text.split()
    for w in words:
        if not all(c in TOKEN_CHARS for c in w):
            raise SipParseError("Bad Display Name", detail="non-token characters: " + whole[:80])
    return " ".join(words)


def parse_name_addr(value: str, what: str = "Address") -> NameAddr:
    """Parse a name-addr / addr-spec with header parameters.

    Raises ``SipParseError("Bad <what>")`` (400); ``detail`` says what is wrong (an
    unterminated quoted string, a non-token display name, spaces inside ``<>``, a bad URI).
    """
    na = _ADDR_MEMO.get(value)
    if na is None:
        na = _ADDR_MEMO.put(value, _parse_name_addr(value, what))
    return na


def checked_address(value: str, what: str) -> NameAddr:
    """:func:`parse_name_addr` for the parser's eager From/To check: one regex match in
    the common case (the NameAddr it gives parses its URI when read)."""
    na = _ADDR_MEMO.get(value)
    if na is None:
        m = address_fast(value)
        na = _ADDR_MEMO.put(
            value, address_from_match(m) if m is not None else _parse_name_addr(value, what)
        )
    return na


def _parse_name_addr(value: str, what: str) -> NameAddr:
    try:
        m = _NA_FAST_RE.match(value)
        if m is not None:
            quoted, plain, uri_text, params_text = m.groups()
            display = quoted if quoted is not None else plain
            params = split_checked_params(params_text) if params_text else ()
            colon = uri_text.find(":")
            if (
                3 <= colon <= 4
                and uri_text[:colon].lower() in ("sip", "sips")
                and sip_fast_ok(uri_text[colon + 1 :])
            ):
                return NameAddr.lazy(uri_text, display, params)  # parses when read
            return NameAddr(parse_uri(uri_text), display, params, True)
        return _parse_name_addr_slow(value, what)
    except SipParseError as exc:
        if exc.reason == f"Bad {what}":
            raise
        raise SipParseError(f"Bad {what}", detail=f"{exc.reason}: {exc.detail}") from None


def _parse_name_addr_slow(value: str, what: str = "Address") -> NameAddr:
    s = value.strip()
    if not s:
        raise SipParseError(f"Empty {what}")
    display: str | None = None
    if s[0] == '"':
        display, i = read_quoted(s, 0)
        lt = s.find("<", i)
        if lt < 0 or s[i:lt].strip():
            raise SipParseError(f"Bad {what}", detail=s[:80])
        return _bracketed(s, lt, display, what)
    lt = find_unquoted(s, "<") if '"' in s else s.find("<")
    if lt >= 0:
        before = s[:lt].strip()
        if before:
            display = _display_tokens(before, s)
        return _bracketed(s, lt, display, what)
    semi = s.find(";")
    uri_text = s if semi < 0 else s[:semi].rstrip()
    if any(c in uri_text for c in ' \t,?"') or ">" in uri_text:
        raise SipParseError(f"Bad {what}", detail="addr-spec needs <>: " + s[:80])
    params = parse_params(s[semi:] if semi >= 0 else "", what)
    return NameAddr(parse_uri(uri_text), None, params, angle=False)


def _bracketed(s: str, lt: int, display: str | None, what: str) -> NameAddr:
    gt = s.find(">", lt)
    if gt < 0:
        raise SipParseError(f"Bad {what}", detail="missing '>': " + s[:80])
    uri_text = s[lt + 1 : gt]
    if not uri_text or uri_text.strip() != uri_text or " " in uri_text:
        raise SipParseError(f"Bad {what}", detail="spaces in addr-spec: " + s[:80])
    params = parse_params(s[gt + 1 :], what)
    return NameAddr(parse_uri(uri_text), display, params, angle=True)


@dataclass(frozen=True, slots=True)
class CSeq:
    number: int
    method: str

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


def parse_cseq(value: str) -> CSeq:
    """``CSeq: <number> <method>`` (number below 2**32). 400 ``Bad CSeq`` when malformed."""
    return _CSEQ_MEMO.parsed(value, _parse_cseq)


def _parse_cseq(value: str) -> CSeq:
    m = _CSEQ_FAST_RE.match(value)
    if m is not None:
        fast = int(m.group(1))
        if fast <= MAX_CSEQ:
            return CSeq(fast, m.group(2))
    parts = value.split()
    if len(parts) != 2 or not _DIGITS_RE.match(parts[0]) or not is_token(parts[1]):
        raise SipParseError("Bad CSeq", detail=value[:80])
    number = bounded_int(parts[0], MAX_CSEQ)
    if number is None:
        raise SipParseError("Bad CSeq", detail="sequence number too large")
    return CSeq(number, parts[1])


def check_call_id(value: str) -> str:
    """``Call-ID: word[@word]`` (RFC 3261 §25.1). 400 ``Bad Call-ID`` when malformed.
    Every message of a call carries the same one: a memo hit after the first."""
    if value not in _CALL_ID_MEMO:
        if not _CALL_ID_RE.match(value):
            raise SipParseError("Bad Call-ID", detail=value[:80])
        _CALL_ID_MEMO.put(value, value)
    return value


def parse_max_forwards(value: str) -> int:
    """RFC 3261 §20.22: an integer 0..255 (leading zeros allowed)."""
    mf = bounded_int(value, 255)
    if mf is None:
        raise SipParseError("Bad Max-Forwards", detail=value[:40])
    return mf


def parse_content_length(value: str) -> int:
    """Octets of body; absurdly large values come back as 10**15 (larger than any limit)."""
    if not _DIGITS_RE.match(value):
        raise SipParseError("Bad Content-Length", detail=value[:40])
    n = bounded_int(value, 10**15)
    return 10**15 if n is None else n


STAR: Literal["*"] = "*"


def parse_contacts(values: list[str]) -> tuple[NameAddr, ...] | Literal["*"]:
    """Contact list of RFC 3261 §20.10; ``"*"`` alone (REGISTER removal) gives ``STAR``."""
    if len(values) == 1 and values[0] == "*":
        return STAR
    out = []
    for v in values:
        if v == "*":
            raise SipParseError("Bad Contact", detail="'*' mixed with addresses")
        out.append(parse_name_addr(v, "Contact"))
    for c in out:
        exp = c.param("expires")
        if exp is not None and bounded_int(exp, MAX_CSEQ) is None:
            raise SipParseError("Bad Contact", detail="expires: " + exp[:40])
    return tuple(out)


def parse_routes(values: list[str], what: str = "Route") -> tuple[NameAddr, ...]:
    """Route / Record-Route / Path lists: each element must be a name-addr (``<...>``)."""
    out = []
    for v in values:
        na = parse_name_addr(v, what)
        if not na.angle:
            raise SipParseError(f"Bad {what}", detail="route needs <>: " + v[:80])
        out.append(na)
    return tuple(out)


def parse_option_tags(values: list[str], what: str = "Require") -> tuple[str, ...]:
    """Require / Proxy-Require / Supported / Unsupported: a list of option-tag tokens."""
    for v in values:
        if not is_token(v):
            raise SipParseError(f"Bad {what}", detail=v[:80])
    return tuple(values)
