"""Bytes → :class:`Request` / :class:`Response` (RFC 3261 §7, §18.3, §20; RFC 4475).

Why this order of checks: the header fields are split first, so that even when the
start line or a mandatory header is bad the :class:`SipParseError` carries the Via,
From, To, Call-ID and CSeq a proxy needs to answer ``400 <what is wrong>`` statelessly.
The fields a proxy relies on for every request (Request-URI, top Via, From, To,
Call-ID, CSeq, Max-Forwards, Content-Length) are checked eagerly; the rest (Contact,
Route, Record-Route, option tags, lower Vias) only when asked, or all at once with
``deep=True``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import SipParseError
from .grammar import TOKEN_RE, bounded_int
from .headers import (
    MAX_CSEQ,
    check_call_id,
    checked_address,
    parse_content_length,
    parse_cseq,
    parse_max_forwards,
)
from .message import (
    Headers,
    Message,
    Request,
    Response,
    _req_body,
    _resp_body,
    header_key,
    known_key,
)
from .message import _request as _new_request
from .message import _response as _new_response
from .uri import SipUri, parse_uri


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits for one message (a peer must not make us buffer without bound)."""

    max_message_size: int = 65535
    """Bytes in one message, start line to end of body (UDP's maximum by default)."""
    max_headers: int = 128
    """Header fields after unfolding."""
    max_line_length: int = 8192
    """Characters in one header line before unfolding (and in the start line)."""


DEFAULT_LIMITS = Limits()


_VERSION_RE = re.compile(r"[Ss][Ii][Pp]/([0-9]+)\.([0-9]+)\Z")
_STATUS_RE = re.compile(r"([Ss][Ii][Pp]/[0-9]+\.[0-9]+) ([1-6][0-9][0-9])(?: (.*))?\Z", re.S)
_STATUS_FIRST = frozenset("123456")
_BAD_TEXT_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_MANDATORY = (
    ("via", "Via"),
    ("from", "From"),
    ("to", "To"),
    ("call-id", "Call-ID"),
    ("cseq", "CSeq"),
)
_MANDATORY_KEYS = frozenset(key for key, _ in _MANDATORY)
_SINGLE = (
    ("from", "From"),
    ("to", "To"),
    ("call-id", "Call-ID"),
    ("cseq", "CSeq"),
    ("max-forwards", "Max-Forwards"),
    ("content-length", "Content-Length"),
)


