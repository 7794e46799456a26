"""Messages the proxy originates or edits on behalf of the screening step.

- ``build_ack``: the hop-by-hop ACK for a non-2xx final response (RFC 3261 §17.1.1.3):
  Request-URI, top Via (our branch), From, Call-ID, CSeq number and Route of the INVITE as
  we sent it, To of the response.
- ``build_cancel``: the CANCEL for a forwarded INVITE (§9.1, §16.10): same Request-URI,
  top Via, From, To, Call-ID, CSeq number and Route.
- ``trying``: the 100 Trying for an INVITE, straight to bytes;
- ``invite_facts``: the plain-data ``InviteFacts`` the screener sees.
- ``divert_uri`` / ``tag_verstat``: carry out a screening decision on the request.
"""

from __future__ import annotations

from urllib.parse import quote

from .prefixes import PrefixTable
from .screen import (
    DIVERT_CALLEE_PARAM,
    DIVERT_DECISION_PARAM,
    DIVERT_PARAMS,
    PASS_HEADER,
    InviteFacts,
)
from .sip import Headers, Request, Response, SipParseError, SipUri, TelUri, parse_name_addr
from .sip.uri import AbsoluteUri, Uri
from .transport.base import Peer

_COPY = ("from", "call-id")


def _copy_common(fwd: Request, method: str, to: str) -> list[tuple[str, str]]:
    h = fwd.headers
    fields: list[tuple[str, str]] = [("Via", h.values("via")[0])]
    fields += [("From", h.get("from") or ""), ("To", to), ("Call-ID", h.get("call-id") or "")]
    fields.append(("CSeq", f"{fwd.cseq.number} {method}"))
    for route in h.get_all("route"):
        fields.append(("Route", route))
    fields.append(("Max-Forwards", "70"))
    return fields


def build_ack(fwd: Request, resp: Response) -> Request:
    """§17.1.1.3: the ACK a client transaction sends for a non-2xx final response."""
    to = resp.headers.get("to") or fwd.headers.get("to") or ""
    return Request("ACK", fwd.uri, Headers(_copy_common(fwd, "ACK", to)))


def build_cancel(fwd: Request) -> Request:
    """§9.1: CANCEL for the INVITE ``fwd`` as we forwarded it."""
    return Request(
        "CANCEL", fwd.uri, Headers(_copy_common(fwd, "CANCEL", fwd.headers.get("to") or ""))
    )


def trying(req: Request) -> bytes:
    """The 100 Trying a proxy sends for an INVITE (§16.2, §8.2.6.1), as bytes: the Via
    fields, From, To (no tag), Call-ID, CSeq and Timestamp copied as received.

    Why not ``make_response(req, 100).to_bytes()``: one per call on the hot path, and
    building and checking a header list to serialise it again costs several times more.
    ``tests/proxy/test_units.py`` holds it to the same bytes."""
    h = req.headers
    lines = ["SIP/2.0 100 Trying"]
    lines += ["Via: " + v for v in h.get_all("via")]
    lines.append("From: " + (h.get("from") or ""))
    lines.append("To: " + (h.get("to") or ""))
    lines.append("Call-ID: " + (h.get("call-id") or ""))
    lines.append("CSeq: " + (h.get("cseq") or ""))
    stamp = h.get("timestamp")
    if stamp is not None:
        lines.append("Timestamp: " + stamp)
    lines.append("Content-Length: 0\r\n\r\n")
    return "\r\n".join(lines).encode("utf-8", "surrogateescape")


def _user_of(uri: Uri | None) -> str | None:
    if isinstance(uri, SipUri):
        return uri.user_unescaped
    if isinstance(uri, TelUri):
        return uri.digits
    return None


def invite_facts(
    req: Request, peer: Peer, wall_time: float, trunks: PrefixTable[str] | None = None
) -> InviteFacts:
    """The screener's view of a new INVITE (strings only; bad optional headers → None).
    ``trunks`` (from ``[proxy.trunks]``) names the trunk the peer's address belongs to."""
    h = req.headers
    pai: list[str] = []
    pai_users: list[str | None] = []
    for value in h.values("p-asserted-identity"):
        try:
            na = parse_name_addr(value, "P-Asserted-Identity")
        except SipParseError:
            continue
        pai.append(str(na.uri))
        pai_users.append(_user_of(na.uri))
    from_na = req.from_
    caller = next((u for u in pai_users if u), None) or _user_of(from_na.uri)
    callee = _user_of(req.uri) or _user_of(req.to.uri) or ""
    return InviteFacts(
        call_id=req.call_id or "",
        request_uri=str(req.uri),
        from_uri=str(from_na.uri),
        to_uri=str(req.to.uri),
        time=wall_time,
        source_ip=peer.host,
        source_port=peer.port,
        transport=peer.transport,
        from_display=from_na.display_name,
        pai_uris=tuple(pai),
        identity=tuple(h.get_all("identity")),
        user_agent=h.get("user-agent"),
        caller_user=caller,
        callee_user=callee,
        pass_token=h.get(PASS_HEADER),
        trunk=trunks.lookup(peer.host) if trunks else None,
    )


def strip_divert_params(uri: Uri) -> Uri:
    """Remove the divert parameters (``sw-callee``, ``sw-decision`` …) that arrive from outside."""
    if isinstance(uri, SipUri) and uri.params:  # most Request-URIs have none
        for p in DIVERT_PARAMS:
            if uri.has_param(p):
                uri = uri.without_param(p)
    return uri


def divert_uri(target: str, original: Uri, decision_id: str) -> SipUri:
    """The Request-URI of a diverted INVITE: ``target`` plus the documented parameters.

    Raises SipParseError when ``target`` is not a SIP URI.
    """
    from .sip import parse_uri

    uri = parse_uri(target)
    if not isinstance(uri, SipUri):
        raise SipParseError("Divert target must be a sip: URI", detail=target[:80])
    if not uri.has_param(DIVERT_CALLEE_PARAM):
        uri = uri.with_param(DIVERT_CALLEE_PARAM, quote(str(original), safe=""))
    if decision_id and not uri.has_param(DIVERT_DECISION_PARAM):
        uri = uri.with_param(DIVERT_DECISION_PARAM, quote(decision_id, safe=""))
    return uri


def tag_verstat(headers: Headers, verstat: str) -> Headers:
    """Add ``;verstat=`` to the first P-Asserted-Identity URI, else to the From URI
    (3GPP TS 24.229 §5.7.1.20 style); an incoming verstat there is replaced."""
    values = headers.values("p-asserted-identity")
    name = "p-asserted-identity" if values else "from"
    raw = values[0] if values else headers.get("from")
    if raw is None:
        return headers
    try:
        na = parse_name_addr(raw, "P-Asserted-Identity" if values else "From")
    except SipParseError:
        return headers
    uri = na.uri
    if isinstance(uri, (SipUri, TelUri)):
        uri = uri.with_param("verstat", verstat)
    elif isinstance(uri, AbsoluteUri):
        return headers
    new = str(na.with_uri(uri))
    if values:
        return headers.replace_first_value(name, new)
    return headers.replace("From", new)
