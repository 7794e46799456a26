"""Challenge passes shared by every process that screens calls.

Why here: with several worker processes, the one that hears the challenge UA's report
("this caller passed") is not the one that screens the caller's next call, a pass token's
id (``jti``) spent in one worker must not open a second call in another, and the UA's
bridged leg after a pass may reach another worker than the one that diverted the call (it
must still carry the original call's verstat). These facts therefore live in the store's
file (tables ``challenge_passes`` and ``spent_passes``, migration ``0005``;
``challenge_diverts``, migration ``0006``) and travel to the other processes' memory
through the change feed, like list entries do.

Theory of operation
-------------------
:class:`PassBook` is the in-memory side the call path reads without I/O:
``remembered(caller, callee, now)``, ``is_spent(jti)`` and
``diverted_verstat(caller, callee, now)``. The functions below run on
the store's writer thread. :func:`spend` is the one place where the file, not memory,
decides: ``INSERT … ON CONFLICT DO NOTHING`` on the ``jti`` key is atomic across processes
(SQLite's single writer), so of two workers handed the same token at the same moment
exactly one inserts the row and accepts it. Memory only answers early for ids already
known to be spent. Rows are kept while they can matter (a pass or a divert until its
``until``, a spent id until its token's ``exp``) plus :data:`KEEP_AFTER`; writers delete
older rows as they go, and every process forgets them by time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlite_utils import Database

KEEP_AFTER = 60.0
"""Seconds a pass or spent id stays in the file after it stopped mattering (clock slack)."""
PRUNE_AT = 10_000
"""Memory is swept of stale entries when the book grows past this many entries (and then
past twice what the sweep left, so that many live entries do not cost a sweep per put)."""


class PassBook:
    """Remembered passes ``(caller, callee) → until`` and spent token ids ``jti → exp``.

    Numbers are canonical E.164 digits without ``+``. Mutated only on the owning loop's
    thread (the store's rule for all in-memory state)."""

    def __init__(self) -> None:
        self._passes: dict[tuple[str, str], float] = {}
        self._spent: dict[str, float] = {}
        self._diverts: dict[tuple[str, str], tuple[str, float]] = {}
        self._sweep_at = PRUNE_AT

    def __len__(self) -> int:
        return len(self._passes) + len(self._spent) + len(self._diverts)

    def clear(self) -> None:
        self._passes.clear()
        self._spent.clear()
        self._diverts.clear()

    # -- remembered passes
    def remembered(self, caller: str, callee: str, now: float) -> bool:
        """Did ``caller`` pass a challenge for ``callee`` that still holds at ``now``?"""
        until = self._passes.get((caller, callee)) if caller and callee else None
        return until is not None and until > now

    def put_pass(self, caller: str, callee: str, until: float, now: float | None = None) -> None:
        """Remember a pass; a later ``until`` wins over an earlier one (as in the file)."""
        key = (caller, callee)
        self._passes[key] = max(until, self._passes.get(key, until))
        self._grown(now)

    def drop_pass(self, caller: str, callee: str) -> None:
        self._passes.pop((caller, callee), None)

    # -- spent token ids
    def is_spent(self, jti: str) -> bool:
        """Known to be spent (by any process whose spend this one has seen)."""
        return jti in self._spent

    def put_spent(self, jti: str, expires: float, now: float | None = None) -> None:
        # an expired token is refused before its id is looked at: forgetting it is safe
        self._spent[jti] = expires
        self._grown(now)

    def drop_spent(self, jti: str) -> None:
        self._spent.pop(jti, None)

    # -- diverted calls' verstat
    def diverted_verstat(self, caller: str, callee: str, now: float) -> str | None:
        """The verstat of ``caller``'s last call to ``callee`` that was diverted, if recent."""
        got = self._diverts.get((caller, callee))
        return got[0] if got is not None and got[1] > now else None

    def put_divert(
        self, caller: str, callee: str, verstat: str, until: float, now: float | None = None
    ) -> None:
        self._diverts[(caller, callee)] = (verstat, until)
        self._grown(now)

    def drop_divert(self, caller: str, callee: str) -> None:
        self._diverts.pop((caller, callee), None)

    def _grown(self, now: float | None) -> None:
        """Sweep after a put when the book outgrew its threshold; the next threshold is
        twice what is left, so a sweep costs O(1) amortised per put."""
        if now is not None and len(self) > self._sweep_at:
            self.prune(now)
            self._sweep_at = max(PRUNE_AT, 2 * len(self))

    def prune(self, now: float) -> int:
        """Forget what no longer matters; how many entries were forgotten."""
        before = len(self)
        self._passes = {k: v for k, v in self._passes.items() if v > now}
        self._spent = {k: v for k, v in self._spent.items() if v > now}
        self._diverts = {k: v for k, v in self._diverts.items() if v[1] > now}
        return before - len(self)

    def load(self, rows: Rows) -> None:
        """Rows from the file (:func:`read_all`)."""
        for caller, callee, until in rows.passes:
            self.put_pass(str(caller), str(callee), float(until))
        for jti, expires in rows.spent:
            self.put_spent(str(jti), float(expires))
        for caller, callee, verstat, until in rows.diverts:
            self.put_divert(str(caller), str(callee), str(verstat), float(until))


@dataclass(slots=True)
class Rows:
    """Every row of the three tables, as read inside one transaction."""

    passes: list[Any] = field(default_factory=list)
    spent: list[Any] = field(default_factory=list)
    diverts: list[Any] = field(default_factory=list)


# -- on the writer thread ------------------------------------------------------------------


def upsert_pass(db: Database, caller: str, callee: str, until: float, now: float) -> None:
    """Record a pass (the later ``until`` wins); delete passes long over."""
    db.execute(
        "INSERT INTO challenge_passes (caller, callee, until) VALUES (?, ?, ?)"
        " ON CONFLICT (caller, callee) DO UPDATE SET until = max(until, excluded.until)",
        [caller, callee, until],
    )
    db.execute("DELETE FROM challenge_passes WHERE until < ?", [now - KEEP_AFTER])


def spend(db: Database, jti: str, expires: float, now: float) -> bool:
    """Spend ``jti``: True if no process spent it before (the row is new)."""
    db.execute("DELETE FROM spent_passes WHERE expires < ?", [now - KEEP_AFTER])
    cur = db.execute(
        "INSERT INTO spent_passes (jti, expires) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING",
        [jti, expires],
    )
    return cur.rowcount == 1


def upsert_divert(
    db: Database, caller: str, callee: str, verstat: str, until: float, now: float
) -> None:
    """Record the verstat of a diverted call (the latest divert wins)."""
    db.execute(
        "INSERT INTO challenge_diverts (caller, callee, verstat, until) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (caller, callee) DO UPDATE SET verstat = excluded.verstat,"
        " until = excluded.until",
        [caller, callee, verstat, until],
    )
    db.execute("DELETE FROM challenge_diverts WHERE until < ?", [now - KEEP_AFTER])


def prune(db: Database, now: float) -> None:
    """Housekeeping (``Store.maintain``): drop rows that no longer matter."""
    db.execute("DELETE FROM challenge_passes WHERE until < ?", [now - KEEP_AFTER])
    db.execute("DELETE FROM spent_passes WHERE expires < ?", [now - KEEP_AFTER])
    db.execute("DELETE FROM challenge_diverts WHERE until < ?", [now - KEEP_AFTER])


def read_all(db: Database) -> Rows:
    """Every pass, spent id and divert (inside the caller's read transaction)."""
    return Rows(
        db.execute("SELECT caller, callee, until FROM challenge_passes").fetchall(),
        db.execute("SELECT jti, expires FROM spent_passes").fetchall(),
        db.execute("SELECT caller, callee, verstat, until FROM challenge_diverts").fetchall(),
    )


def read_pass(db: Database, caller: str, callee: str) -> float | None:
    r = db.execute(
        "SELECT until FROM challenge_passes WHERE caller = ? AND callee = ?", [caller, callee]
    ).fetchone()
    return None if r is None else float(r[0])


def read_spent(db: Database, jti: str) -> float | None:
    r = db.execute("SELECT expires FROM spent_passes WHERE jti = ?", [jti]).fetchone()
    return None if r is None else float(r[0])


def read_divert(db: Database, caller: str, callee: str) -> tuple[str, float] | None:
    r = db.execute(
        "SELECT verstat, until FROM challenge_diverts WHERE caller = ? AND callee = ?",
        [caller, callee],
    ).fetchone()
    return None if r is None else (str(r[0]), float(r[1]))