def parse_message(data: bytes, limits: Limits = DEFAULT_LIMITS, *, deep: bool = False) -> Message:
    """Parse one SIP message from a datagram (or one frame cut by :class:`StreamFramer`).

    * Bytes after ``Content-Length`` octets of body are ignored (RFC 3261 §18.3); a body
      shorter than Content-Length is ``400 Bad Content-Length``. Without Content-Length
      the body runs to the end of ``data``.
    * A request without Max-Forwards is accepted: RFC 3261 §16.6 step 3 makes the proxy
      add one, and RFC 2543 peers never sent it.
    * Raises :class:`SipParseError` only: 400 (with a specific reason), 505 for a SIP
      version other than 2.0, 513 over ``limits.max_message_size``.
    * ``deep=True`` also parses every Via, Contact, Route, Record-Route, option-tag list
      and Expires, for callers that must reject anything malformed.
    """
    if len(data) > limits.max_message_size:
        raise SipParseError("Message Too Large", 513, detail=f"{len(data)} bytes")
    start = 0
    if data[:1] in b"\r\n":
        while data.startswith(b"\r\n", start) or data.startswith(b"\n", start):
            start += 2 if data[start] == 13 else 1
    end = data.find(b"\r\n\r\n", start)
    crlf_end = end >= 0  # a bare "\n\n" before it is looked for only if the fast path fails
    if end >= 0:
        head, body_at, head_end, lf_only = data[start:end], end + 4, end + 2, False
    else:
        end = data.find(b"\n\n", start)
        if end >= 0:
            head, body_at, head_end, lf_only = data[start:end], end + 2, end + 1, True
        elif data.endswith(b"\r\n") and len(data) > start:
            # Datagram whose header section is not closed by an empty line (RFC 4475's
            # archived baddn.dat): the datagram end closes it; there is no body.
            head, body_at, head_end, lf_only = data[start:-2], len(data), len(data), False
        else:
            raise SipParseError("Incomplete Header Section")
    text = head.decode("utf-8", "surrogateescape")
    fields: list[tuple[str, str]] = []
    keys: list[str] = []
    folded = True  # until the fast path proves otherwise
    if not lf_only and len(text) <= limits.max_line_length:
        lines = text.split("\r\n")
        n = len(lines) - 1
        if text.count("\r") == n and text.count("\n") == n:
            # Fast path: CRLF line ends only, no line can be too long. A folded line or an
            # unusual name shows up as a name this table does not know.
            start_line = lines[0]
            parts = [line.partition(":") for line in lines[1:]]
            known = known_key
            maybe = [known(n) if c else None for n, c, _ in parts]
            if None not in maybe:
                fields = [(n, v.strip(" \t")) for n, _, v in parts]
                keys = maybe  # type: ignore[assignment]
                folded = False
            elif "\r\n " not in text and "\r\n\t" not in text:
                for name, colon, value in parts:  # uncommon names: check each line
                    key = known(name)
                    if key is None or not colon:
                        name, key = _field_name(name, colon, name + colon + value, start_line)
                    fields.append((name, value.strip(" \t")))
                    keys.append(key)
                folded = False
    if folded:
        if crlf_end and "\n\n" in text:
            # A bare-LF header section ends first; the CRLFs are in its body.
            end = data.find(b"\n\n", start)
            head, body_at, head_end, lf_only = data[start:end], end + 2, end + 1, True
            text = head.decode("utf-8", "surrogateescape")
        start_line, fields, keys, folded = _split_fields(text, lf_only, limits)
    if len(fields) > limits.max_headers:
        raise SipParseError("Too Many Header Fields", start_line=start_line)
    raw = None
    if not folded and not lf_only:  # the start line ends at the first CRLF
        raw = data[data.find(b"\r\n", start) + 2 : head_end]
    key_tuple = tuple(keys)
    field_tuple = tuple(fields)
    headers = Headers._parsed(field_tuple, key_tuple, raw)

    is_request = not start_line.startswith("SIP/") and start_line[:4].upper() != "SIP/"
    method: str | None = None
    try:
        if is_request:
            req = _request(start_line, headers)
            method = req.method
            msg: Message = req
        else:
            msg = _response(start_line, headers)
        _check(msg, key_tuple, field_tuple, headers, is_request)
        body = data[body_at:]
        if "content-length" in key_tuple:
            cl = field_tuple[key_tuple.index("content-length")][1]
            n = int(cl) if len(cl) < 10 and cl.isdigit() and cl.isascii() else -1
            if n < 0:
                n = parse_content_length(cl)
            if n > len(body):
                raise SipParseError(
                    "Bad Content-Length", detail=f"Content-Length {n} > {len(body)} octets of body"
                )
            body = body[:n]
        if body:
            (_req_body if is_request else _resp_body)(msg, body)
        if deep:
            check_deep(msg)
    except SipParseError as exc:
        raise exc.with_context(
            headers=headers, method=method, start_line=start_line, is_request=is_request
        ) from None
    return msg


def _split_fields(
    text: str, lf_only: bool, limits: Limits
) -> tuple[str, list[tuple[str, str]], list[str], bool]:
    """The careful header splitter: folding (§7.3.1), bare-LF messages, limits, and a
    specific error for each kind of bad line."""
    if lf_only:
        lines = [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]
        if any("\r" in ln for ln in lines):
            raise SipParseError("Bare CR or LF in Header")
    else:
        lines = text.split("\r\n")
        nl = len(lines) - 1
        if text.count("\n") != nl or text.count("\r") != nl:
            raise SipParseError("Bare CR or LF in Header")
    start_line = lines[0]
    if max(map(len, lines)) > limits.max_line_length:
        raise SipParseError("Header Line Too Long", start_line=start_line)
    fields: list[tuple[str, str]] = []
    keys: list[str] = []
    folded = False
    for line in lines[1:]:
        first = line[:1]
        if first == " " or first == "\t":
            if not fields:
                raise SipParseError("Bad Header Folding", start_line=start_line)
            name, value = fields[-1]
            cont = line.strip(" \t")
            fields[-1] = (name, f"{value} {cont}" if value and cont else value or cont)
            folded = True
            continue
        name, colon, value = line.partition(":")
        key = known_key(name)
        if key is None or not colon:
            name, key = _field_name(name, colon, line, start_line)
        fields.append((name, value.strip(" \t")))
        keys.append(key)
    return start_line, fields, keys, folded


def _field_name(name: str, colon: str, line: str, start_line: str) -> tuple[str, str]:
    """Check a header name that is not one of the common spellings; ``(name, key)``."""
    if not colon or not name:
        raise SipParseError("Malformed Header Line", detail=line[:80], start_line=start_line)
    name = name.rstrip(" \t")
    if not TOKEN_RE.match(name):
        raise SipParseError("Bad Header Name", detail=name[:80], start_line=start_line)
    return name, header_key(name)


