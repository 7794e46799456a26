"""SIP messages out of captured UDP datagrams and TCP segments.

Theory of operation. A UDP datagram that looks like SIP (a request line or a status
line) is one message. TCP bytes are put back in order per flow (source and destination
address and port): the SYN fixes the first sequence number; for a flow whose SYN was not
captured, the first 32 segments are held and the lowest sequence number among them is
taken as the start, so segments captured out of order still line up. Retransmitted and
overlapping bytes are trimmed; contiguous bytes go to the same
:class:`~proxy.sip.StreamFramer` the proxy uses (framing by Content-Length), so a message
split across any number of segments comes out whole. A hole that is never filled ends the
usable part of that flow, and the report says how many bytes were lost where.

Each message carries the time of the packet that completed it (for TCP, the latest of
the segments it came in), which is the time the proxy would have seen it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from proxy.sip import (
    Limits,
    Request,
    Response,
    SipFramingError,
    SipParseError,
    StreamFramer,
    parse_message,
)

from .capture import Problem, Segment

_SIP_START = re.compile(rb"^(?:[A-Za-z]+ [^ \r\n]+ SIP/2\.0\r?\n|SIP/2\.0 [0-9]{3}[ \r\n])")
_SIP_PREFIX = re.compile(rb"^(?:[A-Z]{3,10} |SIP/2\.0 )")
_HOLD = 32
_MOD = 1 << 32
_HALF = 1 << 31
LIMITS = Limits(max_message_size=65535)
"""The proxy's defaults; ``replay_capture`` passes the configured ``proxy.limits``, so a
message the proxy would refuse (400/513) is named as a problem, not screened."""


def looks_like_sip(data: bytes) -> bool:
    """A request line or a status line at the start (after keep-alive CRLFs)."""
    return bool(_SIP_START.match(data.lstrip(b"\r\n")[:512]))


@dataclass(frozen=True, slots=True)
class SipItem:
    """One SIP message as the proxy would have received it."""

    index: int
    """Packet that completed the message (1-based)."""
    time: float
    transport: Literal["udp", "tcp"]
    src: str
    sport: int
    dst: str
    dport: int
    message: Request | Response


def _rel(a: int, b: int) -> int:
    """Signed distance a - b in sequence space (RFC 793 modulo arithmetic)."""
    d = (a - b) % _MOD
    return d - _MOD if d >= _HALF else d


@dataclass(slots=True)
class _Flow:
    key: tuple[str, int, str, int]
    base: int | None = None
    """Absolute sequence number of the next byte to deliver."""
    held: list[Segment] = field(default_factory=list)
    pending: dict[int, Segment] = field(default_factory=dict)
    framer: StreamFramer = field(default_factory=lambda: StreamFramer(LIMITS))
    kind: Literal["unknown", "sip", "other", "broken"] = "unknown"
    tmax: float = 0.0
    last_index: int = 0
    bytes_in: int = 0
    probe: bytes = b""
    """Bytes held until the first line shows whether the flow carries SIP."""

    def name(self) -> str:
        s, sp, d, dp = self.key
        return f"tcp {_hp(s, sp)} -> {_hp(d, dp)}"


def _hp(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(slots=True)
class ExtractStats:
    sip_messages: int = 0
    non_sip_datagrams: int = 0
    non_sip_flows: int = 0
    tcp_flows: int = 0


class SipExtractor:
    """Feed :class:`Segment` values in capture order; get :class:`SipItem` and problems."""

    def __init__(self, limits: Limits = LIMITS) -> None:
        self.limits = limits
        self.flows: dict[tuple[str, int, str, int], _Flow] = {}
        self.stats = ExtractStats()

    def feed(self, seg: Segment) -> list[SipItem | Problem]:
        if seg.proto == "udp":
            return self._datagram(seg)
        return self._segment(seg)

    # -- UDP -------------------------------------------------------------------------------

    def _datagram(self, seg: Segment) -> list[SipItem | Problem]:
        data = seg.payload
        if not data.strip(b"\r\n\x00 "):
            return []  # keep-alive
        if not looks_like_sip(data):
            self.stats.non_sip_datagrams += 1
            return []
        try:
            msg = parse_message(data, self.limits)
        except SipParseError as exc:
            why = "truncated_packet" if seg.truncated else "sip_parse_error"
            extra = " (the capture holds only part of this packet)" if seg.truncated else ""
            return [Problem(seg.index, why, f"{exc.status} {exc.reason}{extra}")]
        self.stats.sip_messages += 1
        return [SipItem(seg.index, seg.time, "udp", seg.src, seg.sport, seg.dst, seg.dport, msg)]

    # -- TCP -------------------------------------------------------------------------------

    def _segment(self, seg: Segment) -> list[SipItem | Problem]:
        key = (seg.src, seg.sport, seg.dst, seg.dport)
        flow = self.flows.get(key)
        out: list[SipItem | Problem] = []
        if flow is None or (seg.syn and flow.base is not None and flow.bytes_in):
            if flow is not None:  # a new connection on the same 4-tuple
                out += self._close(flow)
            flow = self.flows[key] = _Flow(key, framer=StreamFramer(self.limits))
            self.stats.tcp_flows += 1
        if seg.truncated:
            out.append(
                Problem(
                    seg.index,
                    "truncated_packet",
                    f"{flow.name()}: the capture holds only part of this segment",
                )
            )
        if seg.syn:
            flow.base = seg.seq
            for h in flow.held:
                flow.pending[h.seq] = h
            flow.held.clear()
        if seg.payload and flow.kind in ("unknown", "sip"):
            if flow.base is None:
                flow.held.append(seg)
                if len(flow.held) >= _HOLD:
                    self._start_without_syn(flow)
            else:
                flow.pending.setdefault(seg.seq, seg)
            out += self._drain(flow)
        if seg.rst or (seg.fin and not flow.pending and not flow.held):
            out += self._close(flow)
            del self.flows[key]
        return out

    @staticmethod
    def _start_without_syn(flow: _Flow) -> None:
        ref = flow.held[0].seq
        flow.base = min((h.seq for h in flow.held), key=lambda s: _rel(s, ref))
        for h in flow.held:
            flow.pending.setdefault(h.seq, h)
        flow.held.clear()

    def _drain(self, flow: _Flow) -> list[SipItem | Problem]:
        out: list[SipItem | Problem] = []
        while flow.base is not None and flow.pending and flow.kind in ("unknown", "sip"):
            ready = None
            for seq, seg in list(flow.pending.items()):
                start = _rel(seq, flow.base)
                end = start + len(seg.payload)
                if end <= 0:
                    del flow.pending[seq]  # a retransmission of delivered bytes
                elif start <= 0:
                    ready = (seq, seg, -start)
                    break
            if ready is None:
                break
            seq, seg, skip = ready
            del flow.pending[seq]
            chunk = seg.payload[skip:]
            flow.base = (flow.base + len(chunk)) % _MOD
            out += self._deliver(flow, seg, chunk)
        return out

    def _deliver(self, flow: _Flow, seg: Segment, chunk: bytes) -> list[SipItem | Problem]:
        if flow.kind == "unknown":
            # decide on the first whole line: a start line may be split across segments
            flow.probe += chunk
            head = flow.probe.lstrip(b"\r\n")
            if b"\n" not in head and len(head) < 512:
                flow.tmax = max(flow.tmax, seg.time)
                return []
            if not looks_like_sip(head):
                flow.kind = "other"
                self.stats.non_sip_flows += 1
                flow.pending.clear()
                flow.probe = b""
                return []
            flow.kind = "sip"
            chunk, flow.probe = flow.probe, b""
        flow.bytes_in += len(chunk)
        flow.tmax = max(flow.tmax, seg.time)
        flow.last_index = seg.index
        try:
            raws = flow.framer.feed(chunk)
        except SipFramingError as exc:
            flow.kind = "broken"
            flow.pending.clear()
            return [
                Problem(
                    seg.index,
                    "tcp_framing_error",
                    f"{flow.name()}: {exc.status} {exc.reason}; the rest of this flow is not used",
                )
            ]
        out: list[SipItem | Problem] = []
        s, sp, d, dp = flow.key
        for raw in raws:
            try:
                msg = parse_message(raw, self.limits)
            except SipParseError as exc:
                out.append(
                    Problem(
                        seg.index, "sip_parse_error", f"{flow.name()}: {exc.status} {exc.reason}"
                    )
                )
                continue
            self.stats.sip_messages += 1
            out.append(SipItem(seg.index, flow.tmax, "tcp", s, sp, d, dp, msg))
        if not raws:
            return out
        flow.tmax = seg.time if flow.framer.buffered else 0.0
        return out

    def _close(self, flow: _Flow) -> list[SipItem | Problem]:
        out: list[SipItem | Problem] = []
        if flow.base is None and flow.held:
            self._start_without_syn(flow)
            out += self._drain(flow)
        if flow.kind in ("unknown", "sip") and flow.pending:
            first = min(flow.pending.values(), key=lambda s: _rel(s.seq, flow.base or s.seq))
            gap = _rel(first.seq, flow.base or first.seq)
            lost = sum(len(s.payload) for s in flow.pending.values())
            out.append(
                Problem(
                    first.index,
                    "tcp_gap",
                    f"{flow.name()}: {gap} bytes missing before packet {first.index};"
                    f" {lost} bytes captured after the hole are not used",
                )
            )
            flow.pending.clear()
            gap = True
        else:
            gap = False
        buffered = flow.framer.buffered
        if flow.kind == "unknown" and _SIP_PREFIX.match(flow.probe.lstrip(b"\r\n")):
            buffered = len(flow.probe)  # the flow ended inside its first line
        if buffered and not gap:
            out.append(
                Problem(
                    flow.last_index,
                    "incomplete_message",
                    f"{flow.name()}: {buffered} bytes of an unfinished SIP message"
                    " when the flow ended",
                )
            )
        return out

    def finish(self) -> list[SipItem | Problem]:
        """End of capture: whatever the flows still hold, and the holes they have."""
        out: list[SipItem | Problem] = []
        for flow in list(self.flows.values()):
            out += self._close(flow)
        self.flows.clear()
        return out
