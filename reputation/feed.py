"""Loading the in-memory state, and keeping it in step when several processes share the file.

Theory of operation
-------------------
At start the store reads every row the call path needs (:func:`read_all`) inside one read
transaction, together with the newest sequence number of the ``changes`` table, and
installs them (:func:`install`). Triggers (migration ``0003_change_feed``) append
``(table, key)`` to ``changes`` on every insert, update and delete of that state, whoever
the writer is. :func:`fetch` collects the changes after a sequence number and the current
rows for their keys (present → put, gone → remove), and :func:`apply` puts them into memory.

The store runs :func:`fetch` on its writer thread, so it is ordered with the process's own
writes: a change this process made and already applied is simply applied again (same
row). Reputation counters travel only when a judgement changed (a 607, a report, a
challenge result: :func:`reputation.counters.note_judgement`), not on every call; the row
read then carries every process's counts for that key, and increments this process made
after the fetch was queued are hidden until the next sync. If this process fell so far
behind that the changes it needs were pruned, the whole state is read again. Challenge
passes and spent pass-token ids (:mod:`reputation.passes`) travel the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlite_utils import Database

from .counters import ReputationBook
from .learned import IdentityStrength, LearnedAllowBook, LearnedNumber
from .lists import ENTRY_COLUMNS, ListIndex, entries_from_tuples
from .passes import PassBook, Rows, read_divert, read_pass, read_spent
from .passes import read_all as read_passes
from .users import UserDirectory, settings_from_json, token_from_row, user_from_row

Row = Any
"""A sqlite3.Row (mapping and sequence)."""


@dataclass(slots=True)
class Snapshot:
    seq: int
    users: list[Row]
    numbers: list[Row]
    tokens: list[Row]
    settings: list[Row]
    entries: list[tuple[Any, ...]]
    reputation: list[Row]
    learned: list[Row]
    passes: Rows = field(default_factory=Rows)


@dataclass(slots=True)
class ChangeBatch:
    seq: int
    """The newest change included; the next fetch starts after it."""
    count: int = 0
    entries: dict[int, tuple[Any, ...] | None] = field(default_factory=dict)
    users: dict[int, tuple[Row, list[str]] | None] = field(default_factory=dict)
    tokens: dict[int, Row | None] = field(default_factory=dict)
    settings: dict[int, str | None] = field(default_factory=dict)
    learned: dict[tuple[int, str], Row | None] = field(default_factory=dict)
    reputation: dict[tuple[str, str], Row | None] = field(default_factory=dict)
    passes: dict[tuple[str, str], float | None] = field(default_factory=dict)
    spent: dict[str, float | None] = field(default_factory=dict)
    diverts: dict[tuple[str, str], tuple[str, float] | None] = field(default_factory=dict)


def _tuples(db: Database, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    cur = db.conn.cursor()
    cur.row_factory = None
    return cur.execute(sql, list(args)).fetchall()


def _in_read_txn(db: Database) -> bool:
    """Open a read transaction unless one is open; return whether we opened it."""
    if db.conn.in_transaction:
        return False
    db.execute("BEGIN")
    return True


def last_seq(db: Database) -> int:
    """The newest change ever written (pruning does not lower it)."""
    r = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()
    return 0 if r is None else int(r[0])


def read_all(db: Database) -> Snapshot:
    """Every row of in-memory state, from one consistent snapshot."""
    opened = _in_read_txn(db)
    try:
        return Snapshot(
            seq=last_seq(db),
            users=db.execute("SELECT * FROM users").fetchall(),
            numbers=db.execute("SELECT tn, user_id FROM user_numbers").fetchall(),
            tokens=db.execute("SELECT * FROM tokens").fetchall(),
            settings=db.execute("SELECT user_id, data FROM settings").fetchall(),
            entries=_tuples(db, f"SELECT {ENTRY_COLUMNS} FROM list_entries"),
            reputation=db.execute("SELECT * FROM reputation").fetchall(),
            learned=db.execute("SELECT * FROM learned_allow").fetchall(),
            passes=read_passes(db),
        )
    finally:
        if opened:
            db.execute("COMMIT")


def learned_from_row(r: Row) -> LearnedNumber:
    return LearnedNumber(
        int(r["user_id"]),
        str(r["tn"]),
        IdentityStrength(int(r["strength"])),
        str(r["how"]),
        float(r["learned"]),
        float(r["last_seen"]),
        int(r["count"]),
    )


def install(
    snap: Snapshot,
    lists: ListIndex,
    users: UserDirectory,
    book: ReputationBook,
    learned: LearnedAllowBook,
    passes: PassBook | None = None,
) -> None:
    """Replace the in-memory state by the snapshot (the objects are kept: others hold them)."""
    for x in (lists, users, book, learned):
        x.clear()
    if passes is not None:
        passes.clear()
        passes.load(snap.passes)
    tns: dict[int, list[str]] = {}
    for r in snap.numbers:
        tns.setdefault(int(r["user_id"]), []).append(str(r["tn"]))
    for r in snap.users:
        users.put_user(user_from_row(r, tns.get(int(r["id"]), ())), r["password_hash"])
    for r in snap.tokens:
        users.put_token(token_from_row(r))
    for r in snap.settings:
        users.put_settings(int(r["user_id"]), settings_from_json(str(r["data"])))
    for e in entries_from_tuples(snap.entries):
        lists.add(e)
    for r in snap.reputation:
        book.load_row(r)
    for r in snap.learned:
        learned.put(learned_from_row(r))


def _chunks(keys: Iterable[Any], n: int = 500) -> Iterable[list[Any]]:
    ks = list(keys)
    for i in range(0, len(ks), n):
        yield ks[i : i + n]


def fetch(db: Database, since: int, limit: int = 20_000) -> ChangeBatch | Snapshot:
    """Changes after ``since`` with the current rows for their keys; a full
    :class:`Snapshot` when changes this process needs were already pruned."""
    opened = _in_read_txn(db)
    try:
        first = db.execute("SELECT min(seq) FROM changes").fetchone()[0]
        if since < last_seq(db) and (first is None or int(first) > since + 1):
            # Changes after ``since`` were pruned (sequence numbers have no holes: a
            # rolled-back insert rolls its number back too), so read everything again.
            return read_all(db)
        rows = _tuples(
            db,
            "SELECT seq, tbl, k1, k2 FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
            [since, limit],
        )
        batch = ChangeBatch(seq=since if not rows else int(rows[-1][0]), count=len(rows))
        keys: dict[str, set[Any]] = {}
        for _, tbl, k1, k2 in rows:
            if tbl in ("learned_allow", "reputation", "challenge_passes", "challenge_diverts"):
                keys.setdefault(tbl, set()).add((k1, k2))
            elif tbl == "spent_passes":
                keys.setdefault(tbl, set()).add(str(k1))
            else:
                keys.setdefault(tbl, set()).add(int(k1))
        uids = keys.get("users", set()) | keys.get("user_numbers", set())
        for chunk in _chunks(keys.get("list_entries", ())):
            marks = ",".join("?" * len(chunk))
            found = {
                r[0]: r
                for r in _tuples(
                    db, f"SELECT {ENTRY_COLUMNS} FROM list_entries WHERE id IN ({marks})", chunk
                )
            }
            batch.entries.update({k: found.get(k) for k in chunk})
        for uid in uids:
            u = db.execute("SELECT * FROM users WHERE id = ?", [uid]).fetchone()
            tns = [
                str(r[0])
                for r in db.execute("SELECT tn FROM user_numbers WHERE user_id = ?", [uid])
            ]
            batch.users[uid] = None if u is None else (u, tns)
        for tid in keys.get("tokens", ()):
            batch.tokens[tid] = db.execute("SELECT * FROM tokens WHERE id = ?", [tid]).fetchone()
        for uid in keys.get("settings", ()):
            r = db.execute("SELECT data FROM settings WHERE user_id = ?", [uid]).fetchone()
            batch.settings[uid] = None if r is None else str(r[0])
        for uid, tn in keys.get("learned_allow", ()):
            batch.learned[(int(uid), str(tn))] = db.execute(
                "SELECT * FROM learned_allow WHERE user_id = ? AND tn = ?", [uid, tn]
            ).fetchone()
        for kind, key in keys.get("reputation", ()):
            batch.reputation[(str(kind), str(key))] = db.execute(
                "SELECT * FROM reputation WHERE key_kind = ? AND key = ?", [kind, key]
            ).fetchone()
        for caller, callee in keys.get("challenge_passes", ()):
            batch.passes[(str(caller), str(callee))] = read_pass(db, caller, callee)
        for jti in keys.get("spent_passes", ()):
            batch.spent[jti] = read_spent(db, jti)
        for caller, callee in keys.get("challenge_diverts", ()):
            batch.diverts[(str(caller), str(callee))] = read_divert(db, caller, callee)
        return batch
    finally:
        if opened:
            db.execute("COMMIT")


def apply(
    batch: ChangeBatch,
    lists: ListIndex,
    users: UserDirectory,
    book: ReputationBook,
    learned: LearnedAllowBook,
    passes: PassBook | None = None,
) -> None:
    for uid, u in batch.users.items():
        if u is None:
            users.drop_user(uid)
            lists.drop_owner(uid)
            learned.forget(uid)
        else:
            users.put_user(user_from_row(u[0], u[1]), u[0]["password_hash"])
    for eid, t in batch.entries.items():
        if t is None:
            lists.remove(eid)
        else:
            lists.add(next(entries_from_tuples([t])))
    for tid, r in batch.tokens.items():
        if r is None:
            users.drop_token(tid)
        else:
            users.put_token(token_from_row(r))
    for uid, data in batch.settings.items():
        users.put_settings(uid, settings_from_json(data or "{}"))
    for (uid, tn), r in batch.learned.items():
        if r is None:
            learned.forget(uid, tn)
        else:
            learned.put(learned_from_row(r))
    for (kind, key), r in batch.reputation.items():
        if r is None:
            book.discard(kind, key)
        else:
            book.load_row(r)
    if passes is not None:
        for (caller, callee), until in batch.passes.items():
            if until is None:
                passes.drop_pass(caller, callee)
            else:
                passes.put_pass(caller, callee, until)
        for jti, expires in batch.spent.items():
            if expires is None:
                passes.drop_spent(jti)
            else:
                passes.put_spent(jti, expires)
        for (caller, callee), got in batch.diverts.items():
            if got is None:
                passes.drop_divert(caller, callee)
            else:
                passes.put_divert(caller, callee, got[0], got[1])
