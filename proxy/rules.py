"""RFC 3261 §16.3-§16.6 and §18.2.2 as pure functions over ``proxy.sip`` values.

These are the rewriting and checking rules of a proxy, kept apart from the state
(``proxy.core``) so each can be read beside its RFC paragraph and tested with tables:

- ``Locality``: which hosts and ports are "this proxy" (Route/Request-URI/Via checks);
- ``branch_id``: the §16.6 item 8 branch, computed from the request's identity so that a
  request coming back unchanged gets the same branch (§16.3 item 4 loop detection) and a
  retransmitted stateless ACK gets the same branch every time;
- ``is_loop``, ``pop_own_routes`` (§16.4), ``forward_headers`` (§16.6 items 3-8),
  ``reply_peer`` (§18.2.2, RFC 3581), ``hop_from_uri`` (§16.6 item 6/7 next-hop choice).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from .routing import NextHop
from .sip import Headers, Request, SipUri, Via
from .sip.message import Response
from .transport.base import LocalAddress, Peer, TransportName

BRANCH_PREFIX = "z9hG4bKsw"
"""Every branch this proxy writes starts with the magic cookie plus ``sw``."""
DEFAULT_MAX_FORWARDS = 70
_DEFAULT_PORT = {"udp": 5060, "tcp": 5060, "tls": 5061}


class Locality:
    """The addresses (and configured names) that mean "this proxy"."""

    def __init__(self, local: Iterable[LocalAddress], domains: Iterable[str] = ()) -> None:
        self.local = list(local)
        self._ports: set[tuple[str, int]] = set()
        self._hosts: set[str] = {d.lower() for d in domains}
        for a in self.local:
            h = a.host.lower()
            self._ports.add((h, a.port))
            self._ports.add((h, a.rr_port))
        self._bare_hosts = {h for h, _ in self._ports}

    def is_ours(self, host: str, port: int | None, transport: str | None = None) -> bool:
        h = host.lower().strip("[]")
        if h in self._hosts and port is None:
            return True
        p = port if port is not None else _DEFAULT_PORT.get((transport or "udp").lower(), 5060)
        return (h, p) in self._ports or (h in self._hosts)

    def is_our_uri(self, uri: object) -> bool:
        if not isinstance(uri, SipUri):
            return False
        t = uri.transport or ("tls" if uri.secure else "udp")
        return self.is_ours(uri.host_bare, uri.port, t)

    def host_is_ours(self, host: str) -> bool:
        h = host.lower().strip("[]")
        return h in self._bare_hosts or h in self._hosts

    def pick(self, transport: TransportName, ipv6: bool) -> LocalAddress | None:
        """The local address to send from (and to write in Via) toward a peer."""
        best = None
        for a in self.local:
            if a.transport == transport:
                if a.ipv6 == ipv6:
                    return a
                best = best or a
        if best is None and transport != "udp" and self.local:
            # No listener of this stream transport: connect out anyway (responses return on
            # the connection), written in Via as the nearest local address.
            base = next((a for a in self.local if a.ipv6 == ipv6), self.local[0])
            best = LocalAddress(transport, base.host, base.port, base.rr_port, listening=False)
        return best


def branch_id(req: Request, top_via: Via | None) -> str:
    """§16.6 item 8: a branch derived from what identifies the request (§16.3 item 4)."""
    assert top_via is not None  # every parsed request has one
    to_tag = req.to.tag or ""
    from_tag = req.from_.tag or ""
    h = req.headers
    material = "\x1f".join(
        (
            req.method,
            str(req.uri),
            to_tag,
            from_tag,
            req.call_id or "",
            str(req.cseq.number),
            top_via.branch or "",
            top_via.host.lower(),
            str(top_via.port),
            ",".join(h.get_all("proxy-require")),
            ",".join(h.get_all("proxy-authorization")),
        )
    )
    digest = hashlib.blake2b(material.encode("utf-8", "surrogateescape"), digest_size=10)
    return BRANCH_PREFIX + digest.hexdigest()


def is_loop(req: Request, vias: list[Via], local: Locality) -> bool:
    """§16.3 item 4: a Via of ours whose branch equals the branch we would compute now.

    The "topmost Via of the request received" at that earlier pass is the one just below
    our Via, so the branch is recomputed with it; a different result is a spiral.
    """
    for i, via in enumerate(vias[:-1]):
        b = via.branch
        if (
            b is not None
            and b.startswith(BRANCH_PREFIX)
            and local.is_ours(via.host_bare, via.port)
            and branch_id(req, vias[i + 1]) == b
        ):
            return True
    return False


def pop_own_routes(req: Request, local: Locality) -> tuple[Request, bool]:
    """§16.4: strict-router repair of the Request-URI, then pop Route values naming us.

    Returns the request and whether any Route value of ours was removed.
    """
    popped = False
    routes = req.routes
    if (
        routes
        and isinstance(req.uri, SipUri)
        and req.uri.user is None  # a Record-Route URI has no user part: the cheap test first
        and local.is_our_uri(req.uri)
    ):
        # The previous hop was a strict router and put our Record-Route URI in the
        # Request-URI: restore the original target from the last Route value.
        last = routes[-1]
        headers = _remove_last_route(req.headers)
        req = req.with_uri(last.uri).with_headers(headers)
        routes = req.routes
        popped = True
    headers = req.headers
    while routes and local.is_our_uri(routes[0].uri):
        headers = headers.remove_first_value("route")
        routes = routes[1:]
        popped = True
    if popped:  # the constructor: dataclasses.replace costs several times more
        req = Request(req.method, req.uri, headers, req.body, req.version)
    return req, popped


def _remove_last_route(headers: Headers) -> Headers:
    pos = headers.positions("route")
    if not pos:
        return headers
    values = headers.values("route")
    kept = values[:-1]
    h = headers.remove("route")
    if not kept:
        return h
    fields = list(h.fields)
    fields.insert(min(pos[0], len(fields)), ("Route", ", ".join(kept)))
    return Headers(fields)


def record_route_uri(a: LocalAddress) -> str:
    t = "" if a.transport == "udp" else f";transport={a.transport}"
    return f"<sip:{a.hostport(a.rr_port)}{t};lr>"


def forward_headers(
    req: Request,
    *,
    via: str,
    stamped_top_via: str | None,
    record_route: Iterable[str] = (),
    extra: Iterable[tuple[str, str]] = (),
    remove: Iterable[str] = (),
) -> Headers:
    """§16.6 items 3, 4 and 8 on the header block: Max-Forwards, Record-Route, Via;
    the fields named in ``remove`` dropped, then ``extra`` appended."""
    h = req.headers
    for name in remove:
        h = h.remove(name)
    if stamped_top_via is not None:
        h = h.replace_first_value("via", stamped_top_via)
    mf = req.max_forwards
    h = h.replace("Max-Forwards", str(DEFAULT_MAX_FORWARDS if mf is None else mf - 1))
    for rr in reversed(list(record_route)):
        h = h.prepend("Record-Route", rr)
    for name, value in extra:
        h = h.add(name, value)
    return h.prepend("Via", via)


def reply_peer(via: Via, peer: Peer) -> Peer:
    """§18.2.2 / RFC 3581 §4: where responses to a request from ``peer`` go.

    Over TCP/TLS: the connection it came on (if gone, a new one to the source address).
    Over UDP: the source IP, and the source port if the Via had ``rport``, else the
    sent-by port. (``maddr`` multicast replies are not supported.)
    """
    if peer.transport != "udp":
        return peer
    port = peer.port if via.has_rport else (via.port or 5060)
    if port == peer.port and peer.conn is None:
        return peer  # the common case: no new value to build
    return Peer("udp", peer.host, port)


def via_target(resp: Response) -> Peer | None:
    """Where a response goes statelessly after our Via is popped (§18.2.2)."""
    via = resp.top_via
    if via is None:
        return None
    t = via.transport.lower()
    if t not in ("udp", "tcp", "tls"):
        return None
    host = via.received or via.host_bare
    port = via.rport or via.port or _DEFAULT_PORT[t]
    return Peer(t, host, port)  # type: ignore[arg-type]


_VIA_NAMES = (b"via", b"v")


def without_top_via(resp: Response, data: bytes) -> bytes | None:
    """§16.7 item 3 on the bytes: ``data`` (the datagram ``resp`` was parsed from) minus
    its first Via line, every other byte as received — or ``None`` when that shortcut
    does not apply and the caller must edit ``resp.headers`` and re-serialise.

    Why: a relayed response is the commonest message a proxy sends (180, 200, the BYE's
    200), and re-serialising its whole header block to drop one line costs more than the
    rest of its handling here. The shortcut applies to the common shape only: two or more
    Via fields, the first holding one element on an unfolded line, one Content-Length
    equal to the body, CRLF line ends, nothing after the body, and a status line exactly
    as ``Response.to_bytes`` writes it. Anything else takes the general path."""
    h = resp.headers
    vias = h.get_all("via")
    if len(vias) < 2 or not vias[0] or "," in vias[0]:
        return None
    body = resp.body
    cl = h.get_all("content-length")
    if len(cl) != 1 or cl[0] != str(len(body)):
        return None
    end = data.find(b"\r\n\r\n")
    if end < 0 or end + 4 + len(body) != len(data):
        return None
    pos = data.find(b"\r\n") + 2
    status_line = f"{resp.version} {resp.status} {resp.reason}\r\n"
    if data[:pos] != status_line.encode("utf-8", "surrogateescape"):
        return None
    while pos < end:
        eol = data.find(b"\r\n", pos)
        if data[pos] in b" \t":
            return None  # a folded field: leave it to the message model
        if data[pos:eol].partition(b":")[0].strip().lower() in _VIA_NAMES:
            if data[eol + 2] in b" \t":
                return None
            return data[:pos] + data[eol + 2 :]
        pos = eol + 2
    return None


def hop_from_uri(uri: SipUri, name: str = "route") -> NextHop:
    """§16.6 items 6-7 with RFC 3263's static parts: maddr, port, transport parameter."""
    t = uri.transport or ("tls" if uri.secure else "udp")
    if t not in ("udp", "tcp", "tls"):
        t = "udp"
    host = uri.maddr or uri.host_bare
    port = uri.port or _DEFAULT_PORT[t]
    return NextHop(t, host.strip("[]"), port, name)  # type: ignore[arg-type]
