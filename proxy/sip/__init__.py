"""spitwall's sans-IO SIP message core (RFC 3261 §7, §19, §20, §25; RFC 3581; RFC 4475;
RFC 5118). No sockets, no clocks: bytes in, immutable values out.

API summary
-----------
Parsing / serializing::

    msg = parse_message(data: bytes, limits: Limits = Limits(), *, deep=False)
          -> Request | Response            # raises SipParseError only
    Limits(max_message_size=65535, max_headers=128, max_line_length=8192)
    msg.to_bytes() -> bytes                # Content-Length fixed to len(body); an
                                           # untouched header block goes out byte-exact,
                                           # and so do the untouched lines of an edited one

    Eagerly checked on every parse: start line (505 for a version other than 2.0),
    Request-URI, Via/From/To/Call-ID/CSeq present, singletons not repeated, CSeq method
    == request method, Call-ID, Max-Forwards 0..255 (absent is fine), top Via, From, To,
    Content-Length (short body -> 400, long -> truncated). ``deep=True`` (or
    ``check_deep(msg)``) also parses every Via, Contact, Route, Record-Route, option tags
    and Expires.

    Request(method: str, uri: Uri, headers: Headers, body=b"", version="SIP/2.0")
    Response(status: int, reason: str, headers: Headers, body=b"", version="SIP/2.0")
    .with_headers(h) / .with_body(b, content_type=None) / Request.with_uri(u)
    Typed views, parsed lazily and cached: .call_id (str|None), .cseq (CSeq number/method),
    .vias (list[Via]), .top_via (Via|None), .from_ / .to (NameAddr, .tag), .max_forwards
    (int|None), .content_length, .contacts (tuple[NameAddr] | "*"), .routes,
    .record_routes, .option_tags("Require"|"Proxy-Require"|"Supported"). A view of a
    malformed field raises SipParseError.

Headers (ordered, immutable, values as received; case-insensitive, compact forms)::

    h.get(name) -> str|None      h.get_all(name) -> list[str]   h.values(name) -> list[str]
    name in h                    h.prepend(name, value)          h.add(name, value)
    h.replace(name, value)       h.remove(name)                  h.remove_first_value(name)
    h.replace_first_value(name, value)   # e.g. top Via with received/rport
    Built fields are checked: a non-token name or CR/LF in a value raises ValueError.
    h.lookup_keys -> tuple[str, ...]     # header_key() of each field, in order

Cost model (why a relayed message is cheap): the parser checks From/To with one regex
(or a memo hit: ``grammar.Memo`` keeps the parsed name-addr, CSeq, Call-ID and URI of
recently seen field texts; not Vias, nearly all new) and hands over views whose URI is
parsed on first ``.uri``; ``NameAddr.lazy(uri_text, display_name, params)`` and
``.uri_text`` expose that.
A parsed sip: URI remembers its text for ``str()``. Lazy and memoised values equal the
eager parses (tests/sip/test_lazy.py). ``bench/core_bench.py`` measures the whole core.

Errors: ``SipParseError(reason, status=400)`` with ``.status`` (400/416/505/513),
``.reason`` (status-line phrase, e.g. "Bad Content-Length", "Missing Call-ID"),
``.headers`` (what could be read), ``.top_via/.call_id/.cseq/.from_/.to`` (raw values),
``.is_request``, ``.can_reply``. ``SipFramingError`` (subclass) from the stream framer:
answer if possible, then close the connection.

URIs: ``parse_uri(text) -> SipUri | TelUri | AbsoluteUri``; ``SipUri(host, user=None,
password=None, port=None, params=(), headers=(), scheme="sip")`` with ``.param(n)``,
``.with_param(n, v=None)``, ``.without_param(n)``, ``.lr``, ``.transport``, ``.maddr``,
``.user_unescaped``, ``.host_bare``, ``str()``; ``TelUri(number, params)`` with ``.digits``;
``AbsoluteUri(scheme, rest)`` for anything else (a Request-URI of that kind -> 416);
``uri_equivalent(a, b)`` is RFC 3261 §19.1.4 URI equality.

Header views (proxy.sip.headers): ``Via`` (.protocol, .transport, .host, .port, .branch,
.is_rfc3261_branch, .received, .rport, .has_rport, .maddr, .ttl, .sent_by,
.with_received_rport(ip, port), .with_param), ``NameAddr`` (.uri, .display_name, .params,
.tag, .with_tag), ``CSeq(number, method)``, ``parse_via``, ``parse_name_addr``,
``parse_cseq``, ``parse_contacts``, ``parse_routes``, ``parse_option_tags``.

Stream transports: ``StreamFramer(limits).feed(data) -> list[bytes]`` (whole messages,
same result for any chunking), ``.take_pings() -> int`` (RFC 5626 double-CRLF pings to
answer with one CRLF each), ``.idle``, ``.buffered``.

Replies (proxy.sip.reply): ``make_response(request, status, reason=None, *, to_tag=None,
headers=(), body=b"")`` per RFC 3261 §8.2.6 (stable To tag when none is given);
``error_response(err) -> Response | None`` — the stateless ``<status> <reason>`` for a
malformed request, None for a response or when Via/From/To/Call-ID/CSeq are missing.

Codes: ``StatusCode`` (IntEnum, ``.phrase``), ``reason_phrase(code)``.
"""

from .errors import SipFramingError, SipParseError
from .framing import StreamFramer
from .headers import CSeq, NameAddr, Via, parse_cseq, parse_name_addr, parse_via
from .message import Headers, Message, Request, Response, header_key
from .parser import Limits, check_deep, parse_message
from .reply import error_response, make_response
from .status import StatusCode, reason_phrase
from .uri import AbsoluteUri, SipUri, TelUri, Uri, parse_uri, uri_equivalent

__all__ = [
    "AbsoluteUri",
    "CSeq",
    "Headers",
    "Limits",
    "Message",
    "NameAddr",
    "Request",
    "Response",
    "SipFramingError",
    "SipParseError",
    "SipUri",
    "StatusCode",
    "StreamFramer",
    "TelUri",
    "Uri",
    "Via",
    "check_deep",
    "error_response",
    "header_key",
    "make_response",
    "parse_cseq",
    "parse_message",
    "parse_name_addr",
    "parse_uri",
    "parse_via",
    "reason_phrase",
    "uri_equivalent",
]
