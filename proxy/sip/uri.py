"""SIP, SIPS, tel and other URIs (RFC 3261 §19.1 and §25.1, RFC 3966, RFC 5118).

Why components are kept *as received* (user still %-escaped, host and parameter names in
their original case): a proxy forwards URIs it does not own, and ``str(uri)`` of a parsed
URI must give back the same text. Comparisons that RFC 3261 §19.1.4 defines
case-insensitively are done by the accessors (``param()``, ``scheme_lower``), not by
rewriting the value.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from .errors import SipParseError
from .grammar import (
    Memo,
    Params,
    drop_param,
    format_params,
    get_param,
    lookup_param,
    param_map,
    set_param,
    slot_setters,
    split_checked_params,
    unescape,
)

_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*\Z")
# user = 1*( unreserved / escaped / user-unreserved )
_USER_RE = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]|%[0-9A-Fa-f]{2})+\Z")
# password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," )
_PASSWORD_RE = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()&=+$,]|%[0-9A-Fa-f]{2})*\Z")
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-_.]*[A-Za-z0-9_.])?\Z")
# uri-parameter names and values: paramchar = param-unreserved / unreserved / escaped
_PARAMCHARS_RE = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()\[\]/:&+$]|%[0-9A-Fa-f]{2})+\Z")
# hname / hvalue: hnv-unreserved / unreserved / escaped
_HNV_RE = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()\[\]/?:+$]|%[0-9A-Fa-f]{2})*\Z")
_TEL_GLOBAL_RE = re.compile(r"\+[0-9\-.()]*[0-9][0-9\-.()]*\Z")
_TEL_LOCAL_RE = re.compile(r"[0-9A-Fa-f*#\-.()]*[0-9A-Fa-f*#][0-9A-Fa-f*#\-.()]*\Z")
_OPAQUE_RE = re.compile(r"[^\s<>\"]+\Z")
_VISUAL = str.maketrans("", "", "-.()")
_SIP_FAST_RE = re.compile(
    r"(?:([A-Za-z0-9\-_.!~*'()&=+$,;?/%]+)(?::([A-Za-z0-9\-_.!~*'()&=+$,%]*))?@)?"
    r"([A-Za-z0-9](?:[A-Za-z0-9\-_.]*[A-Za-z0-9_.])?)(?::([0-9]{1,5}))?"
    r"((?:;[A-Za-z0-9\-_.!~*'()\[\]/:&+$%]+(?:=[A-Za-z0-9\-_.!~*'()\[\]/:&+$%]+)?)*)"
    r"(?:\?([A-Za-z0-9\-_.!~*'()\[\]/?:+$%]+=[A-Za-z0-9\-_.!~*'()\[\]/?:+$%]*"
    r"(?:&[A-Za-z0-9\-_.!~*'()\[\]/?:+$%]+=[A-Za-z0-9\-_.!~*'()\[\]/?:+$%]*)*))?\Z"
)
"""One-pass match of the common sip: URI (hostname or IPv4 host); anything else (IPv6
references, errors) takes the step-by-step path, which names the defect."""
_URI_MEMO: Memo[Uri] = Memo()
_BAD_ESCAPE_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
SIP_FAST_BODY = _SIP_FAST_RE.pattern[:-2]
"""The fast-path language without its anchor, for validators that embed a sip: URI
(``headers.address_fast``): what it matches with a port <= 65535 and no ``%``, the
fast path of :func:`parse_uri` accepts."""


@dataclass(frozen=True, slots=True)
class SipUri:
    """A ``sip:`` or ``sips:`` URI. ``user`` and ``password`` stay %-escaped as received."""

    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: Params = ()
    headers: tuple[tuple[str, str], ...] = ()
    scheme: str = "sip"
    _text: str | None = field(default=None, init=False, repr=False, compare=False)
    """The text this URI was parsed from, when ``str()`` would rebuild exactly it (set by
    the parser's fast path): a relayed Request-URI is then formatted once, not per use."""
    _pmap: dict[str, str] | None = field(default=None, init=False, repr=False, compare=False)
    """:func:`~proxy.sip.grammar.param_map` of ``params``, made on the first lookup."""

    def __str__(self) -> str:
        text = self._text
        if text is not None:
            return text
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out.append(":" + self.password)
            out.append("@")
        host = self.host
        out.append(f"[{host}]" if ":" in host and host[:1] != "[" else host)
        if self.port is not None:
            out.append(f":{self.port}")
        if self.params:
            out.append(format_params(self.params))
        if self.headers:
            out.append("?" + "&".join(f"{k}={v}" for k, v in self.headers))
        return "".join(out)

    @property
    def secure(self) -> bool:
        return self.scheme.lower() == "sips"

    @property
    def user_unescaped(self) -> str | None:
        """The user part with ``%xx`` escapes decoded (``%00`` gives a NUL character)."""
        return None if self.user is None else unescape(self.user)

    @property
    def host_lower(self) -> str:
        return self.host.lower()

    @property
    def host_bare(self) -> str:
        """The host without IPv6 reference brackets (for socket addresses)."""
        h = self.host
        return h[1:-1] if h.startswith("[") else h

    def param(self, name: str) -> str | None:
        """Value of URI parameter ``name`` (case-insensitive); ``""`` for a flag; ``None``."""
        pmap = self._pmap
        if pmap is None:
            pmap = param_map(self.params)
            object.__setattr__(self, "_pmap", pmap)
        return lookup_param(pmap, name)

    def has_param(self, name: str) -> bool:
        return self.param(name) is not None

    def with_param(self, name: str, value: str | None = None) -> SipUri:
        """A copy with ``;name[=value]`` set (replacing an existing parameter of that name)."""
        return _replace_params(self, set_param(self.params, name, value))

    def without_param(self, name: str) -> SipUri:
        return _replace_params(self, drop_param(self.params, name))

    def without_headers(self) -> SipUri:
        return SipUri(self.host, self.user, self.password, self.port, self.params, (), self.scheme)

    @property
    def transport(self) -> str | None:
        t = self.param("transport")
        return t.lower() if t else None

    @property
    def lr(self) -> bool:
        """True for a loose-routing URI (RFC 3261 §16.12 / §19.1.1 ``;lr``)."""
        return self.has_param("lr")

    @property
    def maddr(self) -> str | None:
        return self.param("maddr") or None

    @property
    def user_param(self) -> str | None:
        """``;user=phone`` etc., lower-cased."""
        u = self.param("user")
        return u.lower() if u else None


def _replace_params(uri: SipUri, params: Params) -> SipUri:
    return SipUri(uri.host, uri.user, uri.password, uri.port, params, uri.headers, uri.scheme)


@dataclass(frozen=True, slots=True)
class TelUri:
    """A ``tel:`` URI (RFC 3966): the number as written plus parameters."""

    number: str
    params: Params = ()
    scheme: str = "tel"

    def __str__(self) -> str:
        return f"{self.scheme}:{self.number}{format_params(self.params)}"

    @property
    def is_global(self) -> bool:
        return self.number.startswith("+")

    @property
    def digits(self) -> str:
        """The number without visual separators (``-.()``), keeping a leading ``+``."""
        return self.number.translate(_VISUAL)

    def param(self, name: str) -> str | None:
        return get_param(self.params, name)

    def with_param(self, name: str, value: str | None = None) -> TelUri:
        return TelUri(self.number, set_param(self.params, name, value), self.scheme)

    def without_param(self, name: str) -> TelUri:
        return TelUri(self.number, drop_param(self.params, name), self.scheme)


@dataclass(frozen=True, slots=True)
class AbsoluteUri:
    """Any other absolute URI (``http:``, ``urn:``, unknown schemes), kept opaque.

    A proxy answers a Request-URI of an unsupported scheme with 416 (RFC 3261 §8.2.2.1,
    RFC 4475 §3.3.2); in header fields such URIs are legal and forwarded untouched.
    """

    scheme: str
    rest: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.rest}"


