"""One writer thread per SQLite file, with batched commits.

Theory of operation
-------------------
Every change to the file is a function ``fn(db) -> T`` queued to a single thread that owns
the only writing connection (SQLite allows one writer at a time anyway; one thread means
no lock contention and no ``database is locked`` surprises inside the process). The thread
opens a transaction when the first function of a batch arrives, runs each function as it
arrives inside its own SAVEPOINT (so one failing function rolls back only itself), and
commits when

* the batch window (default 50 ms) since the batch's first function has passed, or
* the queue is empty and some function in the batch is *urgent* — somebody awaits its
  durability (an API change that must survive a crash before the HTTP reply).

Each function's future is resolved only after the COMMIT that made it durable. With WAL
and ``synchronous=NORMAL`` a committed transaction survives a killed process, so a crash
loses at most the functions of the batch not yet committed — at most one window's worth of
fire-and-forget work. The file itself is never left inconsistent: SQLite's WAL recovery
replays only whole committed transactions.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlite_utils import Database

T = TypeVar("T")
WriteFn = Callable[[Database], T]
log = logging.getLogger("spitwall.reputation.store")


@dataclass(slots=True)
class _Task(Generic[T]):
    fn: WriteFn[T]
    urgent: bool
    future: Future[T] = field(default_factory=Future)


_STOP = object()


class WriterClosed(RuntimeError):
    """The writer was closed; the function was not run."""


class Writer:
    """The single writing thread of one SQLite file."""

    def __init__(
        self, db: Database, *, batch_window: float = 0.05, name: str = "sqlite-writer"
    ) -> None:
        self._db = db
        self._window = batch_window
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._lock = threading.Lock()
        self.commits = 0
        """Number of committed batches (for metrics and tests)."""
        self.failures = 0
        """Functions that raised, plus functions lost to a failed COMMIT."""
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: WriteFn[T], *, urgent: bool = False) -> Future[T]:
        """Queue ``fn``; the future resolves after the COMMIT that includes it."""
        task: _Task[T] = _Task(fn, urgent)
        with self._lock:
            if self._closed:
                task.future.set_exception(WriterClosed("the store is closed"))
                return task.future
            self._queue.put(task)
        return task.future

    def close(self, timeout: float | None = 10.0) -> None:
        """Run and commit everything queued, then stop the thread and close the connection."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._db.close()

    # ------------------------------------------------------------------ thread
    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is _STOP:
                break
            batch: list[tuple[_Task[Any], Any, BaseException | None]] = []
            deadline = time.monotonic() + self._window
            urgent = False
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except Exception as exc:  # disk gone, locked by another process…
                self._fail([first], exc)
                continue
            item: Any = first
            while True:
                batch.append(self._run_one(item))
                urgent = urgent or item.urgent
                if not self._db.conn.in_transaction:
                    # SQLite rolled the whole transaction back (disk full, I/O error): the
                    # batch so far is lost; say so and carry on with a fresh transaction.
                    error = batch[-1][2] or sqlite3.OperationalError("transaction rolled back")
                    self._fail([t for t, _, _ in batch], error)
                    batch = []
                    urgent = False
                    try:
                        self._db.execute("BEGIN IMMEDIATE")
                    except Exception as exc:
                        log.error("SQLite writer cannot begin a transaction: %s", exc)
                if urgent and self._queue.empty():
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
            self._commit(batch)
        self._drain_closed()

    def _run_one(self, task: _Task[Any]) -> tuple[_Task[Any], Any, BaseException | None]:
        try:
            with self._db.atomic():
                return task, task.fn(self._db), None
        except Exception as exc:
            self.failures += 1
            return task, None, exc

    def _commit(self, batch: list[tuple[_Task[Any], Any, BaseException | None]]) -> None:
        if not batch and not self._db.conn.in_transaction:
            return
        try:
            self._db.execute("COMMIT")
        except Exception as exc:
            log.error("SQLite COMMIT failed, %d writes lost: %s", len(batch), exc)
            try:
                self._db.rollback()
            except Exception:
                pass
            self._fail([t for t, _, _ in batch], exc)
            return
        self.commits += 1
        for task, result, error in batch:
            if error is not None and not task.urgent:
                log.warning("background write failed: %r", error)
            # the waiter may give up (its asyncio task cancelled: a client hung up, a
            # shutdown) at any moment, also between a done() check and the set: the write
            # itself is committed, and this thread must live on
            try:
                if error is None:
                    task.future.set_result(result)
                else:
                    task.future.set_exception(error)
            except InvalidStateError:
                continue

    def _fail(self, tasks: list[_Task[Any]], exc: BaseException) -> None:
        self.failures += len(tasks)
        for t in tasks:
            _refuse(t.future, exc)

    def _drain_closed(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not _STOP:
                _refuse(item.future, WriterClosed("the store is closed"))


def _refuse(future: Future[Any], exc: BaseException) -> None:
    """Fail ``future`` unless its waiter already gave up (cancelled, even just now)."""
    try:
        future.set_exception(exc)
    except InvalidStateError:
        pass
