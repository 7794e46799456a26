"""Packets out of a pcap or pcapng file, with every unreadable part named.

Why this module: an operator's capture is rarely clean. Files are cut off by a full disk
or a killed ``tcpdump``, records are snapped short (``-s 200``), and some "captures" are
not captures at all. Scapy's readers stop quietly (with a log warning) at the first bad
record; here every record is read with its file offset, so what scapy could not read is
reported as a :class:`Problem` naming the record index and the reason, and everything
before it is still used.

Records are decoded with scapy's link-layer classes (Ethernet, Linux cooked, raw IP, BSD
loopback …) down to IPv4/IPv6 and UDP/TCP; anything else is counted, not reported
(a capture of a SIP trunk carries RTP, DNS and ARP too).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from scapy.config import conf
from scapy.error import Scapy_Exception
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment
from scapy.packet import Packet, Padding, Raw
from scapy.utils import RawPcapNgReader, RawPcapReader

MAX_RECORD = 262_144
"""Largest captured length a sane capture uses (tcpdump's maximum snaplen)."""

_LAYERS_LOADED = False


def _quiet_scapy() -> None:
    """Scapy logs a warning per odd record; the replay report says it better."""
    logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
    logging.getLogger("scapy").setLevel(logging.ERROR)


@dataclass(frozen=True, slots=True)
class Problem:
    """A part of the capture that could not be used, and why."""

    index: int | None
    """1-based record (packet) number, None when the problem is the file itself."""
    reason: str
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"packet": self.index, "reason": self.reason, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Segment:
    """The transport payload of one packet (a UDP datagram or a TCP segment)."""

    index: int
    time: float
    """Packet time, UNIX seconds."""
    proto: Literal["udp", "tcp"]
    src: str
    sport: int
    dst: str
    dport: int
    payload: bytes
    seq: int = 0
    """TCP sequence number of the first payload byte (SYN already accounted for)."""
    syn: bool = False
    fin: bool = False
    rst: bool = False
    truncated: bool = False
    """The capture holds fewer bytes of this packet than went over the wire."""


@dataclass(slots=True)
class CaptureStats:
    records: int = 0
    ip: int = 0
    udp: int = 0
    tcp: int = 0
    other: int = 0
    """Records that are neither UDP nor TCP over IP (ARP, ICMP …): skipped."""
    fragments: int = 0
    format: str = ""


def _open(path: Path) -> Any:
    _quiet_scapy()
    global _LAYERS_LOADED
    if not _LAYERS_LOADED:
        import scapy.layers.l2  # noqa: F401  (registers the link types)

        _LAYERS_LOADED = True
    return RawPcapReader(str(path))  # opens RawPcapNgReader when the magic says so


def read_capture(path: str | Path, stats: CaptureStats) -> Iterator[Segment | Problem]:
    """Every UDP/TCP payload of the capture in file order, and every problem met."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        yield Problem(None, "cannot_open", f"{p}: {exc.strerror or exc}")
        return
    if size == 0:
        yield Problem(None, "empty_file", f"{p} is empty")
        return
    try:
        reader = _open(p)
    except (Scapy_Exception, OSError, EOFError, ValueError) as exc:
        try:
            with p.open("rb") as fh:
                magic = fh.read(4)
        except OSError as why:  # a directory, no read permission: not a capture at all
            yield Problem(None, "cannot_open", f"{p}: {why.strerror or why}")
            return
        yield Problem(
            None,
            "not_a_capture",
            f"{p}: not a pcap or pcapng file (starts with {magic!r}; {exc})",
        )
        return
    ng = isinstance(reader, RawPcapNgReader)
    stats.format = "pcapng" if ng else "pcap"
    fh = reader.f
    seekable = not p.name.endswith((".gz", ".xz", ".bz2"))  # offsets then mean file bytes
    index = 0
    try:
        while True:
            start = _tell(fh)
            try:
                data, meta = reader._read_packet()
            except EOFError:
                left = size - start if seekable and start is not None else 0
                if left > 0:
                    yield Problem(
                        index + 1,
                        "truncated_record",
                        f"the file ends inside record {index + 1} (offset {start}:"
                        f" {left} bytes of an incomplete record)",
                    )
                return
            except Exception as exc:  # scapy: a record it cannot make sense of
                yield Problem(index + 1, "corrupt_record", f"offset {start}: {exc}")
                return
            index += 1
            stats.records += 1
            if ng:
                linktype = meta.linktype
                t = ((meta.tshigh << 32) | meta.tslow) / float(meta.tsresol or 1_000_000)
                wirelen, caplen = meta.wirelen, len(data)
            else:
                linktype = reader.linktype
                t = meta.sec + meta.usec / (1e9 if getattr(reader, "nano", False) else 1e6)
                wirelen, caplen = meta.wirelen, meta.caplen
                if caplen > MAX_RECORD:
                    yield Problem(
                        index,
                        "corrupt_record",
                        f"offset {start}: captured length {caplen} is implausible;"
                        f" the rest of the file ({size - (start or 0)} bytes) is not read",
                    )
                    return
                if len(data) < caplen:
                    yield Problem(
                        index,
                        "truncated_record",
                        f"offset {start}: record says {caplen} bytes, the file holds"
                        f" {len(data)} (the file is cut off here)",
                    )
                    return
            yield from _decode(index, t, linktype, data, wirelen > caplen, stats)
    finally:
        reader.close()


def _tell(fh: Any) -> int | None:
    try:
        return int(fh.tell())
    except (OSError, ValueError, AttributeError):
        return None


def _decode(
    index: int, t: float, linktype: int, data: bytes, snapped: bool, stats: CaptureStats
) -> Iterator[Segment | Problem]:
    cls: Any = conf.l2types.get(linktype)
    if cls is None:
        yield Problem(index, "unsupported_link_type", f"link type {linktype}")
        return
    try:
        pkt: Packet = cls(data)
    except Exception as exc:  # scapy dissectors raise anything on garbage
        yield Problem(index, "undecodable_packet", str(exc)[:200])
        return
    ip: Any = pkt.getlayer(IP) or pkt.getlayer(IPv6)
    if ip is None:
        stats.other += 1
        return
    stats.ip += 1
    if isinstance(ip, IP) and (ip.flags.MF or ip.frag):
        stats.fragments += 1
        yield Problem(index, "ip_fragment", "IPv4 fragments are not reassembled")
        return
    if pkt.getlayer(IPv6ExtHdrFragment) is not None:
        stats.fragments += 1
        yield Problem(index, "ip_fragment", "IPv6 fragments are not reassembled")
        return
    l4: Any = pkt.getlayer(UDP) or pkt.getlayer(TCP)
    if l4 is None:
        stats.other += 1
        return
    payload = _payload(l4)
    src, dst = str(ip.src), str(ip.dst)
    if isinstance(l4, UDP):
        stats.udp += 1
        yield Segment(
            index, t, "udp", src, int(l4.sport), dst, int(l4.dport), payload, truncated=snapped
        )
        return
    stats.tcp += 1
    flags = int(l4.flags)
    syn, fin, rst = bool(flags & 0x02), bool(flags & 0x01), bool(flags & 0x04)
    seq = (int(l4.seq) + (1 if syn else 0)) & 0xFFFFFFFF
    yield Segment(
        index,
        t,
        "tcp",
        src,
        int(l4.sport),
        dst,
        int(l4.dport),
        payload,
        seq=seq,
        syn=syn,
        fin=fin,
        rst=rst,
        truncated=snapped,
    )


def _payload(l4: Any) -> bytes:
    """The transport payload without link-layer padding (Ethernet pads short frames)."""
    body = l4.payload
    if body is None or isinstance(body, Padding):
        return b""
    raw = bytes(body)
    pad = l4.getlayer(Padding)
    if pad is not None:
        raw = raw[: len(raw) - len(bytes(pad))]
    if isinstance(body, Raw) or raw:
        return raw
    return b""


_PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")


def file_kind(path: str | Path) -> str:
    """``pcap``, ``pcapng`` or ``unknown`` from the magic number (for messages)."""
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError:
        return "unknown"
    if magic == b"\x0a\x0d\x0d\x0a":
        return "pcapng"
    if magic in (
        b"\xd4\xc3\xb2\xa1",
        b"\xa1\xb2\xc3\xd4",
        b"\x4d\x3c\xb2\xa1",
        b"\xa1\xb2\x3c\x4d",
    ):
        return "pcap"
    return "unknown"


__all__ = ["CaptureStats", "Problem", "Segment", "file_kind", "read_capture"]
