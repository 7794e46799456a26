"""Detection metrics over screened calls: pure functions, checked by hand in the tests.

Definitions (also in docs/detection.md, "Method"):

* A call is **blocked** when the policy's decision is ``reject``, **diverted** when it is
  ``challenge`` or ``voicemail``, **stopped** when it is either. The decision is what the
  policy chose (``Decision.intended`` in monitor mode), before the proxy's fallbacks.
* Positives are robocalls (unwanted). Recall = stopped (or blocked) robocalls / robocalls;
  precision = stopped (or blocked) robocalls / all stopped (or blocked) calls.
* Wrongful block / divert rate = blocked / diverted calls of a class (legitimate human,
  wanted automated) / calls of that class.
* **Calls to detect** a campaign: the smallest k such that call k is stopped and at least
  90 % of calls k … N are stopped (None when no such k). **After-5 rate**: the share of a
  campaign's calls 6 … N that are stopped (the issue's target: >= 90 % for
  rotating-number campaigns), pooled over the campaigns of one caller-ID policy.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

STOP = frozenset({"challenge", "voicemail", "reject"})
DIVERT = frozenset({"challenge", "voicemail"})
TARGET_WRONGFUL_BLOCK = 0.0001
TARGET_WRONGFUL_DIVERT = 0.005
TARGET_AFTER5 = 0.90


@dataclass(frozen=True, slots=True)
class CallResult:
    """One screened call: its truth from the model and spitwall's decision."""

    id: int
    kind: str
    """human, wanted or robocall."""
    decision: str
    """forward, forward_tagged, challenge, voicemail or reject."""
    score: float = 0.0
    latency_ms: float = 0.0
    campaign: int | None = None
    seq: int | None = None
    cli_policy: str | None = None
    level: str = "unsigned"
    action: str = ""
    """What the proxy did (may differ: no challenge UA, monitor mode)."""
    reasons: tuple[str, ...] = ()
    explain: tuple[tuple[str, float, bool, str], ...] = ()
    """Every reason of the score: (signal, weight, infra, detail) — for digging into why
    a call was stopped (``python -m bench.traffic.diagnose``)."""


