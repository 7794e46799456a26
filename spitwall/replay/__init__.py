"""``spitwall replay``: what spitwall would have done with the calls of a capture.

Public API::

    result, summary = await replay_capture(path, cfg, certs, seed_store=None)
        path: pcap or pcapng file; cfg: SpitwallConfig; certs: a CertificateSource
        (OfflineCertificates by default, CertificateService to fetch), None = no
        verification. result.calls: list[CallReport]; result.problems: list[Problem]
        (packet index + reason for everything that could not be used); summary: Summary.
    read_sip(path) -> (items, problems, CaptureStats, ExtractStats)
        SIP messages (SipItem, sorted by packet time) from UDP and reassembled TCP.
    OfflineCertificates(anchors, cert_dir)   x5u chains from a directory, no network
    write_text(out, result, summary) / write_jsonl(out, result, summary)

Modules: ``capture`` (pcap/pcapng records → UDP/TCP payloads, problems by packet),
``streams`` (TCP reassembly and SIP framing), ``offline`` (certificates without the
network), ``session`` (the production CallScreener driven by captured messages),
``wiring`` (the live path's config-driven parts: trunk table, rate limiter, signing
trunks, pass tokens — and what is not modelled), ``report`` (text and JSON lines).
Each call's report names its ``[proxy.trunks]`` entry and kind (``trunk``,
``trunk_kind``); actions beyond the policy's: ``shed`` (rate limiter, not screened),
``signed`` / ``forward_unsigned`` (outbound from a signing trunk, not scored).
"""

from __future__ import annotations

from pathlib import Path

from attestation.verify import CertificateSource
from proxy.sip import Limits

from ..config import SpitwallConfig
from .capture import CaptureStats, Problem, Segment, read_capture
from .offline import OfflineCertificates
from .report import Summary, summarize, write_jsonl, write_text
from .session import CallReport, ReplayResult, ReplaySession
from .streams import ExtractStats, SipExtractor, SipItem


def read_sip(
    path: str | Path, limits: Limits | None = None
) -> tuple[list[SipItem], list[Problem], CaptureStats, ExtractStats]:
    """All SIP messages of a capture in packet-time order, and what could not be read
    (``limits``: the proxy's message limits, default its defaults)."""
    stats = CaptureStats()
    extractor = SipExtractor() if limits is None else SipExtractor(limits)
    items: list[SipItem] = []
    problems: list[Problem] = []

    def take(out: list[SipItem | Problem]) -> None:
        for x in out:
            (problems if isinstance(x, Problem) else items).append(x)  # type: ignore[arg-type]

    for x in read_capture(path, stats):
        if isinstance(x, Problem):
            problems.append(x)
        else:
            take(extractor.feed(x))
    take(extractor.finish())
    items.sort(key=lambda i: (i.time, i.index))
    problems.sort(key=lambda p: (p.index is not None, p.index or 0))
    return items, problems, stats, extractor.stats


async def replay_capture(
    path: str | Path,
    cfg: SpitwallConfig,
    certs: CertificateSource | None,
    *,
    seed_store: Path | None = None,
) -> tuple[ReplayResult, Summary]:
    """Read ``path`` and screen every call in it; see the module docstring."""
    items, problems, cstats, xstats = read_sip(path, cfg.proxy.limits.parse_limits())
    async with ReplaySession(cfg, certs, seed_store=seed_store) as session:
        result = await session.run(items)
    result.problems[:0] = problems
    return result, summarize(str(path), cstats, xstats, result)


__all__ = [
    "CallReport",
    "CaptureStats",
    "ExtractStats",
    "OfflineCertificates",
    "Problem",
    "ReplayResult",
    "ReplaySession",
    "Segment",
    "SipExtractor",
    "SipItem",
    "Summary",
    "read_capture",
    "read_sip",
    "replay_capture",
    "summarize",
    "write_jsonl",
    "write_text",
]
