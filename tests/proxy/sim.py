"""A socket-free driver for ProxyCore: feed bytes and virtual time, read back what it sends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from proxy.core import ProxyCore
from proxy.effects import Screen, Send
from proxy.metrics import ProxyMetrics
from proxy.ratelimit import RateLimiter
from proxy.screen import RecordingObserver
from proxy.sip import Headers, Request, Response, SipParseError, parse_message
from proxy.transport.base import LocalAddress, Peer
from spitwall.config import load_config

PROXY = "10.0.0.1"
LOCAL = [
    LocalAddress("udp", PROXY, 5060, 5060),
    LocalAddress("tcp", PROXY, 5060, 5060),
    LocalAddress("tls", PROXY, 5061, 5061),
]
CALLER = Peer("udp", "192.0.2.10", 5070)
UAS = Peer("udp", "10.0.0.2", 5080)


@dataclass
class Out:
    peer: Peer
    msg: Request | Response
    raw: bytes
    key: str | None


class Sim:
    def __init__(self, **overrides: Any) -> None:
        o: dict[str, Any] = {"proxy.default_next_hop": "sip:10.0.0.2:5080"}
        o.update(overrides)
        self.cfg = load_config(None, o).proxy
        self.metrics = ProxyMetrics()
        self.observer = RecordingObserver()
        self.core = ProxyCore(
            self.cfg,
            local=LOCAL,
            metrics=self.metrics,
            observer=self.observer,
            limiter=RateLimiter(self.cfg.rate_limit),
        )
        self.now = 100.0
        self.screens: list[Screen] = []
        self.sent: list[Out] = []

    def feed(self, data: bytes | str, peer: Peer = CALLER) -> list[Out]:
        if isinstance(data, str):
            data = data.replace("\n", "\r\n").encode()
        self.core.receive(data, peer, self.now)
        return self._collect()

    def advance(self, seconds: float) -> list[Out]:
        """Step virtual time, firing every timer on the way."""
        end = self.now + seconds
        out: list[Out] = []
        while True:
            t = self.core.get_timer()
            if t is None or t > end:
                break
            self.now = max(self.now, t)
            self.core.handle_timer(self.now)
            out += self._collect()
        self.now = end
        return out

    def screened(self, action: Any, index: int = -1) -> list[Out]:
        self.core.screened(self.screens[index].key, action, self.now)
        return self._collect()

    def _collect(self) -> list[Out]:
        out = []
        for eff in self.core.drain():
            if isinstance(eff, Send):
                try:
                    msg: Request | Response = parse_message(eff.data)
                except SipParseError:  # a 400 echoing the malformed From/To it complains of
                    status, reason = eff.data.split(b"\r\n", 1)[0].split(b" ", 2)[1:]
                    msg = Response(int(status), reason.decode(), Headers(()))
                o = Out(eff.peer, msg, eff.data, eff.key)
                out.append(o)
                self.sent.append(o)
            elif isinstance(eff, Screen):
                self.screens.append(eff)
        return out

    def drops(self, reason: str) -> float:
        return self.metrics.drops.labels(reason)._value.get()


def invite(
    *,
    branch: str = "z9hG4bK-c1",
    call_id: str = "call-1@caller",
    max_forwards: int | None = 70,
    ruri: str = f"sip:+12155550123@{PROXY}",
    extra: str = "",
    to_tag: str = "",
    via_host: str = "192.0.2.10:5070",
    method: str = "INVITE",
    cseq: int = 1,
    routes: str = "",
    body: str = "",
) -> str:
    mf = "" if max_forwards is None else f"Max-Forwards: {max_forwards}\n"
    tt = f";tag={to_tag}" if to_tag else ""
    return (
        f"{method} {ruri} SIP/2.0\n"
        f"Via: SIP/2.0/UDP {via_host};branch={branch};rport\n"
        f"{routes}"
        f'From: "Alice" <sip:+12155550100@caller.example>;tag=a1\n'
        f"To: <sip:+12155550123@{PROXY}>{tt}\n"
        f"Call-ID: {call_id}\nCSeq: {cseq} {method}\n"
        f"Contact: <sip:alice@192.0.2.10:5070>\n{mf}{extra}"
        f"Content-Length: {len(body)}\n\n{body}"
    )


def respond(
    req: Request,
    status: int,
    reason: str,
    *,
    to_tag: str = "b1",
    extra: str = "",
    copy_rr: bool = True,
) -> str:
    h = req.headers
    lines = [f"SIP/2.0 {status} {reason}"]
    lines += [f"Via: {v}" for v in h.get_all("via")]
    if copy_rr:
        lines += [f"Record-Route: {v}" for v in h.get_all("record-route")]
    to = h.get("to") or ""
    if ";tag=" not in to and status > 100:
        to += f";tag={to_tag}"
    lines += [
        f"From: {h.get('from')}",
        f"To: {to}",
        f"Call-ID: {h.get('call-id')}",
        f"CSeq: {h.get('cseq')}",
        "Contact: <sip:bob@10.0.0.2:5080>",
    ]
    if extra:
        lines.append(extra.rstrip("\n"))
    lines += ["Content-Length: 0", "", ""]
    return "\n".join(lines)
