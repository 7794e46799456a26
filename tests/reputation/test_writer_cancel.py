"""A waiter that gives up must not take the store's writer thread down with it.

Why: an API request whose client hangs up is cancelled while it awaits its write; the
write still commits, and every later write (call records, list changes) needs the one
writer thread alive. Before the fix, resolving the cancelled future raised in the thread
and the store stopped writing for good.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from sqlite_utils import Database

from reputation.config import StoreConfig
from reputation.store import Store


async def test_cancelled_write_is_committed_and_the_writer_lives_on(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "r.sqlite3", StoreConfig(batch_window=0.05))
    gate = threading.Event()
    try:
        await store.write(lambda db: db.execute("CREATE TABLE t (v INTEGER)"))

        def slow(db: Database) -> None:  # holds the writer so the next write stays queued
            gate.wait(5)

        def insert(v: int):
            return lambda db: db.execute("INSERT INTO t VALUES (?)", [v])

        store.submit(slow)
        waiter = asyncio.ensure_future(store.write(insert(1)))
        await asyncio.sleep(0.05)
        waiter.cancel()  # the client hung up while its write was queued
        await asyncio.sleep(0)
        gate.set()
        await asyncio.wait_for(store.write(insert(2)), 5)  # hangs if the writer thread died
        rows = await store.read(lambda db: [r[0] for r in db.execute("SELECT v FROM t")])
        assert sorted(rows) == [1, 2]
    finally:
        gate.set()
        store.close()
