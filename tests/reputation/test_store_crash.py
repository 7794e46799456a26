"""Crash safety: SIGKILL a process that writes continuously, then reopen the file.

What must hold: the file passes ``PRAGMA integrity_check``; everything the writer had
acknowledged (an awaited write returned) is there; background writes form an unbroken
prefix (a batch commits whole or not at all, in order), and at most the last batch
window's worth of them is lost.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from reputation.store import Store

from .storekit import FAST

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import asyncio, sys
from reputation.config import StoreConfig
from reputation.lists import ListKind, ListPattern, ListScope, NewListEntry
from reputation.model import CallFacts
from reputation.store import Store

async def main(path):
    s = Store.open(path, StoreConfig(batch_window=0.02))
    i = 0
    while True:
        # background: call records and counters (fire-and-forget)
        for _ in range(20):
            f = CallFacts(call_id=f"c{i}", caller=f"+1202555{i % 10000:04d}", callee="15551230001",
                          time=1.8e9 + i, source_ip="192.0.2.1")
            s.feedback.record_call(f, user_id=None, score=None, action="forward")
            i += 1
        # durable: a list change the API would acknowledge
        e = NewListEntry(ListScope.GLOBAL, None, ListKind.BLOCK, ListPattern(f"1555{i:07d}"))
        await s.add_entry(e)
        print(i, flush=True)

asyncio.run(main(sys.argv[1]))
"""


def test_sigkill_loses_at_most_the_last_batch_and_never_corrupts(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    acked = 0
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        while acked < 2000 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            acked = int(line)
        # keep it writing a little longer than the last acknowledgement we read
        time.sleep(0.03)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    err = proc.stderr.read() if proc.stderr else ""
    assert acked >= 2000, f"child wrote too little before the deadline: {acked}; stderr: {err}"
    assert proc.returncode == -signal.SIGKILL

    with sqlite3.connect(path) as c:
        assert c.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        n_calls = c.execute("SELECT count(*) FROM calls").fetchone()[0]
        ids = [int(r[0][1:]) for r in c.execute("SELECT call_id FROM calls ORDER BY id")]
        entries = c.execute("SELECT count(*) FROM list_entries").fetchone()[0]
    # every acknowledged list change is there (one per 20 calls)
    assert entries >= acked // 20
    # background call records: an unbroken prefix, at least everything before the last ack
    assert ids == list(range(n_calls))
    assert n_calls >= acked
    # reopening through the store works and sees the same data
    s = Store.open(path, FAST)
    try:
        assert len(s.lists) == entries
        assert s.book.get("ip", "192.0.2.1", 2e9).calls > 0
    finally:
        s.close()
