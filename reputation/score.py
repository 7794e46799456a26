"""The score: hard overrides first, then a log-odds sum of every signal's weight.

Why log-odds: each signal is a likelihood ratio, independent evidence adds, and the prior
(the share of spam among calls) is explicit. ``score = 100 * logistic(prior + sum w)``, so
50 means even odds, and a signal's weight reads as "how many times more likely spam"
(``e**w``). Weights live in ``[reputation.weights]`` and are explained in docs/detection.md.

Hard overrides, in this order, decide regardless of the sum (the reasons are still all
computed and returned, so an operator sees what the call *would* have scored):
1. ``emergency``: the callee is an emergency number (never blocked, FCC 17-151);
2. ``critical_caller``: the caller is a configured PSAP / critical number;
3. ``allow_list``: the callee's own allow list (the user's word beats any evidence);
   ``global_allow_attested``: the deployment's global allow list *and* the call is
   A-attested (when ``policy.global_allow_attested_override``). The operator vouches for
   the number (a pharmacy's or school's alert line) and the originating carrier vouches
   that this caller owns it, so a spoofer cannot borrow the entry; wanted broadcasts look
   exactly like campaigns (fan-out, rate, no challenge passed), and only this says "wanted".
   Without A attestation the entry is the ``list.global_allow`` weight, nothing more;
4. ``dno``: the caller is on the Do-Not-Originate list (score 100);
5. ``invalid_number``: the caller number is impossible or uses an N11 code (score 100,
   when ``policy.block_invalid_numbers``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence

from . import signals
from .lookups import CountersView, LearnedView, ListHitView
from .model import Reason, Score
from .numbers import NumberFlag, is_emergency
from .patterns import PatternFeatures
from .signals import SignalInput

INVALID_FLAGS = frozenset({NumberFlag.NOT_POSSIBLE, NumberFlag.N11})
"""Caller-number flags that make the number invalid for the ``invalid_number`` override."""


def logistic_score(log_odds: float) -> float:
    """``100 * logistic(log_odds)``, safe for any float, rounded to 0.01."""
    if math.isnan(log_odds):
        return 50.0
    if log_odds >= 0:
        p = 1.0 / (1.0 + math.exp(-min(log_odds, 700.0)))
    else:
        e = math.exp(max(log_odds, -700.0))
        p = e / (1.0 + e)
    return round(100.0 * p, 2)


def combine(prior: float, reasons: Iterable[Reason], override: str | None = None) -> Score:
    """Add the weights to the prior and order the reasons by absolute weight.

    With an override the value is 0 (allowing overrides) or 100 (blocking ones).
    """
    ordered = tuple(sorted(reasons, key=lambda r: abs(r.weight), reverse=True))
    total = prior + math.fsum(r.weight for r in ordered)
    value = logistic_score(total)
    if override is not None:
        value = 100.0 if override in BLOCKING_OVERRIDES else 0.0
    return Score(value=value, reasons=ordered, override=override, log_odds=round(total, 4))


BLOCKING_OVERRIDES = frozenset({"dno", "invalid_number"})
ALLOWING_OVERRIDES = frozenset(
    {"emergency", "critical_caller", "allow_list", "global_allow_attested"}
)


def override_for(inp: SignalInput, reasons: Sequence[Reason]) -> str | None:
    """The first hard override that applies, by the order in the module docstring."""
    policy = inp.config.policy
    if is_emergency(inp.facts.callee, policy.emergency_numbers, inp.config.default_region):
        return "emergency"
    if inp.caller.digits and inp.caller.digits in {c.lstrip("+") for c in policy.critical_callers}:
        return "critical_caller"
    names = {r.signal for r in reasons}
    if "list.user_allow" in names:
        return "allow_list"
    if (
        policy.global_allow_attested_override
        and "list.global_allow" in names
        and "list.user_block" not in names
        and inp.attest == "A"
    ):
        return "global_allow_attested"
    if "list.dno" in names:
        return "dno"
    if policy.block_invalid_numbers and inp.caller.flags & INVALID_FLAGS:
        return "invalid_number"
    return None


def _cap_infra(inp: SignalInput, reasons: list[Reason]) -> list[Reason]:
    """Scale the positive infrastructure evidence down to ``signals.infra_cap`` in total
    (and say so in a ``signals.infra_cap`` reason). Volume, sweeps and complaints on the
    call's source keys all measure one fact — a campaign is using this source now — so
    they are strongly correlated and must not add up to certainty about a caller who
    merely shares the source; what the caller's own evidence says (learned allow,
    attestation, history) then still decides."""
    cap = inp.config.signals.infra_cap
    total = math.fsum(r.weight for r in reasons if r.infra and r.weight > 0)
    if cap <= 0 or total <= cap:
        return reasons
    f = cap / total
    out = [
        dataclasses.replace(r, weight=r.weight * f, detail=f"{r.detail} (capped)")
        if r.infra and r.weight > 0
        else r
        for r in reasons
    ]
    text = f"infrastructure evidence {total:.2f} capped at {cap:g}: one source, one fact"
    out.append(Reason("signals.infra_cap", 0.0, text, infra=True))
    return out


def _discount_infra(
    inp: SignalInput, reasons: list[Reason], features: PatternFeatures | None
) -> list[Reason]:
    """Scale positive infrastructure evidence for an established caller number
    (``signals.established_infra_factor``): a number seen for days is a subscriber of the
    provider, not one of the fresh numbers a rotating campaign burns."""
    factor = inp.config.signals.established_infra_factor
    tn = features.get("tn") if features is not None else None
    if factor >= 1.0 or tn is None or tn.first_seen_age is None:
        return reasons
    if tn.first_seen_age < inp.config.patterns.new_number_seconds:
        return reasons
    return [
        dataclasses.replace(
            r, weight=r.weight * factor, detail=f"{r.detail} (discounted: established caller)"
        )
        if r.infra and r.weight > 0
        else r
        for r in reasons
    ]


def evaluate(
    inp: SignalInput,
    *,
    hits: Sequence[ListHitView] = (),
    learned: LearnedView | None = None,
    features: PatternFeatures | None = None,
    caller_counts: CountersView | None = None,
    source_counts: Sequence[tuple[str, str, CountersView | None]] = (),
) -> Score:
    """Score one call from the lookups the engine made. Pure: same input, same score."""
    reasons: list[Reason] = []
    reasons.extend(signals.shaken(inp))
    reasons.extend(signals.number(inp))
    reasons.extend(signals.lists(inp, hits))
    reasons.extend(signals.learned(inp, learned))
    reasons.extend(signals.neighbor(inp))
    reasons.extend(signals.headers(inp))
    if features is not None:
        shared = signals.shared_sources(inp, features, source_counts)
        reasons.extend(shared)
        found = signals.patterns(inp, features, signals.shared_kinds(shared))
        reasons.extend(found)
        reasons.extend(signals.listened(inp, features.get("tn"), caller_counts, found))
    reasons.extend(signals.feedback(inp, caller_counts))
    reasons.extend(signals.source(inp, source_counts))
    reasons = _cap_infra(inp, reasons)
    reasons = _discount_infra(inp, reasons, features)
    return combine(inp.config.weights.prior, reasons, override_for(inp, reasons))