def _request(line: str, headers: Headers) -> Request:
    parts = line.split(" ")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise SipParseError("Bad Request-Line", detail=line[:80])
    method, target, version = parts
    if not TOKEN_RE.match(method):
        raise SipParseError("Bad Method", detail=method[:40])
    if version != "SIP/2.0":
        m = _VERSION_RE.match(version)
        if m is None:
            raise SipParseError("Bad SIP Version", detail=version[:40])
        if m.group(1) != "2" or m.group(2) != "0":
            raise SipParseError("Version Not Supported", 505, detail=version[:40])
    try:
        uri = parse_uri(target)
    except SipParseError as exc:
        raise SipParseError("Bad Request-URI", detail=exc.detail) from None
    if isinstance(uri, SipUri) and uri.headers:
        # RFC 4475 §3.1.2.11: headers are not allowed in a Request-URI (§19.1.5).
        raise SipParseError("Bad Request-URI", detail="URI headers in Request-URI")
    return _new_request(method, uri, headers, b"", version)


def _response(line: str, headers: Headers) -> Response:
    code3 = line[8:11]
    if (
        line.startswith("SIP/2.0 ")
        and len(code3) == 3
        and code3[:1] in _STATUS_FIRST
        and code3.isdigit()
        and code3.isascii()
        and line[11:12] in ("", " ")
    ):  # the canonical status line, as _STATUS_RE would read it
        reason = line[12:]
        if _BAD_TEXT_RE.search(reason):
            raise SipParseError("Bad Reason-Phrase", detail=reason[:80])
        return _new_response(int(code3), reason, headers, b"", "SIP/2.0")
    m = _STATUS_RE.match(line)
    if m is None:
        if _VERSION_RE.match(line.split(" ", 1)[0]) is None:
            raise SipParseError("Bad Status-Line", detail=line[:80])
        v = _VERSION_RE.match(line.split(" ", 1)[0])
        if v is not None and (v.group(1), v.group(2)) != ("2", "0"):
            raise SipParseError("Version Not Supported", 505, detail=line[:80])
        raise SipParseError("Bad Status-Line", detail=line[:80])
    version, code, reason = m.groups()
    if version[4:] != "2.0":
        raise SipParseError("Version Not Supported", 505, detail=line[:80])
    reason = reason or ""
    if _BAD_TEXT_RE.search(reason):
        raise SipParseError("Bad Reason-Phrase", detail=reason[:80])
    return _new_response(int(code), reason, headers, b"", version)


def _check(
    msg: Message,
    keys: tuple[str, ...],
    fields: tuple[tuple[str, str], ...],
    headers: Headers,
    is_request: bool,
) -> None:
    """The fields every proxy relies on, checked in a fixed order (so a message with
    several defects always gets the same reason) and their views cached. From and To cost
    one regex each in the common case, or a memo lookup for a value seen before (a call's
    From comes back in every message of the call); their URIs are parsed when read."""
    present = set(keys)
    if not present >= _MANDATORY_KEYS:
        for key, label in _MANDATORY:
            if key not in present:
                raise SipParseError(f"Missing {label}")
    repeated = len(keys) - len(present)
    if repeated and repeated != keys.count("via") - 1:  # more than the usual Via list
        for key, label in _SINGLE:
            if keys.count(key) > 1:
                raise SipParseError(f"Multiple {label} Header Fields")
    cache = headers._cache
    cseq = cache["cseq"] = parse_cseq(fields[keys.index("cseq")][1])
    if is_request and cseq.method != msg.method:  # type: ignore[union-attr]
        raise SipParseError("CSeq Method Mismatch", detail=f"{msg.method} vs {cseq.method}")  # type: ignore[union-attr]
    check_call_id(fields[keys.index("call-id")][1])
    if "max-forwards" in keys:
        cache["mf"] = parse_max_forwards(fields[keys.index("max-forwards")][1])
    cache["from"] = checked_address(fields[keys.index("from")][1], "From")
    cache["to"] = checked_address(fields[keys.index("to")][1], "To")
    if msg.top_via is None:
        raise SipParseError("Missing Via")


def check_deep(msg: Message) -> None:
    """Parse every header the library models; raise the first :class:`SipParseError`.

    Contact ``expires`` and Expires above 2**32-1 are errors (RFC 4475 §3.1.2.4).
    """
    _ = msg.vias
    if "contact" in msg.headers:
        _ = msg.contacts
    _ = msg.routes
    _ = msg.record_routes
    for name in ("Require", "Proxy-Require", "Supported", "Unsupported"):
        msg.option_tags(name)
    for v in msg.headers.get_all("expires"):
        if bounded_int(v, MAX_CSEQ) is None:
            raise SipParseError("Bad Expires", detail=v[:40])
