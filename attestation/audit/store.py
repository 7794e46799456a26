"""The attestation log's single writer: a thread with a queue, batched commits.

Theory of operation. The asyncio side only ever calls :meth:`AuditLog.append`, which puts
the entry on a bounded ``queue.Queue`` and returns at once. One writer thread owns the
only read-write connection (WAL, ``synchronous=NORMAL``). It takes the first waiting
entry, keeps collecting for ``batch_ms`` (or until ``max_batch`` entries, or a control
message such as flush), then, inside one ``BEGIN IMMEDIATE`` transaction, reads the file's
head, chains every entry after it (``seq`` = last + 1, ``prev_hash`` = last hash) and
commits. Reading the head under the write lock keeps one chain even when several worker
processes each run a writer on the same file. Futures for :meth:`flush` are resolved on
the event loop with ``call_soon_threadsafe`` (the datasette writer-thread pattern).

Durability: with WAL and ``synchronous=NORMAL`` a committed batch survives a process
crash (SIGKILL); a power loss may also lose the last commits before the WAL is synced.
A crash therefore loses at most the entries still queued or in the open batch window
(``batch_ms``, 50 ms by default), never part of a batch. On start the writer resumes from
the last committed row's hash, so the chain never breaks.

Backpressure: when the queue is full, entries go to an in-memory backlog (same bound) that
a task moves into the queue off the event loop, keeping order; each overflow is logged at
ERROR. Only when the backlog is full too is an entry dropped: it is counted, logged at
ERROR, and a ``loss`` record stating how many and when is written into the chain as soon
as there is room, so the log itself tells the auditor. Failed commits (disk full …) are
retried once, then counted and recorded the same way.

Checkpoints: every ``checkpoint_records`` records or ``checkpoint_interval`` seconds (when
something new was written) and at :meth:`close`, signed with the configured key.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import secrets
import sqlite3
import threading
import time as _time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .checkpoint import Checkpoint, CheckpointSigner
from .record import (
    COLUMNS,
    GENESIS_HASH,
    AuditEntry,
    RecordKind,
    entry_columns,
    record_hash,
    seal,
)
from .schema import open_writer, read_meta

_INSERT = f"INSERT INTO records ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
_INSERT_CP = (
    "INSERT INTO checkpoints (n, log_id, count, head_hash, time_utc, algorithm, key_id, "
    "public_key, signature) VALUES ((SELECT coalesce(max(n), 0) + 1 FROM checkpoints), "
    "?, ?, ?, ?, ?, ?, ?, ?)"
)


class AuditLogError(RuntimeError):
    """The log cannot be opened or the writer has stopped."""


@dataclass(slots=True)
class _Control:
    """A message to the writer, answered through ``future`` on ``loop``."""

    op: str  # "flush" | "checkpoint" | "stop"
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


@dataclass(slots=True)
class _Head:
    seq: int = 0
    hash: str = GENESIS_HASH
    checkpointed: int = 0
    checkpoint_time: float = 0.0


@dataclass(slots=True)
class AuditCounters:
    """What the writer has done since start (for /metrics and the logs)."""

    appended: int = 0
    written: int = 0
    """Records committed (including ``loss`` records)."""
    overflowed: int = 0
    """Entries that found the queue full and waited in the backlog."""
    dropped: int = 0
    """Entries refused on the event loop (backlog full, log closed or dead)."""
    write_failed: int = 0
    """Entries whose commit failed twice (written up as a ``loss`` record later)."""
    checkpoints: int = 0
    batches: int = 0
    last_error: str = ""

    @property
    def lost(self) -> int:
        """Entries that never made it into the chain."""
        return self.dropped + self.write_failed


def _resolve(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


class AuditLog:
    """The append-only, hash-chained attestation log of one SQLite file."""

    def __init__(
        self,
        path: Path,
        *,
        signer: CheckpointSigner | None = None,
        batch_ms: float = 50.0,
        max_batch: int = 2000,
        queue_max: int = 100_000,
        checkpoint_records: int = 10_000,
        checkpoint_interval: float = 300.0,
        clock: Callable[[], float] = _time.time,
        logger: logging.Logger | None = None,
    ) -> None:
        if batch_ms < 0 or max_batch < 1 or queue_max < 1:
            raise ValueError("batch_ms must be >= 0, max_batch and queue_max >= 1")
        self.path = Path(path)
        self._signer = signer
        self._batch_s = batch_ms / 1000.0
        self._max_batch = max_batch
        self._queue: queue.Queue[AuditEntry | _Control] = queue.Queue(queue_max)
        self._backlog: deque[AuditEntry] = deque()
        self._backlog_max = queue_max
        self._drain_task: asyncio.Task[None] | None = None
        self._cp_records = checkpoint_records
        self._cp_interval = checkpoint_interval
        self._clock = clock
        self._log = logger or logging.getLogger("spitwall.audit")
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._head = _Head()
        self._committed: tuple[int, str] = (0, GENESIS_HASH)  # one atomic attribute for readers
        self._log_id = ""
        self._lost_pending = 0  # counted on the writer thread, written as a loss record
        self._loss_first = 0.0
        self._loop_lost = 0  # counted on the event loop (backlog full)
        self._loop_lost_first = 0.0
        self._closing = False
        self._stopped = False
        self._dead: BaseException | None = None
        self.counters = AuditCounters()

    # ---- asyncio side -------------------------------------------------------------

    async def start(self) -> None:
        """Open (or create) the file and resume the chain; raises AuditLogError."""
        if self._thread is not None:
            raise AuditLogError("audit log already started")
        self._loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = self._loop.create_future()
        self._thread = threading.Thread(
            target=self._run, args=(self._loop, ready), name="audit-writer", daemon=True
        )
        self._thread.start()
        await ready

    @property
    def head(self) -> tuple[int, str]:
        """(seq, hash) of the last committed record (0 and the genesis hash when empty)."""
        return self._committed

    @property
    def log_id(self) -> str:
        return self._log_id

    def append(self, entry: AuditEntry) -> None:
        """Queue ``entry`` for writing; never blocks, never raises on a full queue."""
        self.counters.appended += 1
        if self._closing or self._dead is not None:
            self._drop(entry, "the audit log is closed" if self._closing else "the writer died")
            return
        if not self._backlog:
            try:
                self._queue.put_nowait(entry)
                return
            except queue.Full:
                pass
        if len(self._backlog) >= self._backlog_max or self._loop is None:
            self._drop(entry, "queue and backlog full" if self._loop else "queue full before start")
            return
        self.counters.overflowed += 1
        if self.counters.overflowed == 1 or self.counters.overflowed % 1000 == 0:
            self._log.error(
                "attestation log queue full: %d entries waiting in the backlog "
                "(the disk is slower than the call rate)",
                len(self._backlog) + 1,
            )
        self._backlog.append(entry)
        if self._drain_task is None or self._drain_task.done():
            self._drain_task = self._loop.create_task(self._drain())

    def _drop(self, entry: AuditEntry, why: str) -> None:
        self.counters.dropped += 1
        if self._loop_lost == 0:
            self._loop_lost_first = entry.time
        self._loop_lost += 1
        n = self.counters.dropped
        if n <= 10 or (n <= 1000 and n % 100 == 0) or n % 1000 == 0:  # loud, but no flood
            self._log.error(
                "attestation record LOST (%s): call_id=%r kind=%s; %d lost so far",
                why,
                entry.call_id,
                entry.kind,
                self.counters.lost,
            )

    async def _drain(self) -> None:
        """Move backlog entries into the queue in order, blocking in a thread, not the loop."""
        while self._backlog or (self._loop_lost and not self._closing):
            if self._loop_lost and not self._backlog:
                self._backlog.append(self._loss_entry(self._loop_lost, self._loop_lost_first))
                self._loop_lost = 0
            if self._dead is not None:
                return
            entry = self._backlog[0]
            try:
                await asyncio.to_thread(self._queue.put, entry, True, 1.0)
            except queue.Full:
                continue
            self._backlog.popleft()

    def _loss_entry(self, count: int, first: float) -> AuditEntry:
        now = self._clock()
        return AuditEntry(
            time=now,
            kind=RecordKind.LOSS.value,
            details={"lost": count, "first_lost_at": first, "last_lost_at": now},
        )

    async def _control(self, op: str) -> Any:
        if self._thread is None or self._loop is None:
            raise AuditLogError("audit log not started")
        if self._stopped:
            raise AuditLogError("audit log closed")
        if self._dead is not None:
            raise AuditLogError(f"audit writer stopped: {self._dead}")
        if self._drain_task is not None and not self._drain_task.done():
            await asyncio.shield(self._drain_task)
        fut: asyncio.Future[Any] = self._loop.create_future()
        await asyncio.to_thread(self._queue.put, _Control(op, self._loop, fut))
        return await fut

    async def flush(self) -> int:
        """Wait until every entry appended so far is committed; the head seq."""
        return int(await self._control("flush"))

    async def checkpoint(self) -> Checkpoint | None:
        """Commit pending entries and sign a checkpoint now (None without a key or records)."""
        result: Checkpoint | None = await self._control("checkpoint")
        return result

    async def close(self) -> None:
        """Write everything queued, a final checkpoint, and stop the writer thread."""
        if self._thread is None or self._closing:
            return
        self._closing = True  # appends from now on are refused loudly, not queued unseen
        try:
            if self._dead is None:
                await self._control("stop")
        finally:
            self._stopped = True
            await asyncio.to_thread(self._thread.join, 10.0)

    # ---- writer thread ------------------------------------------------------------

    def _run(self, loop: asyncio.AbstractEventLoop, ready: asyncio.Future[None]) -> None:
        try:
            conn = open_writer(self.path, secrets.token_hex(16))
            self._load_head(conn)
        except BaseException as exc:  # reported to start()
            self._dead = exc
            err = AuditLogError(f"cannot open attestation log {self.path}: {exc}")
            loop.call_soon_threadsafe(_resolve, ready, None, err)
            return
        loop.call_soon_threadsafe(_resolve, ready, None, None)
        try:
            self._serve(conn)
        except BaseException as exc:  # the writer must report, not vanish
            self._dead = exc
            self._log.critical("attestation log writer stopped: %r", exc)
            self._fail_waiters(exc)
        finally:
            conn.close()

    def _load_head(self, conn: sqlite3.Connection) -> None:
        meta = read_meta(conn, self.path)
        self._log_id = meta["log_id"]
        row = conn.execute(
            f"SELECT {', '.join(COLUMNS)} FROM records ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        if row is not None:
            last = dict(zip(COLUMNS, row, strict=True))
            self._head.seq, self._head.hash = int(last["seq"]), str(last["hash"])
            self._committed = (self._head.seq, self._head.hash)
            if record_hash(last) != last["hash"]:
                self._log.error(
                    "attestation log %s: last record %d does not match its hash; "
                    "appending after it anyway — run `spitwall audit verify`",
                    self.path,
                    self._head.seq,
                )
        cp = conn.execute("SELECT count FROM checkpoints ORDER BY n DESC LIMIT 1").fetchone()
        self._head.checkpointed = int(cp[0]) if cp else 0
        self._head.checkpoint_time = self._clock()
        if self._head.checkpointed > self._head.seq:
            self._log.error(
                "attestation log %s: last checkpoint covers %d records but only %d are "
                "present — records were deleted; run `spitwall audit verify`",
                self.path,
                self._head.checkpointed,
                self._head.seq,
            )
            self._head.checkpointed = self._head.seq
        if self._signer is None:
            self._log.warning(
                "attestation log %s has no checkpoint key: a deleted tail cannot be detected",
                self.path,
            )
        self._log.info(
            "attestation log %s opened: %d records, head %s…",
            self.path,
            self._head.seq,
            self._head.hash[:16],
        )

    def _serve(self, conn: sqlite3.Connection) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self._until_timed_checkpoint())
            except queue.Empty:
                self._checkpoint(conn)
                continue
            batch: list[AuditEntry] = []
            control: _Control | None = None
            deadline = _time.monotonic() + self._batch_s
            while True:
                if isinstance(item, _Control):
                    control = item
                    break
                batch.append(item)
                if len(batch) >= self._max_batch:
                    break
                remaining = deadline - _time.monotonic()
                try:
                    item = (
                        self._queue.get(timeout=remaining)
                        if remaining > 0
                        else self._queue.get_nowait()
                    )
                except queue.Empty:
                    break
            if batch:
                self._write(conn, batch)
            if (
                self._head.seq - self._head.checkpointed >= self._cp_records
                and self._cp_records > 0
            ):
                self._checkpoint(conn)
            if control is not None and self._handle(conn, control):
                return

    def _until_timed_checkpoint(self) -> float | None:
        if self._head.seq == self._head.checkpointed or self._signer is None:
            return None
        return max(0.0, self._head.checkpoint_time + self._cp_interval - self._clock())

    def _handle(self, conn: sqlite3.Connection, control: _Control) -> bool:
        result: Any = self._head.seq
        if control.op in ("checkpoint", "stop"):
            result = self._checkpoint(conn)
        self._reply(control, result, None)
        return control.op == "stop"

    def _reply(self, control: _Control, value: Any, error: BaseException | None) -> None:
        try:
            control.loop.call_soon_threadsafe(_resolve, control.future, value, error)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass

    def _write(self, conn: sqlite3.Connection, batch: list[AuditEntry]) -> None:
        unencodable = 0
        for attempt in (1, 2):
            try:
                conn.execute("BEGIN IMMEDIATE")
                self._read_head(conn)  # the file's own head: other processes may append too
                rows, unencodable = self._encode(batch)
                self._insert(conn, rows)
                self._lost_pending = 0
                break
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                self.counters.last_error = str(exc)
                self._log.error(
                    "attestation log write of %d records failed (attempt %d): %s",
                    len(batch),
                    attempt,
                    exc,
                )
        else:
            lost = sum(1 for e in batch if e.kind != RecordKind.LOSS.value)
            self._note_lost(lost, batch[0].time)
            self._log.error("attestation records LOST: %d (write failed twice)", lost)
        self._note_lost(unencodable, batch[0].time)

    def _note_lost(self, count: int, first: float) -> None:
        """Remember ``count`` lost entries; the next batch starts with a loss record."""
        if count:
            if not self._lost_pending:
                self._loss_first = first
            self._lost_pending += count
            self.counters.write_failed += count

    def _encode(self, batch: list[AuditEntry]) -> tuple[list[tuple[Any, ...]], int]:
        """Chain ``batch`` after the head: the rows to insert, and how many could not be."""
        if self._lost_pending:
            loss = self._loss_entry(self._lost_pending, self._loss_first)
            batch = [loss, *batch]
        seq, prev = self._head.seq, self._head.hash
        rows = []
        unencodable = 0
        for entry in batch:
            try:
                columns = entry_columns(entry)
            except (ValueError, TypeError) as exc:  # normalised on construction: a bug if here
                unencodable += 1
                self._log.error("attestation record LOST (cannot encode: %s)", exc)
                continue
            seq += 1
            row = seal(columns, seq, prev)
            prev = row["hash"]
            rows.append(tuple(row[c] for c in COLUMNS))
        return rows, unencodable

    def _insert(self, conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
        """Insert the chained rows and commit (the transaction is open)."""
        if not rows:
            conn.execute("COMMIT")
            return
        seq, prev = int(rows[-1][0]), str(rows[-1][-1])
        conn.executemany(_INSERT, rows)
        conn.execute("COMMIT")
        self._head.seq, self._head.hash = seq, prev
        self._committed = (seq, prev)
        self.counters.written += len(rows)
        self.counters.batches += 1

    def _read_head(self, conn: sqlite3.Connection) -> None:
        """Take the head from the file (inside the write transaction)."""
        row = conn.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
        self._head.seq, self._head.hash = (int(row[0]), str(row[1])) if row else (0, GENESIS_HASH)
        self._committed = (self._head.seq, self._head.hash)

    def _checkpoint(self, conn: sqlite3.Connection) -> Checkpoint | None:
        now = self._clock()
        self._head.checkpoint_time = now
        if self._signer is None or self._head.seq == self._head.checkpointed:
            return None
        try:
            conn.execute("BEGIN IMMEDIATE")
            self._read_head(conn)
            cp = self._signer.sign(self._log_id, self._head.seq, self._head.hash, now)
            values = (cp.log_id, cp.count, cp.head_hash, cp.time_utc, cp.algorithm, cp.key_id)
            conn.execute(_INSERT_CP, (*values, cp.public_key, cp.signature))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._log.error("attestation checkpoint at %d failed: %s", self._head.seq, exc)
            return None
        self._head.checkpointed = cp.count
        self.counters.checkpoints += 1
        self._log.info("attestation checkpoint: %d records, head %s…", cp.count, cp.head_hash[:16])
        return cp

    def _fail_waiters(self, exc: BaseException) -> None:
        err = AuditLogError(f"audit writer stopped: {exc}")
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Control):
                self._reply(item, None, err)
            else:
                self.counters.write_failed += 1
