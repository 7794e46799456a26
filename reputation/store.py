"""The reputation store: one SQLite file, one writer thread, and the in-memory state the
call path reads.

Theory of operation
-------------------
:meth:`Store.open` checks the file (header, lock, integrity), brings the schema up to date
with the migrations in :mod:`reputation.migrations`, loads every list entry, account,
token, setting, reputation counter and learned number into memory, and starts the
:class:`~reputation.writer.Writer`. From then on

* the call path reads only memory: :attr:`lists` (:class:`ListIndex`), :attr:`users`
  (:class:`UserDirectory`), :attr:`book` (:class:`ReputationBook`), :attr:`learned`,
  :attr:`passes` (:class:`~reputation.passes.PassBook`: challenge passes, spent token ids);
* API changes go through ``await store.<change>(...)``: the row is committed first, then the
  in-memory state is updated on the event-loop thread, so the very next lookup sees it and
  nothing the API acknowledged can be lost;
* call records and counters go through :attr:`feedback` (memory at once, disk in the
  background: a crash loses at most the last batch window);
* history (calls, voicemails) is read from disk on reader threads (:meth:`read`).

The store is bound to one asyncio loop for its awaited methods; all in-memory state is
mutated only on that loop's thread. Failures a user can cause come back as
:class:`~reputation.lists.Invalid` values; a store that cannot be opened raises
:class:`StoreError` naming the file and the problem — a bad file is never silently reset.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from sqlite_utils import Database

from . import feed, migrations, passes, records
from .accounts import AccountsMixin
from .config import StoreConfig
from .counters import register_decay
from .feedback import (
    CallContext,
    Feedback,
    FeedbackConfig,
    IdentityStrength,
    LearnedAllowBook,
    OutcomeApplied,
    OutcomeKind,
    ReputationBook,
    UnknownCall,
    call_keys,
    caller_digits,
    identity_strength,
)
from .lists import (
    Invalid,
    ListEntry,
    ListHit,
    ListIndex,
    ListKind,
    ListScope,
    ListSource,
    NewListEntry,
    check_new_entry,
)
from .users import (
    UserDirectory,
)
from .writer import Writer, WriterClosed

T = TypeVar("T")
log = logging.getLogger("spitwall.reputation.store")
IMPORT_SLICE = 5000
"""List entries written per transaction by :meth:`Store.add_entries`."""
FEED_RETENTION = 3600.0
"""Seconds of change records kept for other processes (a process further behind reloads)."""
SQLITE_HEADER = b"SQLite format 3\x00"
DEFAULT_FILE = "reputation.sqlite3"


class StoreError(Exception):
    """The database file cannot be used; ``path`` and ``problem`` say which and why."""

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = Path(path)
        self.problem = problem


def store_path(data_dir: Path | str, config: StoreConfig) -> Path:
    """Where the file lives: ``config.path`` if set, else ``<data_dir>/reputation.sqlite3``."""
    return Path(config.path) if config.path else Path(data_dir) / DEFAULT_FILE


_ATTEST_STRENGTH = {"A": IdentityStrength.A, "B": IdentityStrength.B, "C": IdentityStrength.C}


def feedback_config(config: StoreConfig, short_call_seconds: float = 6.0) -> FeedbackConfig:
    return FeedbackConfig(
        half_life=config.half_life_days * 86_400.0,
        short_call_seconds=short_call_seconds,
        long_call_seconds=config.long_call_seconds,
        learn_after_seconds=config.learn_after_seconds,
        tn_evidence_min_strength=_ATTEST_STRENGTH.get(
            config.tn_evidence_min_attest, IdentityStrength.NONE
        ),
        max_calls_in_memory=config.max_calls_in_memory,
    )


def _connect(path: Path, timeout: float, *, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(
            f"file:{quote(str(path))}?mode=ro", uri=True, timeout=timeout, check_same_thread=False
        )
    else:
        conn = sqlite3.connect(str(path), timeout=timeout, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _describe(exc: BaseException, timeout: float) -> str:
    msg = str(exc)
    if "locked" in msg or "busy" in msg:
        return f"database is locked by another connection or process (waited {timeout:g} s): {msg}"
    if "not a database" in msg or "malformed" in msg or "corrupt" in msg:
        return (
            f"file is corrupt or not a SQLite database ({msg}); refusing to reset it:"
            " restore a backup or move the file away"
        )
    return f"cannot use database: {msg}"


class Store(AccountsMixin):
    """The reputation store. Create with :meth:`open`; close with :meth:`close`."""

    def __init__(
        self, path: Path, db: Database, config: StoreConfig, short_call_seconds: float
    ) -> None:
        self.path = path
        self.config = config
        self.lists = ListIndex()
        self.users = UserDirectory()
        fcfg = feedback_config(config, short_call_seconds)
        self.book = ReputationBook(fcfg.half_life, config.recent_half_life)
        self.learned = LearnedAllowBook()
        self.passes = passes.PassBook()
        self._load(db)
        self._writer_db = db
        self._writer = Writer(
            db, batch_window=config.batch_window, name=f"sqlite-writer:{path.name}"
        )
        self.feedback = Feedback(
            fcfg,
            self.book,
            self.learned,
            self.submit,
            learn_enabled=lambda uid: self.users.settings(uid).learn_allow is not False,
        )
        self._local = threading.local()
        self._readers = ThreadPoolExecutor(
            max(1, config.read_threads), thread_name_prefix="sqlite-reader"
        )
        self._reader_conns: list[sqlite3.Connection] = []
        self._reader_lock = threading.Lock()
        self._sync_lock = asyncio.Lock()

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls, path: Path | str, config: StoreConfig | None = None, *, short_call_seconds: float = 6.0
    ) -> Store:
        """Open (creating if absent) and migrate the file; raise :class:`StoreError` if unusable."""
        cfg = config or StoreConfig()
        p = Path(path)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            if p.exists() and p.stat().st_size > 0:
                with p.open("rb") as fh:
                    head = fh.read(16)
                if head != SQLITE_HEADER:
                    raise StoreError(
                        p, f"not a SQLite database (header {head[:16]!r}); refusing to reset it"
                    )
        except OSError as exc:
            raise StoreError(p, f"cannot read: {exc.strerror or exc}") from None
        conn: sqlite3.Connection | None = None
        try:
            conn = _connect(p, cfg.lock_timeout)
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(p, f"cannot switch to WAL journal mode (got {mode!r})")
            conn.execute("PRAGMA synchronous = NORMAL")
            # Take and release the write lock: a file another process holds is reported now,
            # not as a stalled writer later.
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            if cfg.check_on_open != "none":
                pragma = "quick_check" if cfg.check_on_open == "quick" else "integrity_check"
                problems = [str(r[0]) for r in conn.execute(f"PRAGMA {pragma}(5)").fetchall()]
                if problems != ["ok"]:
                    raise StoreError(p, f"integrity check failed: {'; '.join(problems)}")
            db = Database(conn, execute_plugins=False)
            newer = migrations.unknown_migrations(db)
            if newer:
                raise StoreError(
                    p,
                    f"schema is newer than this spitwall (unknown migrations: {', '.join(newer)})",
                )
            # Under the write lock, so that processes starting together migrate once.
            conn.execute("BEGIN IMMEDIATE")
            migrations.apply(db)
            conn.execute("COMMIT")
            register_decay(conn, cfg.half_life_days * 86_400.0)
            return cls(p, db, cfg, short_call_seconds)
        except StoreError:
            if conn is not None:
                conn.close()
            raise
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            raise StoreError(p, _describe(exc, cfg.lock_timeout)) from None

    def _load(self, db: Database) -> None:
        snap = feed.read_all(db)
        feed.install(snap, self.lists, self.users, self.book, self.learned, self.passes)
        self._seq = snap.seq

    def close(self) -> None:
        """Commit everything queued and release the file."""
        self._writer.close()
        self._readers.shutdown(wait=True)
        with self._reader_lock:
            for c in self._reader_conns:
                c.close()
            self._reader_conns.clear()

    # ------------------------------------------------------------------ I/O primitives
    def submit(self, fn: Callable[[Database], T]) -> Future[T]:
        """Fire-and-forget write: committed within the batch window (call records, counters)."""
        return self._writer.submit(fn)

    async def write(self, fn: Callable[[Database], T]) -> T:
        """Run ``fn(db)`` on the writer and return once it is committed (durable)."""
        return await asyncio.wrap_future(self._writer.submit(fn, urgent=True))

    def write_sync(self, fn: Callable[[Database], T], timeout: float | None = 30.0) -> T:
        """Blocking :meth:`write` for code without an event loop (tests, one-shot commands)."""
        return self._writer.submit(fn, urgent=True).result(timeout)

    def _reader_db(self) -> Database:
        db: Database | None = getattr(self._local, "db", None)
        if db is None:
            conn = _connect(self.path, self.config.lock_timeout, readonly=True)
            with self._reader_lock:
                self._reader_conns.append(conn)
            db = self._local.db = Database(conn, execute_plugins=False)
        return db

    async def read(self, fn: Callable[[Database], T]) -> T:
        """Run a read-only ``fn(db)`` on a reader thread (sees every committed write)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, lambda: fn(self._reader_db()))

    def read_sync(self, fn: Callable[[Database], T]) -> T:
        return self._readers.submit(lambda: fn(self._reader_db())).result()

    @property
    def writer_stats(self) -> tuple[int, int]:
        """(committed batches, failed writes)."""
        return self._writer.commits, self._writer.failures

    # ------------------------------------------------------------------ lists
    def match(self, user_id: int | None, digits: str, now: float) -> ListHit | None:
        return self.lists.match(user_id, digits, now)

    def lists_for_user(self, user_id: int, kind: ListKind | None = None) -> list[ListEntry]:
        """Only ``user_id``'s own entries (never global ones, never another user's)."""
        return self.lists.entries(user_id, kind)

    def global_lists(self, kind: ListKind | None = None) -> list[ListEntry]:
        return self.lists.entries(None, kind)

    async def add_entry(
        self, new: NewListEntry, *, now: float | None = None
    ) -> ListEntry | Invalid:
        """Add (or update the note/expiry/source of) one entry; durable before returning."""
        r = await self.add_entries([new], now=now)
        return r[0]

    async def add_entries(
        self, news: Sequence[NewListEntry], *, now: float | None = None
    ) -> list[ListEntry | Invalid]:
        """Add many entries in one transaction (CSV import). Same pattern again = update."""
        t = time.time() if now is None else now
        out: list[ListEntry | Invalid] = []
        ok: list[tuple[int, NewListEntry]] = []
        for i, e in enumerate(news):
            bad = check_new_entry(e)
            if bad is None and e.user_id is not None and self.users.get(e.user_id) is None:
                bad = Invalid("user", f"no user {e.user_id}")
            out.append(bad if bad is not None else Invalid("", "pending"))
            if bad is None:
                ok.append((i, e))

        sql = (
            "INSERT INTO list_entries (scope, user_id, kind, pattern, is_prefix,"
            " note, source, created, expires) VALUES (?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT (ifnull(user_id, 0), kind, pattern, is_prefix)"
            " DO UPDATE SET note = excluded.note, source = excluded.source,"
            " expires = excluded.expires RETURNING id, created"
        )
        params = [
            (
                *(e.scope.value, e.user_id, e.kind.value, e.pattern.digits, int(e.pattern.prefix)),
                *(e.note, e.source.value, t, e.expires),
            )
            for _, e in ok
        ]

        def fn(chunk: list[tuple[Any, ...]]) -> Callable[[Database], list[tuple[int, float]]]:
            def run(db: Database) -> list[tuple[int, float]]:
                cur = db.conn.cursor()
                cur.row_factory = None
                return [cur.execute(sql, p).fetchone() for p in chunk]

            return run

        # Big imports go in slices so the writer can commit other work in between (a
        # crash mid-import keeps the slices done; importing again is idempotent).
        for start in range(0, len(ok), IMPORT_SLICE):
            rows = await self.write(fn(params[start : start + IMPORT_SLICE]))
            for (i, e), (entry_id, created) in zip(
                ok[start : start + IMPORT_SLICE], rows, strict=True
            ):
                entry = ListEntry(
                    entry_id,
                    e.scope,
                    e.user_id,
                    e.kind,
                    e.pattern,
                    e.note,
                    e.source,
                    created,
                    e.expires,
                )
                self.lists.add(entry)
                out[i] = entry
        return out

    async def delete_entry(self, entry_id: int, *, user_id: int | None) -> ListEntry | None:
        """Delete an entry owned by ``user_id`` (None = a global entry). Someone else's id: None."""
        e = self.lists.get(entry_id)
        if e is None or e.user_id != user_id:
            return None
        await self.write(lambda db: db.execute("DELETE FROM list_entries WHERE id = ?", [entry_id]))
        self.lists.remove(entry_id)
        return e

    async def purge_expired(self, now: float | None = None) -> int:
        ids = self.lists.expired(time.time() if now is None else now)
        if not ids:
            return 0

        def fn(db: Database) -> None:
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                db.execute(
                    f"DELETE FROM list_entries WHERE id IN ({','.join('?' * len(chunk))})", chunk
                )

        await self.write(fn)
        for i in ids:
            self.lists.remove(i)
        return len(ids)

    async def maintain(
        self,
        now: float | None = None,
        *,
        counter_floor: float = 0.01,
        wall_now: float | None = None,
    ) -> tuple[int, int]:
        """Housekeeping for a timer (hourly is plenty): drop expired list entries, reputation
        keys whose every counter decayed below ``counter_floor``, and call history older than
        ``history_days``. Returns (list entries purged, counter keys pruned)."""
        t = time.time() if now is None else now
        purged = await self.purge_expired(t)
        gone = self.book.prune(t, counter_floor)
        horizon = t - self.config.history_days * 86_400.0 if self.config.history_days > 0 else None
        wall = time.time() if wall_now is None else wall_now

        def fn(db: Database) -> None:
            db.conn.executemany("DELETE FROM reputation WHERE key_kind = ? AND key = ?", gone)
            if horizon is not None:
                db.execute("DELETE FROM calls WHERE time < ?", [horizon])
                db.execute("DELETE FROM feedback_events WHERE time < ?", [horizon])
            # change rows carry the wall-clock time SQLite stamped them with
            db.execute("DELETE FROM changes WHERE time < ?", [wall - FEED_RETENTION])
            passes.prune(db, wall)

        await self.write(fn)
        self.passes.prune(wall)
        return purged, len(gone)

    async def sync(self) -> int:
        """Apply changes other processes made to the file (several worker processes).

        Returns how many change records were applied (-1: everything was reloaded). One
        process alone never needs this; with workers, run :meth:`follow`.
        """
        async with self._sync_lock:
            since = self._seq
            res = await asyncio.wrap_future(self._writer.submit(lambda db: feed.fetch(db, since)))
            if isinstance(res, feed.Snapshot):
                feed.install(res, self.lists, self.users, self.book, self.learned, self.passes)
                self._seq = res.seq
                return -1
            feed.apply(res, self.lists, self.users, self.book, self.learned, self.passes)
            self._seq = res.seq
            return res.count

    async def follow(self, interval: float = 1.0) -> None:
        """Run :meth:`sync` forever, every ``interval`` seconds (cancel the task to stop)."""
        while True:
            try:
                while await self.sync() >= 20_000:
                    pass
            except (sqlite3.Error, WriterClosed) as exc:
                log.warning("reputation store sync failed: %s", exc)
            await asyncio.sleep(interval)

    async def aclose(self) -> None:
        """:meth:`close` without blocking the event loop (for aiohttp cleanup contexts)."""
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    # ------------------------------------------------------------------ calls, reports, voicemail
    async def calls_for_user(
        self, user_id: int, limit: int = 50, before_id: int | None = None
    ) -> list[records.CallRecord]:
        return await self.read(lambda db: records.calls_for_user(db, user_id, limit, before_id))

    async def recent_calls(
        self, limit: int = 50, before_id: int | None = None
    ) -> list[records.CallRecord]:
        return await self.read(lambda db: records.recent_calls(db, limit, before_id))

    async def get_call(self, call_row_id: int, *, user_id: int | None) -> records.CallRecord | None:
        """A call by row id; with a ``user_id``, only that user's call (else None)."""
        return await self.read(lambda db: records.get_call(db, call_row_id, user_id))

    async def report_call(
        self, user_id: int, call_row_id: int, spam: bool, *, now: float | None = None
    ) -> OutcomeApplied | Invalid:
        """A subscriber's "spam" / "not spam" on one of their calls (once per call and kind)."""
        t = time.time() if now is None else now
        call = await self.get_call(call_row_id, user_id=user_id)
        if call is None:
            return Invalid("call", f"no call {call_row_id} for this user")
        kind = OutcomeKind.REPORT_SPAM if spam else OutcomeKind.REPORT_NOT_SPAM
        ctx = self.feedback.context(call.call_id)
        if ctx is None or ctx.user_id != user_id:
            ctx = await self._context_from_disk(call)
        return self.feedback.apply(ctx, kind, None, now=t, reporter=user_id)

    async def record_outcome(
        self,
        call_id: str,
        kind: OutcomeKind | str,
        detail: int | float | str | None = None,
        *,
        now: float | None = None,
    ) -> OutcomeApplied | UnknownCall:
        """Like ``feedback.record_outcome`` but finds calls no longer in memory on disk."""
        t = time.time() if now is None else now
        r = self.feedback.record_outcome(call_id, kind, detail, now=t)
        if not isinstance(r, UnknownCall):
            return r
        call = await self.read(lambda db: records.latest_call(db, call_id))
        if call is None:
            return UnknownCall.UNKNOWN_CALL
        ctx = await self._context_from_disk(call)
        return self.feedback.apply(ctx, OutcomeKind(kind), detail, now=t)

    async def _context_from_disk(self, call: records.CallRecord) -> CallContext:
        applied = await self.read(lambda db: records.applied_kinds(db, call.call_id))
        tn = caller_digits(call.caller)
        ctx = CallContext(
            call.call_id,
            call.time,
            call.user_id,
            tn,
            call_keys(tn, call.source_ip, call.origid, call.spc),
            identity_strength(call.verstat, call.attest),
            call.answered,
            {OutcomeKind(k) for k in applied if k in OutcomeKind._value2member_map_},
            call.action,
        )
        self.feedback.adopt(ctx)
        return ctx

    async def add_voicemail(self, v: records.NewVoicemail) -> records.Voicemail | Invalid:
        if self.users.get(v.user_id) is None:
            return Invalid("user", f"no user {v.user_id}")
        return await self.write(lambda db: records.insert_voicemail(db, v))

    async def voicemails_for_user(
        self, user_id: int, limit: int = 50, before_id: int | None = None
    ) -> list[records.Voicemail]:
        return await self.read(
            lambda db: records.voicemails_for_user(db, user_id, limit, before_id)
        )

    async def get_voicemail(self, user_id: int, vm_id: int) -> records.Voicemail | None:
        return await self.read(lambda db: records.get_voicemail(db, user_id, vm_id))

    async def delete_voicemail(self, user_id: int, vm_id: int) -> records.Voicemail | None:
        """Delete the row (the caller deletes the file at ``path``); None if not this user's."""
        return await self.write(lambda db: records.delete_voicemail(db, user_id, vm_id))

    async def mark_voicemail_heard(self, user_id: int, vm_id: int) -> bool:
        return await self.write(lambda db: records.mark_heard(db, user_id, vm_id))

    # ------------------------------------------------------------------ challenge passes
    def remember_pass(
        self, caller: str, callee: str, until: float, *, now: float | None = None
    ) -> Future[None]:
        """``caller`` (digits) passed a challenge for ``callee``: this process honours it at
        once, the others after their next :meth:`sync`. The future is done when committed."""
        t = time.time() if now is None else now
        self.passes.put_pass(caller, callee, until, t)
        return self._writer.submit(
            lambda db: passes.upsert_pass(db, caller, callee, until, t), urgent=True
        )

    def pass_remembered(self, caller: str, callee: str, now: float) -> bool:
        """Memory only (the call path): a pass remembered by any process this one has seen."""
        return self.passes.remembered(caller, callee, now)

    def remember_divert(
        self, caller: str, callee: str, verstat: str, until: float, *, now: float | None = None
    ) -> Future[None]:
        """The verstat of a call diverted to the challenge UA, for the bridged leg a pass
        brings (which may reach another process). Memory now, file within a batch window."""
        t = time.time() if now is None else now
        self.passes.put_divert(caller, callee, verstat, until, t)
        return self._writer.submit(
            lambda db: passes.upsert_divert(db, caller, callee, verstat, until, t)
        )

    def diverted_verstat(self, caller: str, callee: str, now: float) -> str | None:
        """Memory only (the call path): see :meth:`remember_divert`."""
        return self.passes.diverted_verstat(caller, callee, now)

    async def spend_pass(self, jti: str, expires: float, now: float | None = None) -> bool:
        """Spend a pass token's id once across every process sharing the file: True for the
        first spender. An id known spent is refused from memory; otherwise the file decides
        (one awaited commit; the event loop is not blocked). Raises ``sqlite3.Error`` or
        ``WriterClosed`` when the file cannot say (the caller refuses the token)."""
        t = time.time() if now is None else now
        if self.passes.is_spent(jti):
            return False
        first = await self.write(lambda db: passes.spend(db, jti, expires, t))
        self.passes.put_spent(jti, expires, t)
        return first

    # ------------------------------------------------------------------ learned allow
    def knows(self, user_id: int, tn: str, strength: IdentityStrength | int) -> bool:
        return self.learned.knows(user_id, tn, strength)


def user_list_entry(
    user_id: int,
    kind: ListKind,
    pattern: Any,
    *,
    note: str = "",
    source: Any = None,
    expires: float | None = None,
) -> NewListEntry:
    """Shorthand for a subscriber's entry (source defaults to ``api``)."""
    return NewListEntry(
        ListScope.USER, user_id, kind, pattern, note, source or ListSource.API, expires
    )


__all__ = ["DEFAULT_FILE", "Store", "StoreError", "feedback_config", "store_path"]
