"""The replay report: one line per call, a summary table, and what could not be read.

Two forms. ``text`` is for a person: a fixed-width line per call (time, caller → callee,
verstat/attestation, score, action, the top reasons, what happened in the capture), then
the summary: calls per action, per attestation, the reasons that weighed most often, and
how the calls spitwall would have diverted or rejected actually ended (an answered call
that lasted minutes is a call worth a second look). ``jsonl`` is for a program: one JSON
object a line, ``{"type": "call", …}`` per call, ``{"type": "problem", …}`` per unreadable
part, and one ``{"type": "summary", …}`` last.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from .capture import CaptureStats
from .session import CallReport, ReplayResult
from .streams import ExtractStats

ACTIONS = (
    "forward",
    "forward_tagged",
    "forward_monitor",
    "challenge",
    "voicemail",
    "reject",
    "shed",
    "signed",
    "forward_unsigned",
)
"""``shed``: dropped (or 503) by the rate limiter, never screened; ``signed`` /
``forward_unsigned``: outbound calls from an STI-AS signing trunk, never scored."""
STOPPED = ("challenge", "voicemail", "reject", "shed")
LONG_CALL = 60.0


@dataclass(slots=True)
class Summary:
    path: str
    format: str
    capture: CaptureStats
    extract: ExtractStats
    calls: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    decisions: Counter[str] = field(default_factory=Counter)
    attest: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    trunks: Counter[str] = field(default_factory=Counter)
    """Calls per ``[proxy.trunks]`` entry, as ``NAME (kind)``; ``-`` for no trunk."""
    outcome_by_action: dict[str, Counter[str]] = field(default_factory=dict)
    stopped_but_talked: int = 0
    """Calls spitwall would have diverted or rejected that were answered and lasted at
    least a minute in the capture: the ones to look at first."""
    identity_failures: Counter[str] = field(default_factory=Counter)
    problems: int = 0
    shed_requests: int = 0
    unchecked_passes: int = 0
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    complete: bool = True
    """The whole capture was read (no problem reported)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "summary",
            "capture": self.path,
            "format": self.format,
            "packets": self.capture.records,
            "udp": self.capture.udp,
            "tcp": self.capture.tcp,
            "tcp_flows": self.extract.tcp_flows,
            "sip_messages": self.extract.sip_messages,
            "calls": self.calls,
            "actions": dict(self.actions),
            "decisions": dict(self.decisions),
            "attestation": dict(self.attest),
            "top_reasons": dict(self.reasons.most_common(10)),
            "trunks": dict(self.trunks),
            "identity_failures": dict(self.identity_failures),
            "outcome_by_action": {k: dict(v) for k, v in self.outcome_by_action.items()},
            "stopped_but_talked": self.stopped_but_talked,
            "problems": self.problems,
            "shed_requests": self.shed_requests,
            "unchecked_passes": self.unchecked_passes,
            "complete": self.complete,
            "latency_ms": {
                "p50": round(self.latency_p50_ms, 3),
                "p99": round(self.latency_p99_ms, 3),
            },
        }


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]


def summarize(
    path: str, capture: CaptureStats, extract: ExtractStats, result: ReplayResult
) -> Summary:
    s = Summary(path, capture.format or "unknown", capture, extract)
    s.calls = len(result.calls)
    for c in result.calls:
        s.actions[c.action] += 1
        s.decisions[c.decision] += 1
        s.attest[_attest_label(c)] += 1
        s.trunks[_trunk_label(c) or "-"] += 1
        if c.identity_reason and c.verstat == "TN-Validation-Failed":
            s.identity_failures[c.identity_reason] += 1
        for r in c.reasons[:3]:
            if r["weight"] > 0:
                s.reasons[r["signal"]] += 1
        s.outcome_by_action.setdefault(c.action, Counter())[c.outcome] += 1
        if c.decision in STOPPED and c.duration is not None and c.duration >= LONG_CALL:
            s.stopped_but_talked += 1
    s.problems = len(result.problems)
    s.shed_requests, s.unchecked_passes = result.shed_requests, result.unchecked_passes
    s.complete = not result.problems
    lat = [c.latency_ms for c in result.calls if c.screened]
    s.latency_p50_ms, s.latency_p99_ms = _pct(lat, 0.5), _pct(lat, 0.99)
    return s


def _trunk_label(c: CallReport) -> str:
    return f"{c.trunk} ({c.trunk_kind})" if c.trunk else ""


def _attest_label(c: CallReport) -> str:
    if c.action == "signed":
        return f"signs {c.attest}"
    if c.decision == "outbound":
        return "out unsigned"
    if not c.screened:
        return "not read"
    if c.attest and c.verstat == "TN-Validation-Passed":
        return f"verified {c.attest}"
    if c.verstat == "TN-Validation-Failed":
        return "failed"
    return "unsigned"


