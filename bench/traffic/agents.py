"""A Python UAC (the callers) and UAS (the subscribers) over UDP on 127.0.0.1.

Why our own: the callee side must answer each call the way the traffic model says that
subscriber answers that caller (answer and talk, 607, let it ring until the caller gives
up), and the caller side must sign with the originating carrier's key at send time — per
call, thousands of distinct behaviours, which SIPp scenarios cannot express without one
scenario file per behaviour. Both ends speak just enough RFC 3261 for a proxy in between:

* UAC: INVITE (Identity for signed calls) → ACK for the final response (hop-by-hop for
  non-2xx, end-to-end along the Record-Route set for 2xx) → CANCEL when nobody answers or
  for one-ring diallers → BYE when the caller hangs up; answers BYE and OPTIONS with 200.
* UAS: 180 at once, then 200 after the ring time, or 607 Unwanted, or nothing until the
  CANCEL (200 to it, 487 to the INVITE); BYE after the talk time when the callee hangs up.

Transactions are not retransmitted: on loopback nothing is lost, and the proxy's own
retransmissions of a response are absorbed (the final is remembered per Call-ID).
Everything observed is kept per call (:class:`Seen`) for the metrics.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from proxy.sip import Request, Response, SipParseError, parse_message, parse_name_addr
from proxy.sip.uri import SipUri

from .model import CallSpec

_n = itertools.count(1)


@dataclass
class Seen:
    """What the far ends saw of one call."""

    sent: float = 0.0
    """Real time the INVITE left the UAC."""
    reached_callee: float | None = None
    final: int | None = None
    final_at: float | None = None
    score_header: str | None = None
    answered: bool = False
    ended: bool = False


def _hp(addr: tuple[str, int]) -> str:
    return f"{addr[0]}:{addr[1]}"


def _route_addr(route: list[str], default: tuple[str, int]) -> tuple[str, int]:
    """Where a request with this route set goes first (the first Route's URI)."""
    if not route:
        return default
    try:
        uri = parse_name_addr(route[0], "Route").uri
    except SipParseError:
        return default
    if isinstance(uri, SipUri):
        return (uri.host_bare, uri.port or 5060)
    return default


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, on_message: Callable[[Request | Response, tuple[str, int]], None]) -> None:
        self.on_message = on_message
        self.transport: asyncio.DatagramTransport | None = None
        self.errors = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not data.strip():
            return
        try:
            msg = parse_message(data)
        except SipParseError:
            self.errors += 1
            return
        self.on_message(msg, (addr[0], addr[1]))

    def send(self, data: str, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(data.encode(), addr)


def _factory(ep: _Endpoint) -> Callable[[], _Endpoint]:
    return lambda: ep


def _reply(req: Request, status: int, reason: str, to_tag: str, extra: list[str]) -> str:
    """A response built from the request (RFC 3261 §8.2.6): Vias, From, To+tag, Call-ID, CSeq."""
    h = req.headers
    to = h.get("to") or ""
    if ";tag=" not in to:
        to += f";tag={to_tag}"
    lines = [f"SIP/2.0 {status} {reason}"]
    lines += [f"Via: {v}" for v in h.get_all("via")]
    lines += [
        f"From: {h.get('from')}",
        f"To: {to}",
        f"Call-ID: {req.call_id}",
        f"CSeq: {h.get('cseq')}",
        *extra,
        "Content-Length: 0",
        "",
        "",
    ]
    return "\r\n".join(lines)


@dataclass
class _UacCall:
    spec: CallSpec
    branch: str
    from_tag: str
    ruri: str
    to: str
    seen: Seen
    to_tag: str | None = None
    route: list[str] = field(default_factory=list)
    remote_target: str | None = None
    cseq: int = 1
    done: bool = False


class Uac:
    """The callers: one UDP socket per originating network, many calls each.

    Each network's calls leave from its own loopback address (``10.a.b.c`` in the model
    becomes ``127.a.b.c``: all of 127.0.0.0/8 is local on Linux), so spitwall sees the
    source addresses the model gives, not one address for every caller."""

    def __init__(self, proxy: tuple[str, int], speed: float = 1.0) -> None:
        self.proxy = proxy
        self.speed = speed
        self.calls: dict[str, _UacCall] = {}
        self.eps: dict[str, _Endpoint] = {}

    @staticmethod
    def loopback(source_ip: str) -> str:
        parts = source_ip.split(".")
        return "127." + ".".join(parts[1:]) if len(parts) == 4 else "127.0.0.1"

    async def start(self, sources: Iterable[str] = ("127.0.0.1",)) -> None:
        loop = asyncio.get_running_loop()
        for src in sorted({self.loopback(s) for s in sources}):
            ep = _Endpoint(self._on_message)
            await loop.create_datagram_endpoint(_factory(ep), local_addr=(src, 0))
            self.eps[src] = ep

    def close(self) -> None:
        for ep in self.eps.values():
            if ep.transport is not None:
                ep.transport.close()

    def _ep(self, c: _UacCall) -> tuple[_Endpoint, tuple[str, int]]:
        ep = self.eps.get(self.loopback(c.spec.source_ip)) or next(iter(self.eps.values()))
        assert ep.transport is not None
        return ep, ep.transport.get_extra_info("sockname")[:2]

    def invite(self, spec: CallSpec, identity: str | None, seen: Seen) -> None:
        c = _UacCall(
            spec,
            f"z9hG4bK{next(_n)}x",
            f"f{next(_n)}",
            f"sip:+{spec.callee}@{_hp(self.proxy)};user=phone",
            f"<sip:+{spec.callee}@{_hp(self.proxy)};user=phone>",
            seen,
        )
        self.calls[spec.call_id] = c
        extra = [f"Identity: {identity}"] if identity else []
        seen.sent = time.time()
        self._send_request(c, "INVITE", c.ruri, c.branch, 1, extra=extra, contact=True)
        loop = asyncio.get_running_loop()
        b = spec.behaviour
        if not b.answer or b.one_ring:
            loop.call_later(b.ring / self.speed, self._give_up, c)

    def _send_request(
        self,
        c: _UacCall,
        method: str,
        ruri: str,
        branch: str,
        cseq: int,
        *,
        extra: list[str] | None = None,
        contact: bool = False,
        to_tag: str | None = None,
        route: list[str] | None = None,
    ) -> None:
        s = c.spec
        to = c.to + (f";tag={to_tag}" if to_tag else "")
        ep, addr = self._ep(c)
        lines = [
            f"{method} {ruri} SIP/2.0",
            f"Via: SIP/2.0/UDP {_hp(addr)};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: <sip:+{s.caller}@{s.carrier}.example.net;user=phone>;tag={c.from_tag}",
            f"To: {to}",
            f"Call-ID: {s.call_id}",
            f"CSeq: {cseq} {method}",
        ]
        lines += [f"Route: {r}" for r in route or []]
        if contact:
            lines.append(f"Contact: <sip:+{s.caller}@{_hp(addr)}>")
        lines += [*(extra or []), "Content-Length: 0", "", ""]
        dest = _route_addr(route or [], self.proxy)
        ep.send("\r\n".join(lines), dest)

    def _give_up(self, c: _UacCall) -> None:
        if c.seen.final is None and not c.done:
            self._send_request(c, "CANCEL", c.ruri, c.branch, 1)

    def _hang_up(self, c: _UacCall) -> None:
        if c.done or c.seen.ended:
            return
        c.cseq += 1
        self._send_request(
            c,
            "BYE",
            c.remote_target or c.ruri,
            f"z9hG4bK{next(_n)}b",
            c.cseq,
            to_tag=c.to_tag,
            route=c.route,
        )
        c.seen.ended = True

    def _on_message(self, msg: Request | Response, addr: tuple[str, int]) -> None:
        if isinstance(msg, Request):
            c = self.calls.get(msg.call_id or "")
            if msg.method == "BYE" and c is not None:
                c.seen.ended = True
            if msg.method != "ACK":
                ep = self._ep(c)[0] if c is not None else next(iter(self.eps.values()))
                ep.send(_reply(msg, 200, "OK", "uac", []), addr)
            return
        c = self.calls.get(msg.call_id or "")
        if c is None or msg.cseq.method != "INVITE" or msg.status < 200:
            return
        first = c.seen.final is None
        if first:
            c.seen.final, c.seen.final_at = msg.status, time.time()
            c.to_tag = msg.to.tag
        if msg.status >= 300:
            self._send_request(c, "ACK", c.ruri, c.branch, 1, to_tag=msg.to.tag)
            c.done = True
            return
        # 2xx: ACK end to end along the route set (reversed Record-Route, §12.1.2)
        if first:
            c.route = list(reversed(msg.headers.values("record-route")))
            contacts = msg.headers.values("contact")
            if contacts:
                c.remote_target = str(parse_name_addr(contacts[0], "Contact").uri)
            c.seen.answered = True
        self._send_request(
            c,
            "ACK",
            c.remote_target or c.ruri,
            f"z9hG4bK{next(_n)}a",
            1,
            to_tag=c.to_tag,
            route=c.route,
        )
        if first and c.spec.kind != "robocall":  # humans and bots hang up themselves
            asyncio.get_running_loop().call_later(
                c.spec.behaviour.talk / self.speed, self._hang_up, c
            )


@dataclass
class _UasCall:
    spec: CallSpec | None
    invite: Request
    source: tuple[str, int]
    tag: str
    final: int | None = None
    route: list[str] = field(default_factory=list)
    remote: str = ""
    cseq: int = 1


class Uas:
    """The subscribers: answers as the model says, at the proxy's next-hop address."""

    def __init__(
        self, lookup: Callable[[str], CallSpec | None], seen: dict[str, Seen], speed: float = 1.0
    ) -> None:
        self.lookup = lookup
        self.seen = seen
        self.speed = speed
        self.calls: dict[str, _UasCall] = {}
        self.ep = _Endpoint(self._on_message)
        self.addr: tuple[str, int] = ("127.0.0.1", 0)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self.ep, local_addr=("127.0.0.1", 0))
        assert self.ep.transport is not None
        self.addr = self.ep.transport.get_extra_info("sockname")[:2]

    def close(self) -> None:
        if self.ep.transport is not None:
            self.ep.transport.close()

    def _on_message(self, msg: Request | Response, addr: tuple[str, int]) -> None:
        if isinstance(msg, Response):
            return
        cid = msg.call_id or ""
        c = self.calls.get(cid)
        if msg.method == "INVITE" and not msg.to.tag:
            if c is not None:  # a retransmission: repeat where we are
                self.ep.send(
                    _reply(msg, c.final or 180, "Ringing" if not c.final else "Final", c.tag, []),
                    addr,
                )
                return
            self._new_call(msg, addr)
        elif msg.method == "CANCEL" and c is not None:
            self.ep.send(_reply(msg, 200, "OK", c.tag, []), addr)
            if c.final is None:
                self._final(c, 487, "Request Terminated")
        elif msg.method == "BYE":
            self.ep.send(_reply(msg, 200, "OK", c.tag if c else "x", []), addr)
            s = self.seen.get(cid)
            if s is not None:
                s.ended = True
        elif msg.method not in ("ACK",):
            self.ep.send(_reply(msg, 200, "OK", "uas", []), addr)

    def _new_call(self, req: Request, addr: tuple[str, int]) -> None:
        cid = req.call_id or ""
        spec = self.lookup(cid)
        c = self.calls[cid] = _UasCall(spec, req, addr, f"u{next(_n)}")
        s = self.seen.setdefault(cid, Seen())
        s.reached_callee = time.time()
        s.score_header = req.headers.get("x-spitwall-score")
        self.ep.send(_reply(req, 180, "Ringing", c.tag, []), addr)
        if spec is None:
            self._final(c, 480, "Temporarily Unavailable")
            return
        b = spec.behaviour
        loop = asyncio.get_running_loop()
        if b.unwanted_607:
            loop.call_later(4.0 / self.speed, self._final, c, 607, "Unwanted")
        elif b.answer and not b.one_ring:
            loop.call_later(b.ring / self.speed, self._answer, c)

    def _final(self, c: _UasCall, status: int, reason: str) -> None:
        if c.final is not None:
            return
        c.final = status
        self.ep.send(_reply(c.invite, status, reason, c.tag, []), c.source)

    def _answer(self, c: _UasCall) -> None:
        if c.final is not None:
            return
        c.final = 200
        rr = c.invite.headers.values("record-route")
        c.route = list(rr)
        contacts = c.invite.headers.values("contact")
        c.remote = str(parse_name_addr(contacts[0], "Contact").uri) if contacts else ""
        extra = [f"Record-Route: {r}" for r in rr]
        extra.append(f"Contact: <sip:uas@{_hp(self.addr)}>")
        self.ep.send(_reply(c.invite, 200, "OK", c.tag, extra), c.source)
        assert c.spec is not None
        if c.spec.kind == "robocall":  # the subscriber hangs up on the recording
            asyncio.get_running_loop().call_later(
                c.spec.behaviour.talk / self.speed, self._hang_up, c
            )

    def _hang_up(self, c: _UasCall) -> None:
        s = self.seen.get(c.invite.call_id or "")
        if s is not None and s.ended:
            return
        h = c.invite.headers
        c.cseq += 1
        lines = [
            f"BYE {c.remote or 'sip:caller@127.0.0.1'} SIP/2.0",
            f"Via: SIP/2.0/UDP {_hp(self.addr)};branch=z9hG4bK{next(_n)}u;rport",
            "Max-Forwards: 70",
            f"From: {h.get('to')};tag={c.tag}",
            f"To: {h.get('from')}",
            f"Call-ID: {c.invite.call_id}",
            f"CSeq: {c.cseq} BYE",
        ]
        lines += [f"Route: {r}" for r in c.route]
        lines += ["Content-Length: 0", "", ""]
        dest = _route_addr(c.route, c.source)
        self.ep.send("\r\n".join(lines), dest)
        if s is not None:
            s.ended = True
