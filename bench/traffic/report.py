"""Markdown tables of benchmark metrics (pasted into docs/detection.md) and JSON."""

from __future__ import annotations

from collections.abc import Sequence

from .metrics import Metrics


def pct(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{100 * v:.{digits}f} %"


def _mark(ok: bool | None) -> str:
    return "" if ok is None else (" ✓" if ok else " ✗")


def table(rows: Sequence[tuple[str, str, Metrics]]) -> str:
    """One line per (scenario, config)."""
    head = (
        "| scenario | config | calls (human/wanted/robo) | block recall / precision |"
        " stop recall / precision | human: wrongful block / divert (tagged) |"
        " wanted: block / divert | rotating after 5 | calls to detect (median, p90, never) |"
        " latency p50 / p99 |\n|---|---|---|---|---|---|---|---|---|---|\n"
    )
    out = [head]
    for scen, cfg, m in rows:
        t = m.targets()
        k = m.by_kind
        calls = f"{m.calls} ({k.get('human', 0)}/{k.get('wanted', 0)}/{k.get('robocall', 0)})"
        det = (
            f"{m.detect_median if m.detect_median is not None else '-'},"
            f" {m.detect_p90 if m.detect_p90 is not None else '-'}, {m.undetected}"
            f" of {len(m.campaigns)}"
        )
        out.append(
            f"| {scen} | {cfg} | {calls} | {pct(m.block_recall)} / {pct(m.block_precision)} |"
            f" {pct(m.stop_recall)} / {pct(m.stop_precision)} |"
            f" {pct(m.human_block, 2)}{_mark(t['wrongful_block_human<=0.01%'])} /"
            f" {pct(m.human_divert, 2)}{_mark(t['wrongful_divert_human<=0.5%'])}"
            f" ({pct(m.human_tagged)}) |"
            f" {pct(m.wanted_block)} / {pct(m.wanted_divert)} |"
            f" {pct(m.after5.get('fresh'))}{_mark(t['rotating_after5>=90%'])} | {det} |"
            f" {m.latency_p50:.2f} / {m.latency_p99:.2f} ms |\n"
        )
    return "".join(out)


def reasons(rows: Sequence[tuple[str, str, Metrics]]) -> str:
    out = []
    for scen, cfg, m in rows:
        parts = []
        for kind in ("human", "wanted", "robocall"):
            top = m.top_reasons.get(kind) or []
            if top:
                parts.append(f"{kind}: " + ", ".join(f"`{s}` {n}" for s, n in top[:4]))
        out.append(f"- {scen} / {cfg} — stopped calls' top reasons: " + "; ".join(parts))
    return "\n".join(out) + "\n"