Uri = SipUri | TelUri | AbsoluteUri


_new = object.__new__
(
    _uri_host,
    _uri_user,
    _uri_password,
    _uri_port,
    _uri_params,
    _uri_headers,
    _uri_scheme,
    _uri_text,
    _uri_pmap,
) = slot_setters(
    SipUri,
    ("host", "user", "password", "port", "params", "headers", "scheme", "_text", "_pmap"),
)
"""SipUri field setters for the fast path (see :func:`~proxy.sip.grammar.slot_setters`)."""


def parse_uri(text: str) -> Uri:
    """Parse an absolute URI. Raises :class:`SipParseError` (400, ``Bad URI``)."""
    return _URI_MEMO.parsed(text, _parse_uri)


def _parse_uri(text: str) -> Uri:
    colon = text.find(":")
    if colon <= 0:
        raise SipParseError("Bad URI", detail=text[:80])
    scheme = text[:colon]
    rest = text[colon + 1 :]
    low = scheme.lower()
    if low == "sip" or low == "sips":
        return _parse_sip(scheme, rest, text)
    if not _SCHEME_RE.match(scheme):
        raise SipParseError("Bad URI Scheme", detail=text[:80])
    if low == "tel":
        return _parse_tel(scheme, rest, text)
    if not _OPAQUE_RE.match(rest):
        raise SipParseError("Bad URI", detail=text[:80])
    return AbsoluteUri(scheme, rest)


