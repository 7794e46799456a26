"""Build responses from requests (RFC 3261 §8.2.6, §16.7) and from parse errors.

Why here and not in the proxy: the copying rules (every Via in order, From, To, Call-ID,
CSeq, a To tag on non-100 responses) are message grammar, the same for a stateless 400
to garbage, a 483, or a 607 from the screening step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from .errors import SipParseError
from .message import Headers, Request, Response, _checked, header_key
from .status import reason_phrase


def stable_tag(*parts: str) -> str:
    """A To tag derived from the request, so a retransmission gets the same tag even from
    a stateless responder (RFC 3261 §8.2.7, §16.11)."""
    digest = hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:16]


def _has_tag(to: str) -> bool:
    return ";tag=" in to or ";tag=" in to.replace(" ", "").replace("\t", "").lower()


def _skeleton(
    vias: list[str],
    from_: str,
    to: str,
    call_id: str,
    cseq: str,
    status: int,
    to_tag: str | None,
) -> list[tuple[str, str]]:
    if status > 100 and not _has_tag(to):
        tag = to_tag or stable_tag(call_id, from_, cseq, vias[0] if vias else "")
        to = f"{to};tag={tag}"
    fields = [("Via", v) for v in vias]
    fields += [("From", from_), ("To", to), ("Call-ID", call_id), ("CSeq", cseq)]
    return fields


_SKELETON_KEYS = ("from", "to", "call-id", "cseq")


def _headers(
    skeleton: list[tuple[str, str]], extra: Iterable[tuple[str, str]], checked: bool
) -> Headers:
    """The response's header block. The skeleton's values were copied from a parsed (or
    checked) request, so only the extra fields — and a To tag a caller supplied — need the
    header-injection check; the lookup keys are known without computing them."""
    if not checked:
        _checked("To", skeleton[-3][1])
    keys = ["via"] * (len(skeleton) - 4)
    keys += _SKELETON_KEYS
    for name, value in extra:
        skeleton.append(_checked(name, value))
        keys.append(header_key(name))
    return Headers._trusted(tuple(skeleton), tuple(keys))


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> Response:
    """A response to ``request``: Via fields, From, To, Call-ID and CSeq copied as
    received; a To tag added for status > 100 when the request had none (``to_tag`` or a
    stable hash). ``headers`` are appended (e.g. Reason, Call-Info, Retry-After)."""
    h = request.headers
    fields = _skeleton(
        h.get_all("via"),
        h.get("from") or "",
        h.get("to") or "",
        h.get("call-id") or "",
        h.get("cseq") or "",
        status,
        to_tag,
    )
    extra = list(headers)
    if status == 100 and "timestamp" in h:  # RFC 3261 §8.2.6.1
        extra.insert(0, ("Timestamp", h.get("timestamp") or ""))
    return Response(
        status,
        reason_phrase(status) if reason is None else reason,
        _headers(fields, extra, to_tag is None),
        body,
    )


def error_response(err: SipParseError, *, to_tag: str | None = None) -> Response | None:
    """The stateless answer to a malformed request — ``<status> <err.reason>`` — or
    ``None`` when there is nothing to answer (a response, or no Via/From/To/Call-ID/CSeq
    could be read; RFC 3261 §16.3, §18.1.2)."""
    if not err.can_reply or err.headers is None:
        return None
    h = err.headers
    fields = _skeleton(
        h.get_all("via"),
        h.get("from") or "",
        h.get("to") or "",
        h.get("call-id") or "",
        h.get("cseq") or "",
        err.status,
        to_tag,
    )
    return Response(err.status, err.reason, _headers(fields, (), to_tag is None))
