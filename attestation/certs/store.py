"""The persistent x5u cache: fetched bodies in a small SQLite table (rule 19).

Why SQLite and why the raw body: a restart must not turn into a fetch storm against every
certificate repository, and re-validating the stored PEM at load time (with the trust
anchors in force *now*) is both cheap and safer than trusting a stored verdict.

One connection lives on one worker thread (``ThreadPoolExecutor(max_workers=1)``), so the
event loop never blocks on disk and SQLite's one-writer rule holds. Writes are
write-behind: callers do not wait for them on the call path; :meth:`close` drains them.

Schema (``PRAGMA user_version = 1``)::

    CREATE TABLE x5u_cache (
        url TEXT PRIMARY KEY, body BLOB NOT NULL,
        fetched_at REAL NOT NULL, expires_at REAL NOT NULL)
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS x5u_cache (
    url TEXT PRIMARY KEY,
    body BLOB NOT NULL,
    fetched_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
PRAGMA user_version = 1;
"""


@dataclass(frozen=True, slots=True)
class StoredChain:
    url: str
    body: bytes
    fetched_at: float
    expires_at: float


class CertStore:
    """Async facade over one SQLite file; every method runs on the store's own thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="x5u-cache")
        self._conn: sqlite3.Connection | None = None
        self._pending: set[asyncio.Future[Any]] = set()

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            self._conn = conn
        return self._conn

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def _get(self, url: str) -> StoredChain | None:
        row = (
            self._db()
            .execute(
                "SELECT url, body, fetched_at, expires_at FROM x5u_cache WHERE url = ?", (url,)
            )
            .fetchone()
        )
        return StoredChain(row[0], bytes(row[1]), float(row[2]), float(row[3])) if row else None

    def _put(self, item: StoredChain) -> None:
        db = self._db()
        with db:
            db.execute(
                "INSERT OR REPLACE INTO x5u_cache (url, body, fetched_at, expires_at) "
                "VALUES (?, ?, ?, ?)",
                (item.url, item.body, item.fetched_at, item.expires_at),
            )

    def _delete(self, url: str) -> None:
        db = self._db()
        with db:
            db.execute("DELETE FROM x5u_cache WHERE url = ?", (url,))

    def _purge(self, now: float) -> int:
        db = self._db()
        with db:
            return db.execute("DELETE FROM x5u_cache WHERE expires_at < ?", (now,)).rowcount

    async def get(self, url: str) -> StoredChain | None:
        try:
            result: StoredChain | None = await self._run(self._get, url)
        except sqlite3.Error:
            return None  # a broken cache file costs a fetch, never a call
        return result

    def put_behind(self, item: StoredChain) -> None:
        """Write without waiting (write-behind)."""
        self._track(self._run(self._put, item))

    def delete_behind(self, url: str) -> None:
        self._track(self._run(self._delete, url))

    async def purge(self, now: float) -> int:
        n: int = await self._run(self._purge, now)
        return n

    def purge_behind(self, now: float) -> None:
        """Drop expired rows without waiting."""
        self._track(self._run(self._purge, now))

    def _track(self, coro: Any) -> None:
        fut = asyncio.ensure_future(coro)
        self._pending.add(fut)
        fut.add_done_callback(self._done)

    def _done(self, fut: asyncio.Future[Any]) -> None:
        self._pending.discard(fut)
        if not fut.cancelled():
            fut.exception()  # retrieved: a failed cache write is not an error for the call

    async def flush(self) -> None:
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def close(self) -> None:
        await self.flush()
        if self._conn is not None:
            conn = self._conn
            self._conn = None
            with contextlib.suppress(Exception):
                await self._run(conn.close)
        self._pool.shutdown(wait=False)