@dataclass(frozen=True, slots=True)
class Campaign:
    id: int
    policy: str
    level: str
    size: int
    calls_to_detect: int | None
    after5: float | None
    """Share of calls 6..N stopped (None when the campaign has 5 calls or fewer)."""


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1); 0.0 for no values."""
    if not values:
        return 0.0
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(q * len(s)) - 1))
    return s[k]


def calls_to_detect(decisions: Sequence[str], share: float = TARGET_AFTER5) -> int | None:
    n = len(decisions)
    stopped_from = [0] * (n + 1)
    for i in range(n - 1, -1, -1):
        stopped_from[i] = stopped_from[i + 1] + (decisions[i] in STOP)
    for k in range(n):
        if decisions[k] in STOP and stopped_from[k] >= share * (n - k):
            return k + 1
    return None


def campaigns(results: Iterable[CallResult]) -> list[Campaign]:
    by: dict[int, list[CallResult]] = defaultdict(list)
    for r in results:
        if r.campaign is not None:
            by[r.campaign].append(r)
    out = []
    for cid, calls in sorted(by.items()):
        calls.sort(key=lambda r: r.seq or 0)
        d = [r.decision for r in calls]
        tail = d[5:]
        out.append(
            Campaign(
                cid,
                calls[0].cli_policy or "?",
                calls[0].level,
                len(d),
                calls_to_detect(d),
                _ratio(sum(x in STOP for x in tail), len(tail)),
            )
        )
    return out


@dataclass(slots=True)
class Metrics:
    calls: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    decisions: dict[str, dict[str, int]] = field(default_factory=dict)
    """kind → decision → calls."""
    block_recall: float | None = None
    block_precision: float | None = None
    stop_recall: float | None = None
    stop_precision: float | None = None
    human_block: float | None = None
    human_divert: float | None = None
    human_tagged: float | None = None
    wanted_block: float | None = None
    wanted_divert: float | None = None
    wanted_tagged: float | None = None
    campaigns: list[Campaign] = field(default_factory=list)
    after5: dict[str, float | None] = field(default_factory=dict)
    """Caller-ID policy → pooled share of calls 6..N stopped."""
    detect_median: float | None = None
    detect_p90: float | None = None
    undetected: int = 0
    latency_p50: float = 0.0
    latency_p99: float = 0.0
    top_reasons: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    """kind → most frequent positive reasons among its *stopped* calls."""

    def targets(self) -> dict[str, bool | None]:
        def ok(v: float | None, limit: float, le: bool = True) -> bool | None:
            return None if v is None else (v <= limit if le else v >= limit)

        return {
            "wrongful_block_human<=0.01%": ok(self.human_block, TARGET_WRONGFUL_BLOCK),
            "wrongful_divert_human<=0.5%": ok(self.human_divert, TARGET_WRONGFUL_DIVERT),
            "rotating_after5>=90%": ok(self.after5.get("fresh"), TARGET_AFTER5, le=False),
        }

    def to_json(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__slots__ if k != "campaigns"}  # type: ignore[attr-defined]
        d["campaigns"] = [
            {
                "id": c.id,
                "policy": c.policy,
                "level": c.level,
                "size": c.size,
                "calls_to_detect": c.calls_to_detect,
                "after5": c.after5,
            }
            for c in self.campaigns
        ]
        d["targets"] = self.targets()
        return d


def compute(results: Sequence[CallResult]) -> Metrics:
    m = Metrics(calls=len(results))
    kinds: dict[str, list[CallResult]] = defaultdict(list)
    for r in results:
        kinds[r.kind].append(r)
    m.by_kind = {k: len(v) for k, v in kinds.items()}
    for k, v in kinds.items():
        counts: dict[str, int] = defaultdict(int)
        for r in v:
            counts[r.decision] += 1
        m.decisions[k] = dict(counts)
    robo = kinds.get("robocall", [])
    blocked = [r for r in results if r.decision == "reject"]
    stopped = [r for r in results if r.decision in STOP]
    m.block_recall = _ratio(sum(r.decision == "reject" for r in robo), len(robo))
    m.block_precision = _ratio(sum(r.kind == "robocall" for r in blocked), len(blocked))
    m.stop_recall = _ratio(sum(r.decision in STOP for r in robo), len(robo))
    m.stop_precision = _ratio(sum(r.kind == "robocall" for r in stopped), len(stopped))
    for kind, prefix in (("human", "human"), ("wanted", "wanted")):
        v = kinds.get(kind, [])
        setattr(m, f"{prefix}_block", _ratio(sum(r.decision == "reject" for r in v), len(v)))
        setattr(m, f"{prefix}_divert", _ratio(sum(r.decision in DIVERT for r in v), len(v)))
        setattr(
            m, f"{prefix}_tagged", _ratio(sum(r.decision == "forward_tagged" for r in v), len(v))
        )
    m.campaigns = campaigns(results)
    pooled: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in robo:
        if r.seq is not None and r.seq > 5 and r.cli_policy:
            for key in (r.cli_policy, "all"):
                pooled[key][0] += r.decision in STOP
                pooled[key][1] += 1
    m.after5 = {k: _ratio(a, b) for k, (a, b) in sorted(pooled.items())}
    ks = [c.calls_to_detect for c in m.campaigns if c.calls_to_detect is not None]
    m.undetected = sum(c.calls_to_detect is None for c in m.campaigns)
    if ks:
        m.detect_median = statistics.median(ks)
        m.detect_p90 = percentile(ks, 0.9)
    lat = [r.latency_ms for r in results]
    m.latency_p50, m.latency_p99 = percentile(lat, 0.5), percentile(lat, 0.99)
    for k, v in kinds.items():
        reasons: dict[str, int] = defaultdict(int)
        for r in v:
            if r.decision in STOP:
                for s in r.reasons:
                    reasons[s] += 1
        m.top_reasons[k] = sorted(reasons.items(), key=lambda x: -x[1])[:5]
    return m
