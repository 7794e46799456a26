"""Reputation counters: per key (caller TN, source IP, origid, SPC), exponentially decayed.

Why decay instead of windows: reputation evidence (607s, reports, challenge results) is
sparse and should fade gradually: a number reported once a year ago should weigh little,
not fall off a cliff. Each counter is stored with the time it was last brought up to date
and decays lazily, so idle keys cost nothing and the whole book fits in memory.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any

from sqlite_utils import Database


class KeyKind(StrEnum):
    TN = "tn"
    IP = "ip"
    ORIGID = "origid"
    SPC = "spc"


@dataclass(frozen=True, slots=True)
class ReputationCounters:
    """Decayed counts for one key as of the ``now`` they were read at (all zero if unknown)."""

    calls: float = 0.0
    answered: float = 0.0
    short_calls: float = 0.0
    long_calls: float = 0.0
    cancels: float = 0.0
    unwanted_607: float = 0.0
    reports_spam: float = 0.0
    reports_not_spam: float = 0.0
    challenge_passed: float = 0.0
    challenge_failed: float = 0.0
    voicemail_left: float = 0.0
    voicemail_none: float = 0.0
    first_seen: float | None = None
    """When the key was first recorded (not decayed); None if never."""
    recent_bad: float = 0.0
    """Judged-bad outcomes (607s, spam reports, failed challenges, short calls) decayed with
    the book's short ``recent_half_life`` (memory only, not stored): what is happening on
    the key *now* — a campaign running through a shared source."""
    recent_good: float = 0.0
    """Judged-good outcomes (passes, not-spam reports, voicemails, long calls), same window."""

    @property
    def negative(self) -> float:
        return self.unwanted_607 + self.reports_spam + self.challenge_failed + self.short_calls

    @property
    def positive(self) -> float:
        return self.reports_not_spam + self.challenge_passed + self.voicemail_left + self.long_calls


_NOT_STORED = frozenset({"first_seen", "recent_bad", "recent_good"})
COUNTER_FIELDS: tuple[str, ...] = tuple(
    f.name for f in fields(ReputationCounters) if f.name not in _NOT_STORED
)
RECENT_BAD = frozenset({"unwanted_607", "reports_spam", "challenge_failed", "short_calls"})
RECENT_GOOD = frozenset({"reports_not_spam", "challenge_passed", "voicemail_left", "long_calls"})
_FIELD_INDEX = {name: i for i, name in enumerate(COUNTER_FIELDS)}
assert len(COUNTER_FIELDS) == 12, "ReputationBook.get spells the counters out"
_EMPTY = ReputationCounters()


class _Acc:
    __slots__ = ("first_seen", "recent", "recent_t", "updated", "values")

    def __init__(self, now: float, first_seen: float) -> None:
        self.values = [0.0] * len(COUNTER_FIELDS)
        self.updated = now
        self.first_seen = first_seen
        self.recent = (0.0, 0.0)
        self.recent_t = now


class ReputationBook:
    """Per-key counters with exponential time decay, all in memory.

    A counter value ``v`` stored at time ``t`` reads as ``v · 2^(-(now - t)/half_life)``.
    Decay is applied lazily when a key is read or bumped, so idle keys cost nothing.
    Judged outcomes are also summed into two short-window counters (``recent_bad``,
    ``recent_good``, half-life ``recent_half_life``, 10 min by default; memory only): a
    campaign passing through a shared source shows as a burst of complaints *now*, which a
    month-long counter dilutes in the source's honest traffic. With several worker
    processes each sees the recent outcomes of its own calls only.
    """

    def __init__(self, half_life: float, recent_half_life: float = 600.0) -> None:
        if half_life <= 0 or recent_half_life <= 0:
            raise ValueError("half_life must be positive")
        self._k = math.log(2) / half_life
        self._kr = math.log(2) / recent_half_life
        self._accs: dict[tuple[str, str], _Acc] = {}

    def __len__(self) -> int:
        return len(self._accs)

    def _factor(self, acc: _Acc, now: float) -> float:
        dt = now - acc.updated
        return math.exp(-self._k * dt) if dt > 0 else 1.0

    def get(self, kind: KeyKind | str, key: str, now: float) -> ReputationCounters:
        """Counters of ``key`` decayed to ``now`` (all zero for an unknown key or kind)."""
        # KeyKind is a StrEnum: a member and its string hash alike, so either finds the key.
        acc = self._accs.get((kind, key))
        if acc is None:
            return _EMPTY
        dt = now - acc.updated
        f = math.exp(-self._k * dt) if dt > 0 else 1.0
        v = acc.values
        dr = now - acc.recent_t
        fr = math.exp(-self._kr * dr) if dr > 0 else 1.0
        return ReputationCounters(
            v[0] * f, v[1] * f, v[2] * f, v[3] * f, v[4] * f, v[5] * f,
            v[6] * f, v[7] * f, v[8] * f, v[9] * f, v[10] * f, v[11] * f,
            acc.first_seen, acc.recent[0] * fr, acc.recent[1] * fr,
        )  # fmt: skip

    def bump(self, kind: KeyKind, key: str, now: float, counts: dict[str, float]) -> _Acc:
        """Decay the key to ``now`` and add ``counts`` (counter name → amount)."""
        k = (kind.value, key)
        acc = self._accs.get(k)
        if acc is None:
            acc = self._accs[k] = _Acc(now, now)
        else:
            f = self._factor(acc, now)
            if f != 1.0:
                acc.values = [v * f for v in acc.values]
            acc.updated = max(acc.updated, now)
        for name, amount in counts.items():
            acc.values[_FIELD_INDEX[name]] += amount
        bad = sum(a for n, a in counts.items() if n in RECENT_BAD)
        good = sum(a for n, a in counts.items() if n in RECENT_GOOD)
        if bad or good:
            dr = now - acc.recent_t
            fr = math.exp(-self._kr * dr) if dr > 0 else 1.0
            acc.recent = (acc.recent[0] * fr + bad, acc.recent[1] * fr + good)
            acc.recent_t = max(acc.recent_t, now)
        return acc

    def load_row(self, row: Any) -> None:
        """Install a stored row (at start, or when the change feed says another writer
        changed the key). The recent window is this process's memory, not stored: a reload
        keeps it (the feed re-applies this process's own judgements too)."""
        k = (str(row["key_kind"]), str(row["key"]))
        acc = _Acc(float(row["updated"]), float(row["first_seen"]))
        acc.values = [float(row[n]) for n in COUNTER_FIELDS]
        old = self._accs.get(k)
        if old is not None:
            acc.recent, acc.recent_t = old.recent, old.recent_t
        self._accs[k] = acc

    def discard(self, kind: str, key: str) -> None:
        self._accs.pop((kind, key), None)

    def clear(self) -> None:
        self._accs.clear()

    def prune(self, now: float, floor: float = 0.01) -> list[tuple[str, str]]:
        """Forget keys whose every counter decayed below ``floor``; return them."""
        gone = [
            k
            for k, a in self._accs.items()
            if max(a.values, default=0.0) * self._factor(a, now) < floor
        ]
        for k in gone:
            del self._accs[k]
        return gone


DECAY_SQL_FUNCTION = "sw_decay"


def register_decay(conn: sqlite3.Connection, half_life: float) -> None:
    """Give the writing connection ``sw_decay(dt)`` = the decay factor over ``dt`` seconds."""
    k = math.log(2) / half_life

    def decay(dt: float | None) -> float:
        return math.exp(-k * dt) if dt is not None and dt > 0 else 1.0

    conn.create_function(DECAY_SQL_FUNCTION, 1, decay, deterministic=True)


_COLS = ", ".join(COUNTER_FIELDS)
_MARKS = ", ".join("?" for _ in COUNTER_FIELDS)
_SETS = ", ".join(
    f"{c} = {c} * {DECAY_SQL_FUNCTION}(excluded.updated - updated) + excluded.{c}"
    for c in COUNTER_FIELDS
)
_ADD_SQL = (
    f"INSERT INTO reputation (key_kind, key, {_COLS}, first_seen, updated)"
    f" VALUES (?, ?, {_MARKS}, ?, ?) ON CONFLICT (key_kind, key) DO UPDATE SET {_SETS},"
    " first_seen = min(first_seen, excluded.first_seen),"
    " updated = max(updated, excluded.updated)"
)


def add_counters(db: Database, kind: str, key: str, counts: dict[str, float], now: float) -> None:
    """Add ``counts`` at ``now`` to the stored row, decaying the stored values first.

    Increments rather than absolute values, so that several processes writing the same key
    add up instead of overwriting each other. Needs :func:`register_decay` on the connection.
    """
    values = [counts.get(c, 0.0) for c in COUNTER_FIELDS]
    db.execute(_ADD_SQL, [kind, key, *values, now, now])


NEUTRAL_COUNTERS = frozenset({"calls", "answered"})
"""Volume facts: other processes pick these up at their next start, not through the feed."""


def note_judgement(db: Database, kind: str, key: str, counts: dict[str, float]) -> None:
    """Tell other processes sharing the file that this key's judgement counters changed."""
    if counts.keys() - NEUTRAL_COUNTERS:
        db.execute(
            "INSERT INTO changes (time, tbl, k1, k2)"
            " VALUES ((julianday('now') - 2440587.5) * 86400.0, 'reputation', ?, ?)",
            [kind, key],
        )
