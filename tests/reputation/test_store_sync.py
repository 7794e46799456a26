"""Several processes on one file: each keeps its memory in step through the change feed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reputation.feedback import OutcomeKind
from reputation.lists import ListEntry, ListKind
from reputation.model import CallFacts
from reputation.store import FEED_RETENTION, Store

from .storekit import FAST, global_entry, user_entry

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_800_000_000.0


def call(call_id: str, ip: str = "192.0.2.9") -> CallFacts:
    return CallFacts(
        call_id=call_id, caller="+12025550111", callee="15551230001", time=T0, source_ip=ip,
        verstat="TN-Validation-Passed", attest="A",
    )  # fmt: skip


async def test_api_changes_in_one_process_reach_the_other(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    a, b = Store.open(path, FAST), Store.open(path, FAST)
    try:
        r = await a.add_user("alice", "user", tns=["+15551230001"])
        assert isinstance(r, tuple)
        alice, token = r
        e = await a.add_entry(user_entry(alice.id, ListKind.BLOCK, "+1202*"))
        g = await a.add_entry(global_entry(ListKind.DNO, "+18005550100"))
        await a.update_settings(alice.id, {"monitor": True})
        assert isinstance(e, ListEntry) and isinstance(g, ListEntry)
        assert b.authenticate(token) is None  # not yet
        assert await b.sync() > 0
        assert b.authenticate(token) == alice
        assert b.user_for_tn("15551230001") == alice
        hit = b.match(alice.id, "12025550111", T0)
        assert hit is not None and hit.entry == e
        assert b.match(None, "18005550100", T0) is not None
        assert b.settings(alice.id).monitor is True
        assert await b.sync() == 0  # nothing new

        await a.delete_entry(e.id, user_id=alice.id)
        await a.add_number(alice.id, "+15551230002")
        await b.sync()
        assert b.match(alice.id, "12025550111", T0) is None
        assert b.user_for_tn("15551230002") is not None

        await a.delete_user(alice.id)
        await b.sync()
        assert b.authenticate(token) is None and b.get_user(alice.id) is None
        assert b.user_for_tn("15551230001") is None
        # B's own earlier view is consistent with a fresh open
        c = Store.open(path, FAST)
        try:
            assert [x.id for x in c.global_lists()] == [x.id for x in b.global_lists()]
            assert len(c.lists) == len(b.lists) and len(c.users) == len(b.users) == 0
        finally:
            c.close()
    finally:
        a.close()
        b.close()


async def test_counters_from_several_processes_add_up(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    a, b = Store.open(path, FAST), Store.open(path, FAST)
    try:
        for i in range(3):
            a.feedback.record_call(call(f"a{i}"), user_id=None, score=None, action="forward")
        b.feedback.record_call(call("b0"), user_id=None, score=None, action="forward")
        b.feedback.record_outcome("b0", OutcomeKind.REPORT_SPAM, now=T0)
        await a.write(lambda db: None)
        await b.write(lambda db: None)
        await a.sync()
        await b.sync()
        # a judgement travels through the feed, carrying the key's counts as they are on disk
        for s in (a, b):
            c = s.book.get("ip", "192.0.2.9", T0)
            assert c.calls == pytest.approx(4.0) and c.reports_spam == pytest.approx(1.0)
        n = await a.read(
            lambda db: db.execute(
                "SELECT count(*) FROM changes WHERE tbl = 'reputation'"
            ).fetchone()[0]
        )
        assert n == 2  # the report on the caller TN (attested A) and on the source IP
        # plain call counts are not fed (several rows per call); the next start sees them
        a.feedback.record_call(call("a9"), user_id=None, score=None, action="forward")
        await a.write(lambda db: None)
        await b.sync()
        assert b.book.get("ip", "192.0.2.9", T0).calls == pytest.approx(4.0)
        c2 = Store.open(path, FAST)
        try:
            assert c2.book.get("tn", "12025550111", T0).calls == pytest.approx(5.0)
        finally:
            c2.close()
    finally:
        a.close()
        b.close()


async def test_a_process_far_behind_reloads_everything(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    a, b = Store.open(path, FAST), Store.open(path, FAST)
    try:
        await a.add_entry(global_entry(ListKind.BLOCK, "+1555*"))
        await a.add_entry(global_entry(ListKind.BLOCK, "+1666*"))
        # the feed is pruned past what b has seen (b never synced)
        await a.write(lambda db: db.execute("DELETE FROM changes"))
        assert await b.sync() == -1
        assert {str(e.pattern) for e in b.global_lists()} == {"+1555*", "+1666*"}
        assert await b.sync() == 0
        # maintain() prunes by age
        await a.add_entry(global_entry(ListKind.BLOCK, "+1777*"))
        await a.maintain(wall_now=time.time() + FEED_RETENTION + 1)
        n = await a.read(lambda db: db.execute("SELECT count(*) FROM changes").fetchone()[0])
        assert n == 0
        assert await b.sync() == -1 and len(b.global_lists()) == 3
    finally:
        a.close()
        b.close()


CHILD = r"""
import asyncio, sys
from reputation.config import StoreConfig
from reputation.lists import ListKind, ListPattern, ListScope, NewListEntry
from reputation.store import Store

async def main(path):
    s = Store.open(path, StoreConfig(batch_window=0.005))
    p = ListPattern("12025550199")
    e = NewListEntry(ListScope.GLOBAL, None, ListKind.BLOCK, p, "from worker 2")
    await s.add_entry(e)
    await s.aclose()

asyncio.run(main(sys.argv[1]))
"""


async def test_real_second_process(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    s = Store.open(path, FAST)
    try:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert s.match(None, "12025550199", T0) is None
        await s.sync()
        hit = s.match(None, "12025550199", T0)
        assert hit is not None and hit.entry.note == "from worker 2"
    finally:
        s.close()
