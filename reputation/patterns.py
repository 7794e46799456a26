"""Call-pattern statistics per caller TN, source IP, SHAKEN origid and SPC.

Theory of operation. Every key kind has a :class:`_Table` of fixed capacity: numpy rows
indexed by a slot, and an LRU map key → slot. When the table is full the least recently
*observed* key gives up its slot (its generation number moves on, so calls still in flight
for the old owner cannot touch the new one). Memory is therefore bounded by configuration,
not by traffic: 100,000 caller TNs cost 57 MB of arrays (plus the key map), each
source kind (20,000 keys, 64-entry ring, callers remembered too) 37 MB.

Per slot we keep
- a ring of the last ``ring`` attempts (time, callee as an integer; for source keys also
  the caller as a hash): exact 1-minute counts, fan-out (distinct callees in a window),
  sequential sweeps, repeats to one callee, and distinct callers (how many people share
  a source: see ``source.shared`` in :mod:`reputation.signals`);
- 60 one-minute and 24 one-hour buckets, rotated lazily: attempts per hour and per day
  beyond what the ring holds;
- exponentially decayed outcome counters (finished, answered, short, early CANCEL, ended,
  duration sum): answer ratio, short-call ratio, mean duration, early-CANCEL ratio — once
  with ``outcome_half_life`` (a day) and once with ``recent_half_life`` (minutes: what a
  shared source's calls are doing now);
- calls in progress and the first time the key was seen. A call the policy did not let
  ring (rejected, or diverted to our own challenge/voicemail UA) is counted as an attempt
  but not as in progress: the proxy reports no end for it (a reject ends with our own
  response; the IVR leg's BYE is not the caller's outcome), so it would otherwise count as
  "in progress" for ``max_call_seconds``.

Outcomes arrive by Call-ID (final response, CANCEL, BYE); a bounded map of calls in flight
links them to the slots of the attempt. Reading features never changes state, so scoring is
a pure function of what was observed; the caller (the engine) observes the attempt after
scoring it. Time is always passed in: tests step virtual time.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise

import numpy as np
import numpy.typing as npt

from .config import PatternConfig

KINDS = ("tn", "ip", "origid", "spc")
"""Key kinds, in the order features are reported."""

_F_FINISHED, _F_ANSWERED, _F_SHORT, _F_EARLY, _F_ENDED, _F_DURATION = range(6)
_MASK62 = (1 << 62) - 1


class Outcome(StrEnum):
    """What became of an attempt, as the proxy saw it."""

    ANSWERED = "answered"
    """A 2xx final response to the INVITE."""
    ENDED = "ended"
    """BYE after answer (duration = BYE time - answer time unless given)."""
    CANCELLED = "cancelled"
    """The caller sent CANCEL before any final response."""
    FAILED = "failed"
    """A non-2xx final response or a timeout."""


@dataclass(frozen=True, slots=True)
class PatternKeys:
    """The keys one call is counted under (empty string = not known for this call)."""

    caller: str = ""
    """Canonical caller digits (or the caller URI user when not a TN)."""
    source_ip: str = ""
    origid: str = ""
    spc: str = ""

    def items(self) -> tuple[tuple[str, str], ...]:
        values = (self.caller, self.source_ip, self.origid, self.spc)
        return tuple((k, v) for k, v in zip(KINDS, values, strict=True) if v)


@dataclass(frozen=True, slots=True)
class KeyStats:
    """Statistics for one key, as of ``now``, counting the call being scored."""

    kind: str
    key: str
    attempts_minute: int = 0
    attempts_hour: int = 0
    attempts_day: int = 0
    fanout: int = 0
    """Distinct callees in the fan-out window (including this call's callee)."""
    concurrent: int = 0
    """Calls in progress before this one."""
    outcomes: float = 0.0
    """Decayed count of finished attempts (how much the ratios below rest on)."""
    answer_ratio: float | None = None
    short_ratio: float | None = None
    mean_duration: float | None = None
    early_cancel_ratio: float | None = None
    sequential: int = 0
    """Adjacent steps (callees at most ``sequential_gap`` apart) among recent callees."""
    repeat_callee: int = 0
    """Earlier calls to this call's callee within the last hour."""
    recent_to_callee: int = 0
    """Earlier calls to this call's callee within the urgent-retry window."""
    first_seen_age: float | None = None
    """Seconds since the key was first seen; None when it never was."""
    saturated: bool = False
    """The ring is full inside the fan-out window: ring-based counts are lower bounds."""
    callers: int = 0
    """Distinct callers among the ring's attempts (source keys only; 0 for caller TNs)."""
    new_callers: int = 0
    """Source keys: caller numbers in the fan-out window that had never been seen before
    (their first call; anonymous calls count too), not counting this call."""
    new_callers_expected: float | None = None
    """Source keys: how many such callers the key's own history predicts for one fan-out
    window (a day-decayed rate since it was first seen, scaled to the hours of the last day
    in which the key carried calls, so quiet nights do not lower the daytime baseline);
    None until the key has ``burst_min_history`` of history (a burst needs a baseline)."""
    recent_answer_ratio: float | None = None
    """The ratios above over outcomes decayed with ``recent_half_life`` (minutes); source
    keys only (None for caller TNs)."""
    recent_short_ratio: float | None = None
    recent_early_cancel_ratio: float | None = None


@dataclass(frozen=True, slots=True)
class PatternFeatures:
    """Statistics for every known key of one call."""

    stats: tuple[KeyStats, ...] = ()

    def get(self, kind: str) -> KeyStats | None:
        for s in self.stats:
            if s.kind == kind:
                return s
        return None


def callee_value(callee: str) -> int:
    """Callee as an integer: its digits when numeric (so sweeps show as +1 steps), else a
    negative hash that can never be adjacent to a number."""
    if callee.isdigit() and len(callee) <= 18:
        return int(callee)
    return -((hash(callee) & _MASK62) + 1)


class _Table:
    """Fixed-capacity rows for one key kind, LRU-evicted."""

    def __init__(self, kind: str, capacity: int, ring: int, track_callers: bool = False) -> None:
        self.kind = kind
        self.capacity = max(1, capacity)
        self.ring = max(2, ring)
        c, r = self.capacity, self.ring
        self.index: OrderedDict[str, int] = OrderedDict()
        self.free: list[int] = list(range(c - 1, -1, -1))
        self.gen: npt.NDArray[np.int64] = np.zeros(c, np.int64)
        self.ts: npt.NDArray[np.float64] = np.zeros((c, r), np.float64)
        self.callee: npt.NDArray[np.int64] = np.zeros((c, r), np.int64)
        self.caller: npt.NDArray[np.int64] | None = (
            np.zeros((c, r), np.int64) if track_callers else None
        )
        self.count: npt.NDArray[np.int64] = np.zeros(c, np.int64)
        self.minutes: npt.NDArray[np.uint16] = np.zeros((c, 60), np.uint16)
        self.minute_mark: npt.NDArray[np.int64] = np.zeros(c, np.int64)
        self.hours: npt.NDArray[np.uint32] = np.zeros((c, 24), np.uint32)
        self.hour_mark: npt.NDArray[np.int64] = np.zeros(c, np.int64)
        self.out: npt.NDArray[np.float64] = np.zeros((c, 6), np.float64)
        self.out_t: npt.NDArray[np.float64] = np.zeros(c, np.float64)
        self.newc: npt.NDArray[np.float64] = np.zeros(c, np.float64)
        self.newc_t: npt.NDArray[np.float64] = np.zeros(c, np.float64)
        self.rout: npt.NDArray[np.float64] = np.zeros((c, 6), np.float64)
        self.rout_t: npt.NDArray[np.float64] = np.zeros(c, np.float64)
        self.active: npt.NDArray[np.int32] = np.zeros(c, np.int32)
        self.first: npt.NDArray[np.float64] = np.zeros(c, np.float64)
        self.evictions = 0

    def __len__(self) -> int:
        return len(self.index)

    def slot_for(self, key: str, now: float) -> int:
        """The slot of ``key``, claiming (and if need be evicting) one for a new key."""
        slot = self.index.get(key)
        if slot is not None:
            self.index.move_to_end(key)
            return slot
        if self.free:
            slot = self.free.pop()
        else:
            _, slot = self.index.popitem(last=False)
            self.evictions += 1
        self._reset(slot, now)
        self.index[key] = slot
        return slot

    def _reset(self, slot: int, now: float) -> None:
        self.gen[slot] += 1
        self.count[slot] = 0
        self.minutes[slot] = 0
        self.hours[slot] = 0
        self.minute_mark[slot] = int(now // 60)
        self.hour_mark[slot] = int(now // 3600)
        self.out[slot] = 0.0
        self.out_t[slot] = now
        self.rout[slot] = 0.0
        self.rout_t[slot] = now
        self.newc[slot] = 0.0
        self.newc_t[slot] = now
        self.active[slot] = 0
        self.first[slot] = now

    def add_attempt(
        self,
        slot: int,
        callee: int,
        now: float,
        caller: int = 0,
        ringing: bool = True,
        *,
        new_caller: bool = False,
        half_life: float = 86_400.0,
    ) -> None:
        pos = int(self.count[slot] % self.ring)
        self.ts[slot, pos] = now
        self.callee[slot, pos] = callee
        if self.caller is not None:
            # a new caller number is remembered negated (the sign is the flag)
            self.caller[slot, pos] = -caller - 1 if new_caller else caller
            if new_caller:
                dt = max(0.0, now - float(self.newc_t[slot]))
                self.newc[slot] = float(self.newc[slot]) * 0.5 ** (dt / half_life) + 1.0
                self.newc_t[slot] = max(now, float(self.newc_t[slot]))
        self.count[slot] += 1
        if ringing:
            self.active[slot] += 1
        m = int(now // 60)
        mark = int(self.minute_mark[slot])
        _rotate(self.minutes[slot], mark, m)
        if m > mark - 60:  # an attempt older than the buckets (clock step back) is not binned
            self.minute_mark[slot] = max(m, mark)
            self.minutes[slot, m % 60] = min(int(self.minutes[slot, m % 60]) + 1, 65_535)
        h = int(now // 3600)
        mark = int(self.hour_mark[slot])
        _rotate(self.hours[slot], mark, h)
        if h > mark - 24:
            self.hour_mark[slot] = max(h, mark)
            self.hours[slot, h % 24] += 1

    def decay(self, slot: int, now: float, half_life: float, recent_half_life: float) -> None:
        dt = now - float(self.out_t[slot])
        if dt > 0:
            self.out[slot] *= 0.5 ** (dt / half_life)
            self.out_t[slot] = now
        dt = now - float(self.rout_t[slot])
        if dt > 0 and self.caller is not None:  # the recent window: source keys only
            self.rout[slot] *= 0.5 ** (dt / recent_half_life)
            self.rout_t[slot] = now

    def stats(
        self, key: str, callee: int | None, now: float, cfg: PatternConfig
    ) -> KeyStats | None:
        slot = self.index.get(key)
        if slot is None:
            if callee is None:
                return None
            return KeyStats(
                kind=self.kind,
                key=key,
                attempts_minute=1,
                attempts_hour=1,
                attempts_day=1,
                fanout=1,
            )
        extra = 0 if callee is None else 1
        n = int(min(self.count[slot], self.ring))
        # The ring is small (16-64 entries): one copy out of numpy, then one pass in Python
        # is several times faster than a dozen vectorised calls on tiny arrays.
        ts: list[float] = self.ts[slot, :n].tolist()
        cs: list[int] = self.callee[slot, :n].tolist()
        t_hour, t_fan = now - 3600.0, now - cfg.fanout_window
        t_min, t_urgent = now - 60.0, now - cfg.urgent_retry_window
        fan: set[int] = set()
        hour_callees: list[int] = []
        minute_ring = repeat = urgent = 0
        all_in_fan = True
        for t, c in zip(ts, cs, strict=True):
            if t > t_fan:
                fan.add(c)
            else:
                all_in_fan = False
            if t > t_min:
                minute_ring += 1
            if t > t_hour:
                # attempts older than the hour are not informative for sweeps or repeats
                hour_callees.append(c)
                if c == callee:
                    repeat += 1
            if t > t_urgent and c == callee:
                urgent += 1
        fanout = len(fan)
        if callee is not None:
            if callee not in fan:
                fanout += 1
            hour_callees.append(callee)
        sequential = _adjacent_steps(hour_callees, cfg.sequential_gap)
        if callee is not None and sequential:
            sequential = _sweep(hour_callees, callee, sequential, cfg)
        callers = new_callers = 0
        expected: float | None = None
        if self.caller is not None:
            who: list[int] = self.caller[slot, :n].tolist()
            callers = len({w if w >= 0 else -w - 1 for w in who})
            new_callers = len({w for t, w in zip(ts, who, strict=True) if w < 0 and t > t_fan})
            age = now - float(self.first[slot])
            if age >= cfg.burst_min_history:
                # decayed count C of a steady rate r over age a: C = r (1 - e^-ka) / k
                k = math.log(2) / cfg.outcome_half_life
                dt = max(0.0, now - float(self.newc_t[slot]))
                c = float(self.newc[slot]) * 0.5 ** (dt / cfg.outcome_half_life)
                expected = c * k / (1.0 - math.exp(-k * age)) * cfg.fanout_window
                # that is an average over nights too: scale it to the hours the key is active
                span = min(24, math.ceil(age / 3600.0))
                active = _active_hours(self.hours[slot], int(self.hour_mark[slot]), now, span)
                expected *= span / max(1, active)
        attempts_hour = _window_sum(
            self.minutes[slot], int(self.minute_mark[slot]), int(now // 60), 60
        )
        attempts_day = _window_sum(
            self.hours[slot], int(self.hour_mark[slot]), int(now // 3600), 24
        )
        # Decayed outcome counters, read without writing back.
        dt = max(0.0, now - float(self.out_t[slot]))
        f = 0.5 ** (dt / cfg.outcome_half_life)
        out: list[float] = [v * f for v in self.out[slot].tolist()]
        finished = out[_F_FINISHED]
        ended = out[_F_ENDED]
        enough = finished >= cfg.min_outcomes
        ended_enough = ended >= cfg.min_outcomes
        # the recent window is kept for source keys only (signals read it for those)
        rout: list[float] = [0.0] * len(out)
        if self.caller is not None:
            dt = max(0.0, now - float(self.rout_t[slot]))
            f = 0.5 ** (dt / cfg.recent_half_life)
            rout = [v * f for v in self.rout[slot].tolist()]
        r_fin, r_ended = rout[_F_FINISHED], rout[_F_ENDED]
        r_enough = r_fin >= cfg.min_outcomes
        return KeyStats(
            kind=self.kind,
            key=key,
            attempts_minute=minute_ring + extra,
            attempts_hour=max(attempts_hour, minute_ring) + extra,
            attempts_day=max(attempts_day, attempts_hour, minute_ring) + extra,
            fanout=fanout,
            concurrent=int(self.active[slot]),
            outcomes=finished,
            answer_ratio=out[_F_ANSWERED] / finished if enough else None,
            short_ratio=out[_F_SHORT] / ended if ended_enough else None,
            mean_duration=out[_F_DURATION] / ended if ended_enough else None,
            early_cancel_ratio=out[_F_EARLY] / finished if enough else None,
            sequential=sequential,
            repeat_callee=repeat,
            recent_to_callee=urgent,
            first_seen_age=now - float(self.first[slot]),
            saturated=n == self.ring and all_in_fan,
            callers=callers,
            new_callers=new_callers,
            new_callers_expected=expected,
            recent_answer_ratio=rout[_F_ANSWERED] / r_fin if r_enough else None,
            recent_short_ratio=rout[_F_SHORT] / r_ended if r_ended >= cfg.min_outcomes else None,
            recent_early_cancel_ratio=rout[_F_EARLY] / r_fin if r_enough else None,
        )


def _rotate(buckets: npt.NDArray[np.uint16] | npt.NDArray[np.uint32], mark: int, new: int) -> None:
    """Zero the buckets for periods after ``mark`` up to ``new`` (they hold stale counts)."""
    span = buckets.shape[0]
    if new <= mark:
        return
    if new - mark >= span:
        buckets[:] = 0
        return
    for p in range(mark + 1, new + 1):
        buckets[p % span] = 0


def _window_sum(
    buckets: npt.NDArray[np.uint16] | npt.NDArray[np.uint32], mark: int, now_idx: int, width: int
) -> int:
    """Sum of the buckets for periods ``now_idx - width + 1 … now_idx`` still held."""
    span = buckets.shape[0]
    lo = max(now_idx - width + 1, mark - span + 1)
    hi = min(mark, now_idx)
    if lo > hi:
        return 0
    if hi - lo + 1 == span:
        return int(buckets.sum())
    idx = np.arange(lo, hi + 1) % span
    return int(buckets[idx].sum())


def _sweep(hour_callees: list[int], callee: int, steps: int, cfg: PatternConfig) -> int:
    """``steps`` when this call continues a sweep, else 0. A sweep is evidence about the
    calls that belong to it: this call's callee must lie within ``sequential_gap`` of one
    of the key's other callees in the hour (a human calling through a carrier whose other
    customer sweeps a number block does not continue the sweep), and the adjacent steps
    must be at least ``sequential_share`` of the distinct callees (a busy shared source
    calling hundreds of numbers at random has a few adjacent pairs by chance)."""
    if callee <= 0:
        return 0
    gap = cfg.sequential_gap
    if not any(c != callee and c > 0 and abs(c - callee) <= gap for c in hour_callees):
        return 0
    distinct = len({c for c in hour_callees if c > 0})
    if steps < cfg.sequential_share * max(1, distinct - 1):
        return 0
    return steps


def _active_hours(buckets: npt.NDArray[np.uint32], mark: int, now: float, span: int) -> int:
    """Hours among the last ``span`` with at least one attempt (buckets still held)."""
    now_idx = int(now // 3600)
    lo = max(now_idx - span + 1, mark - buckets.shape[0] + 1)
    hi = min(mark, now_idx)
    return sum(1 for h in range(lo, hi + 1) if buckets[h % buckets.shape[0]])


def _adjacent_steps(callees: list[int], gap: int) -> int:
    """How many neighbouring pairs of distinct numeric callees are at most ``gap`` apart."""
    vals = sorted({c for c in callees if c > 0})
    return sum(1 for a, b in pairwise(vals) if b - a <= gap)


@dataclass(slots=True)
class _InFlight:
    start: float
    refs: tuple[tuple[_Table, int, int], ...]
    answered_at: float | None = None
    ringing: bool = True
    """Counted as in progress (see the module docstring)."""


class CallPatterns:
    """The pattern statistics of every key kind, bounded in memory. Not thread-safe: one
    event loop owns it (design.md)."""

    def __init__(self, config: PatternConfig | None = None) -> None:
        self.config = cfg = config or PatternConfig()
        self.tables = {
            "tn": _Table("tn", cfg.max_callers, cfg.caller_ring),
            "ip": _Table("ip", cfg.max_sources, cfg.source_ring, track_callers=True),
            "origid": _Table("origid", cfg.max_sources, cfg.source_ring, track_callers=True),
            "spc": _Table("spc", cfg.max_sources, cfg.source_ring, track_callers=True),
        }
        self._calls: OrderedDict[str, _InFlight] = OrderedDict()
        self.max_in_flight = max(1, cfg.max_callers)

    def held(self, kind: str) -> int:
        """Keys of ``kind`` currently held."""
        return len(self.tables[kind])

    def in_flight(self) -> int:
        return len(self._calls)

    def observe_attempt(
        self, call_id: str, keys: PatternKeys, callee: str, now: float, *, ringing: bool = True
    ) -> None:
        """Count a new call attempt under each of its keys (call after scoring it).
        ``ringing=False``: the call was rejected or diverted to our own UA, so it is not
        counted as in progress (its outcomes, if any arrive, still count)."""
        self._expire(now)
        if call_id in self._calls:
            return  # a retransmitted or re-screened INVITE counts once
        value = callee_value(callee)
        who = (hash(keys.caller) & _MASK62) if keys.caller else 0
        tn = self.tables["tn"]
        new = not keys.caller or keys.caller not in tn.index  # never seen before
        refs: list[tuple[_Table, int, int]] = []
        for kind, key in keys.items():
            table = self.tables[kind]
            slot = table.slot_for(key, now)
            table.add_attempt(
                slot,
                value,
                now,
                who,
                ringing,
                new_caller=new,
                half_life=self.config.outcome_half_life,
            )
            refs.append((table, slot, int(table.gen[slot])))
        self._calls[call_id] = _InFlight(start=now, refs=tuple(refs), ringing=ringing)
        while len(self._calls) > self.max_in_flight:
            _, old = self._calls.popitem(last=False)
            self._release(old)

    def observe_outcome(
        self, call_id: str, outcome: Outcome, now: float, duration: float | None = None
    ) -> bool:
        """Record what became of a call; False when the call is not (or no longer) known."""
        call = self._calls.get(call_id)
        if call is None:
            return False
        cfg = self.config
        if outcome is Outcome.ANSWERED:
            if call.answered_at is not None:
                return True
            call.answered_at = now
            self._bump(call, now, ((_F_FINISHED, 1.0), (_F_ANSWERED, 1.0)))
            return True
        del self._calls[call_id]
        if outcome is Outcome.ENDED:
            if call.answered_at is None:  # BYE without a 2xx seen: count the answer now
                call.answered_at = now if duration is None else now - duration
                self._bump(call, now, ((_F_FINISHED, 1.0), (_F_ANSWERED, 1.0)))
            d = max(0.0, duration if duration is not None else now - call.answered_at)
            short = 1.0 if d < cfg.short_call_seconds else 0.0
            self._bump(call, now, ((_F_ENDED, 1.0), (_F_DURATION, d), (_F_SHORT, short)))
        elif outcome is Outcome.CANCELLED:
            early = 1.0 if now - call.start <= cfg.early_cancel_seconds else 0.0
            self._bump(call, now, ((_F_FINISHED, 1.0), (_F_EARLY, early)))
        elif call.answered_at is None:  # FAILED
            self._bump(call, now, ((_F_FINISHED, 1.0),))
        self._release(call)
        return True

    def features(self, keys: PatternKeys, now: float, callee: str | None = None) -> PatternFeatures:
        """Statistics for each known key; with ``callee``, counted as if this call were made."""
        value = None if callee is None else callee_value(callee)
        out: list[KeyStats] = []
        for kind, key in keys.items():
            s = self.tables[kind].stats(key, value, now, self.config)
            if s is not None:
                out.append(s)
        return PatternFeatures(stats=tuple(out))

    def _bump(self, call: _InFlight, now: float, adds: tuple[tuple[int, float], ...]) -> None:
        for table, slot, gen in call.refs:
            if int(table.gen[slot]) != gen:
                continue
            table.decay(slot, now, self.config.outcome_half_life, self.config.recent_half_life)
            for col, v in adds:
                table.out[slot, col] += v
                if table.caller is not None:
                    table.rout[slot, col] += v

    def _release(self, call: _InFlight) -> None:
        if not call.ringing:
            return
        for table, slot, gen in call.refs:
            if int(table.gen[slot]) == gen and table.active[slot] > 0:
                table.active[slot] -= 1

    def _expire(self, now: float) -> None:
        limit = now - self.config.max_call_seconds
        while self._calls:
            call_id, call = next(iter(self._calls.items()))
            if call.start > limit:
                break
            del self._calls[call_id]
            self._release(call)
