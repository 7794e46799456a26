"""Build SIP traffic and write it as pcap/pcapng with scapy (no network involved)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet
from scapy.utils import PcapNgWriter, wrpcap

T0 = 1_780_000_000.0
_n = itertools.count(1)


def _hp(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass
class Call:
    """One call's SIP messages between a caller UA and the screening point."""

    caller: str
    callee: str
    src: str = "192.0.2.10"
    sport: int = 5060
    dst: str = "192.0.2.1"
    dport: int = 5060
    transport: str = "UDP"
    identity: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    """Extra header fields of the INVITE (``X-Spitwall-Pass`` …)."""
    call_id: str = field(default_factory=lambda: f"call-{next(_n)}@test")
    from_tag: str = field(default_factory=lambda: f"ft{next(_n)}")
    to_tag: str = field(default_factory=lambda: f"tt{next(_n)}")
    branch: str = field(default_factory=lambda: f"z9hG4bK{next(_n)}")

    def _common(self, method: str, cseq: int, to_tag: bool) -> list[str]:
        to = f"<sip:{self.callee}@{_hp(self.dst, self.dport)}>"
        if to_tag:
            to += f";tag={self.to_tag}"
        return [
            f"Via: SIP/2.0/{self.transport} {_hp(self.src, self.sport)};branch={self.branch}",
            f"From: <sip:{self.caller}@{_hp(self.src, self.sport)}>;tag={self.from_tag}",
            f"To: {to}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq} {method}",
        ]

    def invite(self) -> bytes:
        lines = [f"INVITE sip:{self.callee}@{_hp(self.dst, self.dport)} SIP/2.0"]
        lines += self._common("INVITE", 1, False)
        lines += ["Max-Forwards: 70", f"Contact: <sip:{self.caller}@{_hp(self.src, self.sport)}>"]
        if self.identity:
            lines.append(f"Identity: {self.identity}")
        lines += [f"{name}: {value}" for name, value in self.headers]
        body = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
        body += "m=audio 4000 RTP/AVP 0\r\n"
        lines += ["Content-Type: application/sdp", f"Content-Length: {len(body)}", "", ""]
        return ("\r\n".join(lines) + body).encode()

    def response(self, status: int, reason: str) -> bytes:
        lines = [f"SIP/2.0 {status} {reason}", *self._common("INVITE", 1, status > 100)]
        lines += ["Content-Length: 0", "", ""]
        return "\r\n".join(lines).encode()

    def bye(self, by_caller: bool = True) -> bytes:
        lines = [f"BYE sip:{self.caller}@{_hp(self.src, self.sport)} SIP/2.0"]
        common = self._common("BYE", 2, True)
        if not by_caller:  # the callee's BYE: From and To swap
            common[1], common[2] = (
                common[2].replace("To:", "From:"),
                common[1].replace("From:", "To:"),
            )
        lines += [*common, "Max-Forwards: 70", "Content-Length: 0", "", ""]
        return "\r\n".join(lines).encode()

    def cancel(self) -> bytes:
        lines = [f"CANCEL sip:{self.callee}@{_hp(self.dst, self.dport)} SIP/2.0"]
        lines += [*self._common("CANCEL", 1, False), "Max-Forwards: 70", "Content-Length: 0"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _ip(src: str, dst: str) -> Packet:
    return IPv6(src=src, dst=dst) if ":" in src else IP(src=src, dst=dst)


def udp(src: str, sport: int, dst: str, dport: int, payload: bytes, t: float) -> Packet:
    p = (
        Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        / _ip(src, dst)
        / UDP(sport=sport, dport=dport)
        / payload
    )
    p.time = t
    return p


def to_caller(call: Call, payload: bytes, t: float) -> Packet:
    return udp(call.dst, call.dport, call.src, call.sport, payload, t)


def from_caller(call: Call, payload: bytes, t: float) -> Packet:
    return udp(call.src, call.sport, call.dst, call.dport, payload, t)


def answered_call(call: Call, t: float, talk: float) -> list[Packet]:
    """INVITE, 180, 200, BYE from the caller after ``talk`` seconds."""
    return [
        from_caller(call, call.invite(), t),
        to_caller(call, call.response(180, "Ringing"), t + 0.5),
        to_caller(call, call.response(200, "OK"), t + 2.0),
        from_caller(call, call.bye(), t + 2.0 + talk),
    ]


def tcp_segments(
    src: str,
    sport: int,
    dst: str,
    dport: int,
    data: bytes,
    cuts: Sequence[int],
    t: float,
    *,
    isn: int = 1000,
    syn: bool = True,
) -> list[Packet]:
    """A SYN (optional) and ``data`` cut at the offsets ``cuts`` into PSH/ACK segments."""
    out: list[Packet] = []
    if syn:
        p = (
            Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
            / _ip(src, dst)
            / TCP(sport=sport, dport=dport, flags="S", seq=isn)
        )
        p.time = t
        out.append(p)
    bounds = [0, *cuts, len(data)]
    for i, (a, b) in enumerate(itertools.pairwise(bounds)):
        p = (
            Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
            / _ip(src, dst)
            / TCP(sport=sport, dport=dport, flags="PA", seq=(isn + 1 + a) % (1 << 32))
            / data[a:b]
        )
        p.time = t + 0.001 * (i + 1)
        out.append(p)
    return out


def write_pcap(path: Path, packets: Sequence[Packet]) -> Path:
    wrpcap(str(path), list(packets))
    return path


def write_pcapng(path: Path, packets: Sequence[Packet]) -> Path:
    with PcapNgWriter(str(path)) as w:
        for p in packets:
            w.write(p)
    return path