def _ts(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def jsonl_lines(result: ReplayResult, summary: Summary) -> Iterator[str]:
    for c in result.calls:
        yield json.dumps(c.to_json(), sort_keys=True)
    for p in result.problems:
        yield json.dumps({"type": "problem", **p.to_json()}, sort_keys=True)
    yield json.dumps(summary.to_json(), sort_keys=True)


def write_jsonl(out: TextIO, result: ReplayResult, summary: Summary) -> None:
    for line in jsonl_lines(result, summary):
        out.write(line + "\n")


def write_text(out: TextIO, result: ReplayResult, summary: Summary, reasons: int = 3) -> None:
    w = out.write
    w(
        f"spitwall replay of {summary.path} ({summary.format}, {summary.capture.records} packets,"
        f" {summary.extract.sip_messages} SIP messages, {summary.calls} calls)\n\n"
    )
    if result.calls:
        w(
            f"{'time (UTC)':19}  {'caller':>14} -> {'callee':<14} {'identity':<11} {'score':>5}"
            f"  {'action':<26} {'in capture':<12} why\n"
        )
    for c in result.calls:
        why = ", ".join(f"{r['signal']} {r['weight']:+.1f}" for r in c.reasons[:reasons]) or "-"
        if c.identity_reason and c.verstat == "TN-Validation-Failed":
            why = f"[{c.identity_reason}] " + why
        if c.trunk:
            why = f"via {_trunk_label(c)}: " + why
        score = "-" if c.score is None else f"{c.score:5.1f}"
        action = c.action + (f" {c.code}" if c.code else "")
        if c.decision != c.action and c.action.startswith("forward"):
            action += f" [{c.decision}]"
        w(
            f"{_ts(c.time):19}  {(c.caller or 'anonymous')[:14]:>14} -> {c.callee[:14]:<14}"
            f" {_attest_label(c):<11} {score:>5}  {action:<26} {c.outcome:<12} {why}\n"
        )
    w("\nsummary\n")
    w(f"  {'action':<16} {'calls':>7} {'share':>7}   outcome in the capture\n")
    for a in ACTIONS:
        n = summary.actions.get(a, 0)
        if not n:
            continue
        share = 100.0 * n / max(1, summary.calls)
        oc = summary.outcome_by_action.get(a, Counter())
        detail = ", ".join(f"{k} {v}" for k, v in oc.most_common())
        w(f"  {a:<16} {n:>7} {share:6.1f}%   {detail}\n")
    if summary.decisions != summary.actions:
        w(
            "  (policy decisions: "
            + ", ".join(f"{k} {v}" for k, v in summary.decisions.most_common())
            + "; the config forwards some of them: no challenge UA, or monitor mode)\n"
        )
    w(
        "  identity: "
        + (", ".join(f"{k} {v}" for k, v in summary.attest.most_common()) or "-")
        + "\n"
    )
    if summary.identity_failures:
        w(
            "  verification failures: "
            + ", ".join(f"{k} {v}" for k, v in summary.identity_failures.most_common())
            + "\n"
        )
        if "x5u_fetch_failed" in summary.identity_failures:
            w(
                "    (x5u fetching is off in replay: give the chains with --cert-dir,"
                " or allow fetching with --fetch-x5u)\n"
            )
    if set(summary.trunks) - {"-"}:
        w(
            "  trunks: "
            + ", ".join(f"{k} {v}" for k, v in summary.trunks.most_common() if k != "-")
            + f"; no trunk {summary.trunks.get('-', 0)}\n"
        )
    if summary.reasons:
        w(
            "  top reasons: "
            + ", ".join(f"{k} {v}" for k, v in summary.reasons.most_common(8))
            + "\n"
        )
    if summary.stopped_but_talked:
        w(
            f"  {summary.stopped_but_talked} call(s) spitwall would have stopped were answered"
            f" and lasted >= {LONG_CALL:.0f} s in the capture: check them first\n"
        )
    w(
        f"  screening latency: p50 {summary.latency_p50_ms:.2f} ms,"
        f" p99 {summary.latency_p99_ms:.2f} ms\n"
    )
    x = summary.extract
    if x.non_sip_datagrams or x.non_sip_flows or summary.capture.other:
        w(
            f"  ignored: {x.non_sip_datagrams} non-SIP datagram(s), {x.non_sip_flows} non-SIP"
            f" TCP flow(s) (SIP over TLS cannot be read from a capture),"
            f" {summary.capture.other} packet(s) that are not UDP/TCP over IP\n"
        )
    if result.shed_requests:
        w(
            f"  {result.shed_requests} request(s) over proxy.rate_limit would have been shed"
            " (calls among them are listed as shed, never screened)\n"
        )
    if result.unchecked_passes:
        w(
            f"  {result.unchecked_passes} INVITE(s) carried a challenge pass token that could"
            " not be checked (no challenge secret file): screened like other calls here,"
            " let through by the proxy if valid\n"
        )
    if result.retransmissions or result.orphans:
        w(
            f"  {result.retransmissions} repeated INVITE(s) not screened again;"
            f" {result.orphans} response(s)/BYE/CANCEL for calls not in the capture\n"
        )
    if result.problems:
        w(f"\nnot read ({len(result.problems)} problem(s); everything else above was used)\n")
        for p in result.problems[:200]:
            where = f"packet {p.index}" if p.index is not None else "file"
            w(f"  {where}: {p.reason}: {p.detail}\n")
        if len(result.problems) > 200:
            w(f"  … and {len(result.problems) - 200} more (use --format jsonl for all)\n")
    else:
        w("\nthe whole capture was read\n")
