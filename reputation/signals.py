"""Signals: pure functions from what is known about a call to weighted, explained reasons.

Every function here takes a :class:`SignalInput` (and, where needed, the result of one
lookup already made) and returns a tuple of :class:`~reputation.model.Reason` — the signal
name a user can search for, its log-odds weight (positive = more likely spam) and the
evidence in words. Nothing here reads a clock, a file or a global: the engine gathers the
lookups (lists, reputation counters, pattern statistics) and :mod:`reputation.score` adds
the weights up. Keeping each signal a separate pure function is what lets every score be
explained and every signal be tested with a table.

The read-only lookups the signals need are Protocols in :mod:`reputation.lookups`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .config import ReputationConfig
from .counters import RECENT_BAD, RECENT_GOOD
from .lookups import CountersView, LearnedView, ListHitView
from .model import CallFacts, Reason
from .numbers import NumberFlag, NumberInfo
from .patterns import KeyStats, PatternFeatures

# --- the input every signal reads -------------------------------------------------------

ATTEST_LEVELS = ("A", "B", "C")
PASSED = "TN-Validation-Passed"
FAILED = "TN-Validation-Failed"


@dataclass(frozen=True, slots=True)
class SignalInput:
    """One call, read once: facts, both numbers, whose call it is, and when."""

    facts: CallFacts
    caller: NumberInfo
    callee: NumberInfo
    config: ReputationConfig
    now: float
    user_id: int | None = None
    source_keys: tuple[tuple[str, str], ...] = field(default=())
    """``(kind, key)`` for the source IP, origid and SPC of this call (kind ip/origid/spc)."""

    @property
    def attest(self) -> str | None:
        """The attestation level, only when verification passed."""
        a = (self.facts.attest or "").upper()
        return a if self.facts.verstat == PASSED and a in ATTEST_LEVELS else None

    @property
    def identity_strength(self) -> int:
        """How far the caller ID is vouched for: see :func:`strength_of`."""
        return strength_of(self.attest)


STRENGTH_NAMES = ("unsigned", "C", "B", "A")


def strength_of(attest: str | None) -> int:
    """Unsigned / failed 0 < C 1 < B 2 < A 3 (``feedback.IdentityStrength`` uses the same)."""
    return {"A": 3, "B": 2, "C": 1}.get((attest or "").upper(), 0)


def graded(weight: float, value: float, threshold: float, cap: float) -> float | None:
    """Weight at threshold, growing with ``log2(value / threshold)`` up to ``cap * weight``."""
    if threshold <= 0 or value < threshold:
        return None
    return weight * min(cap, 1.0 + math.log2(value / threshold))


def counted(weight: float, n: float, cap: float) -> float | None:
    """Weight per ``log2(1 + n)`` of a decayed count, capped; None when n is negligible."""
    if n < 0.05:
        return None
    return weight * min(cap, math.log2(1.0 + n))


# --- 1. STIR/SHAKEN ---------------------------------------------------------------------

_SIGNATURE_REASONS = frozenset(
    {"bad_signature", "orig_mismatch", "dest_mismatch", "replayed", "ppt_mismatch",
     "alg_mismatch", "info_mismatch", "anonymous_orig"}
)  # fmt: skip
_STALE_REASONS = frozenset({"stale", "future_iat"})


def shaken(s: SignalInput) -> tuple[Reason, ...]:
    """The verification verdict as a prior shift (TransNexus robocall share per level)."""
    w = s.config.weights
    f = s.facts
    if s.attest == "A":
        return (Reason("shaken.attest_a", w.shaken_attest_a, _attest_detail(f)),)
    if s.attest == "B":
        return (Reason("shaken.attest_b", w.shaken_attest_b, _attest_detail(f)),)
    if s.attest == "C":
        return (Reason("shaken.attest_c", w.shaken_attest_c, _attest_detail(f)),)
    if f.verstat == FAILED:
        why = (f.identity_reason or "unknown").lower()
        if why == "internal_error":
            return (Reason("shaken.error", 0.0, "verification error on our side: not counted"),)
        if why in _SIGNATURE_REASONS:
            return (Reason("shaken.failed_signature", w.shaken_failed_signature, f"failed: {why}"),)
        if why in _STALE_REASONS:
            return (Reason("shaken.failed_stale", w.shaken_failed_stale, f"failed: {why}"),)
        if any(t in why for t in ("cert", "x5u", "chain", "key", "trust")):
            return (Reason("shaken.failed_cert", w.shaken_failed_cert, f"failed: {why}"),)
        return (Reason("shaken.failed", w.shaken_failed, f"failed: {why}"),)
    return (Reason("shaken.absent", w.shaken_absent, "no verified Identity"),)


def _attest_detail(f: CallFacts) -> str:
    parts = [f"attestation {f.attest}"]
    if f.origid:
        parts.append(f"origid {f.origid}")
    if f.spc:
        parts.append(f"SPC {f.spc}")
    return ", ".join(parts)


# --- 2. the caller's number itself ------------------------------------------------------


_FLAG_ORDER = tuple(NumberFlag)  # iterating an Enum class is slow; do it once


def number(s: SignalInput) -> tuple[Reason, ...]:
    """Anonymous, not a TN, impossible, unallocated, N11, fiction, premium, toll-free, foreign."""
    w = s.config.weights
    weights = {
        NumberFlag.ANONYMOUS: w.number_anonymous,
        NumberFlag.NOT_A_TN: w.number_not_a_tn,
        NumberFlag.NOT_POSSIBLE: w.number_not_possible,
        NumberFlag.UNALLOCATED: w.number_unallocated,
        NumberFlag.N11: w.number_n11,
        NumberFlag.FICTION: w.number_fiction,
        NumberFlag.PREMIUM_RATE: w.number_premium_rate,
        NumberFlag.TOLL_FREE: w.number_toll_free,
    }
    detail = s.caller.detail
    out = [
        Reason(flag.value, weights[flag], detail) for flag in _FLAG_ORDER if flag in s.caller.flags
    ]
    c, d = s.caller, s.callee
    if c.country_code and d.country_code and c.country_code != d.country_code:
        out.append(
            Reason("number.foreign", w.number_foreign,
                   f"caller +{c.country_code} ({c.region or '?'}), callee +{d.country_code}")
        )  # fmt: skip
    return tuple(out)


# --- 3. lists -----------------------------------------------------------------------------


def lists(s: SignalInput, hits: Sequence[ListHitView]) -> tuple[Reason, ...]:
    """The deciding user entry and the deciding global entry (user allow wins: the score
    applies the override; a user's allow also silences the global lists)."""
    w = s.config.weights
    user = next((h for h in hits if _val(h.scope) == "user"), None)
    glob = next((h for h in hits if _val(h.scope) == "global"), None)
    out: list[Reason] = []
    if user is not None:
        kind = _val(user.kind)
        if kind == "allow":
            return (Reason("list.user_allow", 0.0, f"on your allow list ({_entry(user)})"),)
        if kind == "block":
            out.append(
                Reason("list.user_block", w.list_user_block, f"on your block list ({_entry(user)})")
            )
    if glob is not None:
        kind = _val(glob.kind)
        if kind == "allow":
            out.append(
                Reason(
                    "list.global_allow", w.list_global_allow, f"global allow list ({_entry(glob)})"
                )
            )
        elif kind == "block":
            out.append(
                Reason(
                    "list.global_block", w.list_global_block, f"global block list ({_entry(glob)})"
                )
            )
        elif kind == "dno":
            out.append(Reason("list.dno", w.list_dno, f"Do-Not-Originate list ({_entry(glob)})"))
    return tuple(out)


def _val(x: object) -> str:
    v = getattr(x, "value", x)
    return str(v)


def _entry(h: ListHitView) -> str:
    return f"{h.entry.pattern}, from {_val(h.entry.source)}"


# --- 4. learned allow ---------------------------------------------------------------------


def learned(s: SignalInput, entry: LearnedView | None) -> tuple[Reason, ...]:
    """Known number, but only if this call's identity is at least as strong as when learned:
    a spoofed known number must not slip through."""
    if entry is None:
        return ()
    then = max(0, min(3, int(entry.strength)))
    now = s.identity_strength
    was = STRENGTH_NAMES[then]
    if now >= then:
        return (
            Reason(
                "learned.allow", s.config.weights.learned_allow, f"known number (learned {was})"
            ),
        )
    return (
        Reason("learned.weaker_identity", 0.0,
               f"known number learned {was}, but this call is weaker: not trusted"),
    )  # fmt: skip


# --- 4b. header consistency and source fingerprint (S17, S18) ---------------------------

_DIALLER_NAME = re.compile(r"^V\d{15}$")
_LABEL_WORDS = re.compile(r"\b(spam|scam|fraud|robocall|telemarket\w*)\b", re.IGNORECASE)
_SCANNERS = (
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "sip-scan",
    "sipscan",
    "vaxsipuseragent",
    "pplsip",
    "iwar",
    "sundayddr",
)


def headers(s: SignalInput) -> tuple[Reason, ...]:
    """Display name and User-Agent: a dialler's ``V`` + 15 digits name, another network's
    spam label, a number in the display name that is not the caller's; a scanner's UA."""
    w = s.config.weights
    out: list[Reason] = []
    name = (s.facts.display_name or "").strip().strip('"').strip()[:100]
    if name:
        digits = "".join(ch for ch in name if ch.isdigit())
        if _DIALLER_NAME.match(name):
            out.append(Reason("header.display_name", w.header_display_name,
                              f"display name {name!r} looks like a dialler's"))  # fmt: skip
        elif _LABEL_WORDS.search(name):
            out.append(Reason("header.display_name", w.header_display_name,
                              f"display name {name!r} carries a spam label"))  # fmt: skip
        elif (
            len(digits) >= 7
            and len(digits) >= len(name.replace(" ", "")) - 4
            and s.caller.digits
            and not s.caller.digits.endswith(digits[-7:])
        ):
            text = f"display name {name!r} is another number than the caller's"
            out.append(Reason("header.display_name", w.header_display_name * 0.5, text))
    ua = (s.facts.user_agent or "").lower()[:200]
    hit = next((x for x in _SCANNERS if x in ua), None)
    if hit is not None:
        text = f"User-Agent {s.facts.user_agent!r} is a SIP scanner ({hit})"
        out.append(Reason("source.scanner_ua", w.source_scanner_ua, text))
    return tuple(out)


# --- 5. neighbour spoofing ------------------------------------------------------------------


def neighbor(s: SignalInput) -> tuple[Reason, ...]:
    """Caller looks like the callee's neighbour (or is the callee): spoofers pick local
    numbers because people answer them. Only the closest match counts; A attestation
    (the originator vouches for the number) scales it down."""
    c, d = s.caller, s.callee
    if not c.digits or not d.digits or c.country_code != d.country_code:
        return ()
    w = s.config.weights
    factor = s.config.signals.neighbor_attested_factor if s.attest == "A" else 1.0
    if c.digits == d.digits:
        return (
            Reason(
                "neighbor.equal", w.neighbor_equal * factor, f"caller is the callee (+{c.digits})"
            ),
        )
    a, b = c.national, d.national
    common = len(_common_prefix(a, b))
    tail = s.config.signals.neighbor_tail_digits
    if len(a) == len(b) and len(a) > tail + 3 and common >= len(a) - tail:
        return (
            Reason("neighbor.leading_digits", w.neighbor_leading_digits * factor,
                   f"+{c.digits} shares {common} of {len(a)} digits with the callee"),
        )  # fmt: skip
    area = c.area_code_len if c.area_code_len and c.area_code_len == d.area_code_len else 0
    if not area:
        return ()
    exchange = area + 3 if c.nanp and d.nanp else area + 2
    if common >= exchange and len(a) > exchange:
        return (
            Reason("neighbor.exchange", w.neighbor_exchange * factor,
                   f"same area code and exchange as the callee ({a[:area]}-{a[area:exchange]})"),
        )  # fmt: skip
    if common >= area:
        return (
            Reason("neighbor.area_code", w.neighbor_area_code * factor,
                   f"same area code as the callee ({a[:area]})"),
        )  # fmt: skip
    return ()


def _common_prefix(a: str, b: str) -> str:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return a[:n]


# --- 6. call patterns ---------------------------------------------------------------------

_KIND_NAMES = {"tn": "caller", "ip": "source IP", "origid": "origid", "spc": "SPC"}

_Found = tuple[float, str] | None
"""A statistic's weight and evidence for one key, or None when it does not fire."""


def _rate_minute(st: KeyStats, s: SignalInput) -> _Found:
    w, cfg = s.config.weights, s.config.patterns
    return _graded_text(s, w.pattern_rate_minute, st.attempts_minute, cfg.rate_minute,
                        f"{st.attempts_minute} calls in the last minute")  # fmt: skip


def _rate_hour(st: KeyStats, s: SignalInput) -> _Found:
    w, cfg = s.config.weights, s.config.patterns
    return _graded_text(s, w.pattern_rate_hour, st.attempts_hour, cfg.rate_hour,
                        f"{st.attempts_hour} calls in the last hour")  # fmt: skip


def _rate_day(st: KeyStats, s: SignalInput) -> _Found:
    w, cfg = s.config.weights, s.config.patterns
    return _graded_text(s, w.pattern_rate_day, st.attempts_day, cfg.rate_day,
                        f"{st.attempts_day} calls in the last day")  # fmt: skip


def _fanout(st: KeyStats, s: SignalInput) -> _Found:
    w, cfg = s.config.weights, s.config.patterns
    return _graded_text(
        s,
        w.pattern_fanout,
        st.fanout,
        cfg.fanout,
        f"{st.fanout} distinct callees in {cfg.fanout_window / 60:g} min",
    )


def _concurrent(st: KeyStats, s: SignalInput) -> _Found:
    w, cfg = s.config.weights, s.config.patterns
    return _graded_text(s, w.pattern_concurrent, st.concurrent, cfg.concurrent,
                        f"{st.concurrent} calls in progress")  # fmt: skip


def _sequential(st: KeyStats, s: SignalInput) -> _Found:
    w, cfg = s.config.weights, s.config.patterns
    return _graded_text(
        s,
        w.pattern_sequential,
        st.sequential,
        cfg.sequential,
        f"{st.sequential} adjacent callees in the last hour (sweep)",
    )


def _repeat(st: KeyStats, s: SignalInput) -> _Found:
    w, cfg = s.config.weights, s.config.patterns
    n = st.repeat_callee + 1
    return _graded_text(s, w.pattern_repeat_callee, n, cfg.repeat_callee,
                        f"{n} calls to this callee in the last hour")  # fmt: skip


def _windows(st: KeyStats, day: float | None, recent: float | None) -> list[tuple[float, str]]:
    """The ratio over the day and, for source keys, over the last minutes: a campaign on a
    shared source shows in the recent window long before it moves the day's mix."""
    out = [] if day is None else [(day, "")]
    if st.kind != "tn" and recent is not None:
        out.append((recent, " in the last minutes"))
    return out


def _ratio(
    st: KeyStats,
    windows: tuple[float | None, float | None],
    fires: Callable[[float], bool],
    weight: float,
    text: Callable[[float], str],
) -> _Found:
    """The first window (day, then recent) whose ratio fires, as (weight, evidence)."""
    for r, when in _windows(st, *windows):
        if fires(r):
            return weight, text(r) + when
    return None


def _low_answer(st: KeyStats, s: SignalInput) -> _Found:
    cfg = s.config.patterns
    return _ratio(st, (st.answer_ratio, st.recent_answer_ratio),
                  lambda r: r <= cfg.answer_ratio, s.config.weights.pattern_low_answer,
                  lambda r: f"answer ratio {r:.0%}")  # fmt: skip


def _short_calls(st: KeyStats, s: SignalInput) -> _Found:
    cfg = s.config.patterns
    short = f"of answered calls under {cfg.short_call_seconds:g} s"
    return _ratio(st, (st.short_ratio, st.recent_short_ratio),
                  lambda r: r >= cfg.short_ratio, s.config.weights.pattern_short_calls,
                  lambda r: f"{r:.0%} {short}")  # fmt: skip


def _early_cancel(st: KeyStats, s: SignalInput) -> _Found:
    cfg = s.config.patterns
    early = f"of calls cancelled within {cfg.early_cancel_seconds:g} s"
    return _ratio(st, (st.early_cancel_ratio, st.recent_early_cancel_ratio),
                  lambda r: r >= cfg.early_cancel_ratio, s.config.weights.pattern_early_cancel,
                  lambda r: f"{r:.0%} {early}")  # fmt: skip


def _graded_text(
    s: SignalInput, weight: float, value: float, threshold: float, text: str
) -> _Found:
    x = graded(weight, value, threshold, s.config.signals.max_multiplier)
    return None if x is None else (x, text)


_PATTERN_STATS: tuple[tuple[str, Callable[[KeyStats, SignalInput], _Found]], ...] = (
    ("pattern.rate_minute", _rate_minute),
    ("pattern.rate_hour", _rate_hour),
    ("pattern.rate_day", _rate_day),
    ("pattern.fanout", _fanout),
    ("pattern.concurrent", _concurrent),
    ("pattern.sequential", _sequential),
    ("pattern.repeat_callee", _repeat),
    ("pattern.low_answer", _low_answer),
    ("pattern.short_calls", _short_calls),
    ("pattern.early_cancel", _early_cancel),
)


_RATIO_STATS = frozenset({"pattern.low_answer", "pattern.short_calls", "pattern.early_cancel"})
"""Statistics that are ratios, meaningful for every key kind (volume ones are not, for SPC)."""
VOLUME_SIGNALS = frozenset(
    {"pattern.rate_minute", "pattern.rate_hour", "pattern.rate_day", "pattern.fanout",
     "pattern.concurrent", "pattern.sequential", "pattern.repeat_callee"}
)  # fmt: skip
"""Call-volume statistics (``Reason.volume``): not evidence about one call on a shared
source, and never enough to reject on their own (a wanted broadcast shows them too)."""
_LONG_WINDOW = frozenset({"pattern.rate_hour", "pattern.rate_day"})
"""Volume over an hour or a day: counted only for ``patterns.long_volume_kinds``."""


def patterns(
    s: SignalInput, features: PatternFeatures, shared: frozenset[str] = frozenset()
) -> tuple[Reason, ...]:
    """Behaviour per key. For each statistic the key kind with the strongest evidence counts
    (a flood from one IP with one caller ID is one piece of evidence, not two); the detail
    names the other kinds that agree. Volume statistics of the key kinds in ``shared``
    (:func:`shared_sources`) are not counted: their outcome ratios still are."""
    out: list[Reason] = []
    volume = s.config.patterns.volume_kinds
    long = s.config.patterns.long_volume_kinds
    for signal, stat in _PATTERN_STATS:
        is_volume = signal in VOLUME_SIGNALS
        kinds = long if signal in _LONG_WINDOW else volume
        keyed = [
            st
            for st in features.stats
            if not is_volume or (st.kind in volume and st.kind in kinds and st.kind not in shared)
        ]
        found = [(r, st) for st in keyed if (r := stat(st, s)) is not None]
        if not found:
            continue
        found.sort(key=lambda t: abs(t[0][0]), reverse=True)
        (weight, text), st = found[0]
        also = ", ".join(_KIND_NAMES[o.kind] for _, o in found[1:])
        detail = f"{_KIND_NAMES[st.kind]} {st.key}: {text}" + (f" (also {also})" if also else "")
        # shared-infrastructure evidence unless the caller's own number shows it too
        infra = not any(o.kind == "tn" for _, o in found)
        out.append(Reason(signal, weight, detail, infra=infra, volume=is_volume))
    tn = features.get("tn")
    out.extend(_new_caller_burst(s, features, tn))
    out.extend(_caller_history(s, tn))
    return tuple(out)


def _new_caller_burst(
    s: SignalInput, features: PatternFeatures, tn: KeyStats | None
) -> tuple[Reason, ...]:
    """``pattern.new_caller_burst``: a source key brings never-seen caller numbers far faster
    than its own history predicts (``burst_new_callers`` in ``fanout_window``, at least
    ``burst_factor`` times the expected count) and this call's number is new as well. A
    rotating campaign burns a fresh number per call; that is the one property its calls
    share with each other and not with the source's honest callers, whose numbers are
    mostly known. Measured against the key's own baseline, so it speaks on shared sources
    (whose raw volume does not count) too; a wanted broadcast (one number) never fires it."""
    cfg = s.config.patterns
    if tn is not None and tn.first_seen_age is not None:
        return ()  # a number seen before (the store's memory included)
    best: tuple[float, KeyStats] | None = None
    for st in features.stats:
        if st.kind == "tn" or st.new_callers_expected is None:
            continue
        n = st.new_callers + 1
        floor = max(float(cfg.burst_new_callers), cfg.burst_factor * st.new_callers_expected)
        x = graded(s.config.weights.pattern_new_caller_burst, n, floor,
                   s.config.signals.max_multiplier)  # fmt: skip
        if x is not None and (best is None or x > best[0]):
            best = (x, st)
    if best is None:
        return ()
    x, st = best
    text = (
        f"{_KIND_NAMES[st.kind]} {st.key}: {st.new_callers + 1} never-seen caller numbers in"
        f" {cfg.fanout_window / 60:g} min (its history predicts"
        f" {st.new_callers_expected or 0.0:.1f}); this caller is new too"
    )
    return (Reason("pattern.new_caller_burst", x, text, infra=True, volume=True),)


def listened(
    s: SignalInput, tn: KeyStats | None, counts: CountersView | None, found: Sequence[Reason]
) -> tuple[Reason, ...]:
    """``pattern.listened``: an A-attested caller whose calls people listen to — answered
    calls lasting ``listened_seconds`` on average with few under ``short_call_seconds``, or
    ``listened_voicemails`` voicemails left and outnumbering 607s and spam reports at least
    2:1 — is a wanted bulk sender (a pharmacy's reminders, a school's closure broadcast),
    not a robocaller, whose calls are hung up within seconds. Its own volume evidence (the
    reasons ``found`` that the caller TN shows, not the source's) is offset, never by more
    than that evidence nor than ``-weights.pattern_listened``: listening explains volume, it
    vouches for nothing else (complaints, lists and failed challenges still count). Only for
    A attestation: the originating carrier vouches that the caller owns the number, so a
    spoofer cannot borrow a bank's listening record. ``found`` are the pattern reasons."""
    cfg = s.config.patterns
    if s.attest != "A":
        return ()
    why = ""
    if (
        tn is not None
        and tn.short_ratio is not None
        and tn.mean_duration is not None
        and tn.short_ratio <= cfg.listened_short_ratio
        and tn.mean_duration >= cfg.listened_seconds
    ):
        why = (
            f"answered calls listened to for {tn.mean_duration:.0f} s on average,"
            f" {tn.short_ratio:.0%} short"
        )
    elif counts is not None:
        vm = float(counts.voicemail_left)
        bad = float(counts.unwanted_607) + float(counts.reports_spam)
        if vm >= cfg.listened_voicemails and vm >= 2.0 * bad:
            why = f"{vm:.1f} voicemails left, {bad:.1f} 607s/spam reports"
    if not why:
        return ()
    own = math.fsum(r.weight for r in found if r.volume and not r.infra and r.weight > 0)
    offset = min(own, -s.config.weights.pattern_listened)
    if offset <= 0:
        return ()
    who = tn.key if tn is not None else s.caller.digits
    text = f"caller {who}: {why} — a wanted bulk sender; offsets its volume evidence"
    return (Reason("pattern.listened", -offset, text),)


# the judged outcomes (the book's recent window sums the same ones), in a fixed order
_SHARED_GOOD = tuple(sorted(RECENT_GOOD))
_SHARED_BAD = tuple(sorted(RECENT_BAD))


def shared_sources(
    s: SignalInput,
    features: PatternFeatures,
    counts: Sequence[tuple[str, str, CountersView | None]],
) -> tuple[Reason, ...]:
    """``source.<ip|origid|spc>.shared`` (weight 0, an explanation): source keys
    recognised as shared infrastructure — a carrier's interconnect, a VoIP provider's SBC,
    a signing certificate used for a whole network — from what was already seen on them,
    for deployments that did not (or could not) list them in ``[proxy.trunks]``.

    A key is shared when it carries many distinct caller numbers
    (``patterns.shared_min_callers`` among its last attempts) whose outcomes are mostly
    good: ``shared_min_good`` decayed calls of normal length, passed challenges, voicemails
    left, not-spam reports, and at least ``shared_good_share`` of its judged outcomes. Its
    volume statistics are then the sum of many people's calls, not evidence about this
    one, and are not counted (:func:`patterns`); its outcome statistics (short calls, low
    answer, early CANCEL) and complaints still are. A campaign cannot earn the status: its
    calls are short, unanswered, failed challenges and 607s."""
    cfg = s.config.patterns
    out: list[Reason] = []
    for kind, key, c in counts:
        st = features.get(kind)
        if c is None or st is None or st.callers < cfg.shared_min_callers:
            continue
        good = sum(float(getattr(c, n, 0.0)) for n in _SHARED_GOOD)
        bad = sum(float(getattr(c, n, 0.0)) for n in _SHARED_BAD)
        if good < cfg.shared_min_good or good < cfg.shared_good_share * (good + bad):
            continue
        text = (
            f"{_KIND_NAMES.get(kind, kind)} {key}: {st.callers} distinct callers in its last"
            f" {min(st.attempts_day, cfg.source_ring)} calls, {good:.0f} good outcomes"
            f" ({good / (good + bad):.0%}): shared infrastructure, volume not counted"
        )
        out.append(Reason(f"source.{kind}.shared", 0.0, text, infra=True))
    return tuple(out)


def shared_kinds(reasons: Sequence[Reason]) -> frozenset[str]:
    """The key kinds :func:`shared_sources` recognised as shared."""
    return frozenset(
        r.signal.split(".")[1]
        for r in reasons
        if r.signal.startswith("source.") and r.signal.endswith(".shared")
    )


def _caller_history(s: SignalInput, tn: KeyStats | None) -> tuple[Reason, ...]:
    """Urgent retry (a hint *for* the caller) and number maturity, caller TN only."""
    if tn is None or not s.caller.digits:
        return ()
    cfg, w = s.config.patterns, s.config.weights
    out: list[Reason] = []
    if (
        tn.recent_to_callee >= cfg.urgent_retry
        and tn.fanout <= 2
        and tn.repeat_callee + 1 < cfg.repeat_callee
    ):
        window = f"{cfg.urgent_retry_window / 60:g} min"
        text = f"call {tn.recent_to_callee + 1} to this callee within {window}, nobody else"
        out.append(
            Reason("pattern.urgent_retry", w.pattern_urgent_retry, f"caller {tn.key}: {text}")
        )
    if tn.first_seen_age is None or tn.first_seen_age < cfg.new_number_seconds:
        age = (
            "never seen before"
            if tn.first_seen_age is None
            else f"first seen {tn.first_seen_age:.0f} s ago"
        )
        out.append(Reason("pattern.new_number", w.pattern_new_number, f"caller {tn.key}: {age}"))
    return tuple(out)


# --- 7. feedback on the caller's number ---------------------------------------------------

_FEEDBACK = (
    ("unwanted_607", "feedback.unwanted", "607 Unwanted from callees"),
    ("reports_spam", "feedback.reported_spam", "reported as spam"),
    ("reports_not_spam", "feedback.reported_ok", "reported as not spam"),
    ("challenge_failed", "feedback.challenge_failed", "challenges failed"),
    ("challenge_passed", "feedback.challenge_passed", "challenges passed"),
    ("voicemail_left", "feedback.voicemail", "voicemails left"),
)


def feedback(s: SignalInput, counts: CountersView | None) -> tuple[Reason, ...]:
    """Time-decayed feedback on the caller TN. Positive evidence is discounted when this
    call is not A-attested: a spoofer must not inherit a number's good name. (Negative
    evidence reaches a TN only from calls strong enough to blame it: the store's rule.)"""
    if counts is None:
        return ()
    w = s.config.weights
    weights = {
        "unwanted_607": w.feedback_unwanted,
        "reports_spam": w.feedback_reported_spam,
        "reports_not_spam": w.feedback_reported_ok,
        "challenge_failed": w.feedback_challenge_failed,
        "challenge_passed": w.feedback_challenge_passed,
        "voicemail_left": w.feedback_voicemail,
    }
    cap = s.config.signals.max_multiplier
    out: list[Reason] = []
    for name, signal, text in _FEEDBACK:
        n = float(getattr(counts, name, 0.0))
        x = counted(weights[name], n, cap)
        if x is None:
            continue
        note = ""
        if x < 0 and s.attest != "A":
            x *= s.config.signals.unattested_positive_factor
            note = " (discounted: this call is not A-attested)"
        out.append(Reason(signal, x, f"{n:.1f} {text}, decayed{note}"))
    return tuple(out)


# --- 8. source reputation -------------------------------------------------------------------

_BAD = ("unwanted_607", "reports_spam", "challenge_failed")
_GOOD = ("reports_not_spam", "challenge_passed", "voicemail_left")


def source(
    s: SignalInput, counts: Sequence[tuple[str, str, CountersView | None]]
) -> tuple[Reason, ...]:
    """Feedback attached to the source IP, origid and SPC: how a campaign that rotates its
    caller IDs is still recognised. ``counts`` holds ``(kind, key, counters)``.

    The keys of one call usually name one provider (its SBC's address and its signing
    certificate carry the same calls), so the same complaints are on each of them: only the
    strongest key's complaints count, and likewise its praise; the detail names the other
    kinds that agree. Complaints count by their smoothed share of the key's feedback,
    ``bad / (bad + good + signals.source_pseudo_good)``: a provider's honest callers who pass
    challenges, leave voicemails or simply talk for a minute (``long_calls``: the callee's
    own judgement) dilute its campaigns' complaints, and one failed challenge on a key
    nobody else judged is not "all complaints". Praise (``source.<kind>.good``) counts only
    explicit judgements: passes, not-spam reports, voicemails."""
    w = s.config.weights
    cap = s.config.signals.max_multiplier
    pseudo = s.config.signals.source_pseudo_good
    bads: list[tuple[float, str, str, float]] = []
    goods: list[tuple[float, str, str, float]] = []
    recents: list[tuple[float, str, str, float]] = []
    for kind, key, c in counts:
        if c is None:
            continue
        bad = sum(float(getattr(c, n, 0.0)) for n in _BAD)
        good = sum(float(getattr(c, n, 0.0)) for n in _GOOD)
        x = counted(w.source_bad, bad, cap)
        if x is not None:
            talked = float(getattr(c, "long_calls", 0.0))
            bads.append((x * bad / (bad + good + talked + pseudo), kind, key, bad))
        y = counted(w.source_good, good, cap)
        if y is not None:
            goods.append((y, kind, key, good))
        rbad = float(getattr(c, "recent_bad", 0.0))
        rgood = float(getattr(c, "recent_good", 0.0))
        z = counted(w.source_recent_bad, rbad, cap)
        if z is not None:
            recents.append((z * rbad / (rbad + rgood + pseudo), kind, key, rbad))
    out: list[Reason] = []
    for found, what, tag in (
        (bads, "complaints/failed challenges", "bad"),
        (goods, "passes/ok reports", "good"),
        (recents, "complaints/failed challenges/short calls in the last minutes", "recent_bad"),
    ):
        if not found:
            continue
        found.sort(key=lambda t: abs(t[0]), reverse=True)
        x, kind, key, n = found[0]
        also = ", ".join(_KIND_NAMES.get(k, k) for _, k, _, _ in found[1:])
        text = f"{_KIND_NAMES.get(kind, kind)} {key}: {n:.1f} {what}"
        out.append(
            Reason(f"source.{kind}.{tag}", x, text + (f" (also {also})" if also else ""),
                   infra=True)
        )  # fmt: skip
    return tuple(out)