def parse_sip_uri(text: str) -> SipUri:
    """Parse a URI that must be ``sip:``/``sips:`` (416 otherwise)."""
    uri = parse_uri(text)
    if not isinstance(uri, SipUri):
        raise SipParseError("Unsupported URI Scheme", 416, detail=text[:80])
    return uri


def _bad(text: str, what: str = "Bad SIP URI") -> SipParseError:
    return SipParseError(what, detail=text[:80])


def _parse_sip(scheme: str, rest: str, text: str) -> SipUri:
    m = _SIP_FAST_RE.match(rest)
    if m is not None and ("%" not in rest or _BAD_ESCAPE_RE.search(rest) is None):
        user, password, host, port_text, params_text, headers_text = m.groups()
        port = int(port_text) if port_text is not None else None
        if port is None or port <= 65535:
            params: Params = split_checked_params(params_text) if params_text else ()
            headers: tuple[tuple[str, str], ...] = ()
            if headers_text:
                headers = tuple(
                    (h[: h.find("=")], h[h.find("=") + 1 :]) for h in headers_text.split("&")
                )
            uri: SipUri = _new(SipUri)
            _uri_host(uri, host)
            _uri_user(uri, user)
            _uri_password(uri, password)
            _uri_port(uri, port)
            _uri_params(uri, params)
            _uri_headers(uri, headers)
            _uri_scheme(uri, scheme)
            # str() would rebuild the text, except for a port with leading zeros
            _uri_text(uri, text if port_text is None or port_text[0] != "0" else None)
            _uri_pmap(uri, None)
            return uri
    return _parse_sip_slow(scheme, rest, text)


def sip_fast_ok(rest: str) -> bool:
    """True when ``rest`` (a sip: URI after the colon) takes :func:`parse_uri`'s fast path,
    so a later parse cannot fail: a check without building anything."""
    m = _SIP_FAST_RE.match(rest)
    if m is None or ("%" in rest and _BAD_ESCAPE_RE.search(rest) is not None):
        return False
    port_text = m.group(4)
    return port_text is None or int(port_text) <= 65535


def _parse_sip_slow(scheme: str, rest: str, text: str) -> SipUri:
    at = rest.find("@")
    user: str | None = None
    password: str | None = None
    if at >= 0:
        userinfo = rest[:at]
        rest = rest[at + 1 :]
        c = userinfo.find(":")
        if c >= 0:
            user, password = userinfo[:c], userinfo[c + 1 :]
            if not _PASSWORD_RE.match(password):
                raise _bad(text)
        else:
            user = userinfo
        if not _USER_RE.match(user):
            raise _bad(text)
    headers: tuple[tuple[str, str], ...] = ()
    q = rest.find("?")
    if q >= 0:
        headers = _parse_uri_headers(rest[q + 1 :], text)
        rest = rest[:q]
    params: Params = ()
    semi = rest.find(";")
    if semi >= 0:
        params = _parse_uri_params(rest[semi:], text)
        rest = rest[:semi]
    host, port = split_hostport(rest, text)
    return SipUri(host, user, password, port, params, headers, scheme)


def split_hostport(hostport: str, text: str) -> tuple[str, int | None]:
    port: int | None = None
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise _bad(text)
        host = hostport[: end + 1]
        tail = hostport[end + 1 :]
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise _bad(text, "Bad IPv6 Reference") from None
        if tail:
            if not tail.startswith(":"):
                raise _bad(text)
            port = _port(tail[1:], text)
        return host, port
    c = hostport.find(":")
    if c >= 0:
        host = hostport[:c]
        port = _port(hostport[c + 1 :], text)
    else:
        host = hostport
    if not _HOSTNAME_RE.match(host):
        raise _bad(text, "Bad Host")
    return host, port


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not text.isascii() or len(text) > 5:
        raise _bad(whole, "Bad Port")
    value = int(text)
    if value > 65535:
        raise _bad(whole, "Bad Port")
    return value


def _parse_uri_params(text: str, whole: str) -> Params:
    out: list[tuple[str, str | None]] = []
    for piece in text[1:].split(";"):
        eq = piece.find("=")
        if eq < 0:
            if not _PARAMCHARS_RE.match(piece):
                raise _bad(whole, "Bad URI Parameter")
            out.append((piece, None))
        else:
            name, value = piece[:eq], piece[eq + 1 :]
            if not _PARAMCHARS_RE.match(name) or not _PARAMCHARS_RE.match(value):
                raise _bad(whole, "Bad URI Parameter")
            out.append((name, value))
    return tuple(out)


def _parse_uri_headers(text: str, whole: str) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for piece in text.split("&"):
        eq = piece.find("=")
        if eq <= 0:
            raise _bad(whole, "Bad URI Header")
        name, value = piece[:eq], piece[eq + 1 :]
        if not _HNV_RE.match(name) or not _HNV_RE.match(value):
            raise _bad(whole, "Bad URI Header")
        out.append((name, value))
    return tuple(out)


def _parse_tel(scheme: str, rest: str, text: str) -> TelUri:
    semi = rest.find(";")
    number = rest if semi < 0 else rest[:semi]
    params: Params = () if semi < 0 else _parse_uri_params(rest[semi:], text)
    if not (_TEL_GLOBAL_RE.match(number) or _TEL_LOCAL_RE.match(number)):
        raise SipParseError("Bad tel URI", detail=text[:80])
    return TelUri(number, params, scheme)


_MUST_MATCH = ("user", "ttl", "method", "maddr", "transport")


def uri_equivalent(a: Uri, b: Uri) -> bool:
    """URI equality of RFC 3261 §19.1.4 (e.g. "is this Route header mine?", §16.4).

    sip and sips never match; user and password compare case-sensitively after
    unescaping; host, parameter names and values case-insensitively (values unescaped);
    ``user``/``ttl``/``method``/``maddr``/``transport`` must match when either side has
    them, other parameters only when both do; URI headers must all match; an absent port
    differs from an explicit 5060.
    """
    if isinstance(a, SipUri) and isinstance(b, SipUri):
        if a.scheme.lower() != b.scheme.lower():
            return False
        if a.user_unescaped != b.user_unescaped:
            return False
        pa = None if a.password is None else unescape(a.password)
        pb = None if b.password is None else unescape(b.password)
        if pa != pb or a.host.lower() != b.host.lower() or a.port != b.port:
            return False
        da = {n.lower(): _norm(v) for n, v in a.params}
        db = {n.lower(): _norm(v) for n, v in b.params}
        for name in set(da) | set(db):
            if name in da and name in db:
                if da[name] != db[name]:
                    return False
            elif name in _MUST_MATCH:
                return False
        ha = {unescape(k).lower(): unescape(v) for k, v in a.headers}
        hb = {unescape(k).lower(): unescape(v) for k, v in b.headers}
        return ha == hb
    if isinstance(a, TelUri) and isinstance(b, TelUri):
        return a.digits.lower() == b.digits.lower() and {
            (n.lower(), _norm(v)) for n, v in a.params
        } == {(n.lower(), _norm(v)) for n, v in b.params}
    if isinstance(a, AbsoluteUri) and isinstance(b, AbsoluteUri):
        return a.scheme.lower() == b.scheme.lower() and a.rest == b.rest
    return False


def _norm(value: str | None) -> str | None:
    return None if value is None else unescape(value).lower()
