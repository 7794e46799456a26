"""The store on real SQLite files: migrations, reopening, every table, bad files."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from sqlite_utils import Database

from reputation import migrations
from reputation.config import StoreConfig
from reputation.feedback import KeyKind, OutcomeKind
from reputation.lists import Invalid, ListKind
from reputation.model import CallFacts, Reason, Score
from reputation.records import NewVoicemail
from reputation.store import Store, StoreError, store_path

from .storekit import FAST, global_entry, raw, store, user_entry

__all__ = ["store"]

ALL_MIGRATIONS = [
    "0001_initial",
    "0002_call_reports",
    "0003_change_feed",
    "0004_feed_judgements_only",
    "0005_challenge_passes",
    "0006_challenge_diverts",
]
TABLES = {
    "users", "user_numbers", "tokens", "settings", "list_entries", "reputation",
    "learned_allow", "calls", "feedback_events", "voicemails", "changes",
}  # fmt: skip


def test_migrations_from_empty_then_reopen_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    s = Store.open(path, FAST)
    s.close()
    with raw(path) as c:
        names = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert names >= TABLES
        assert names >= {"challenge_passes", "spent_passes", "challenge_diverts"}
        triggers = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='trigger'")}
        assert triggers >= {
            f"feed_{t}_{e}"
            for t in ("challenge_passes", "spent_passes", "challenge_diverts")
            for e in ("insert", "update")
        }
        applied = [r[0] for r in c.execute("SELECT name FROM _sqlite_migrations")]
        assert applied == ALL_MIGRATIONS
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    for _ in range(2):
        Store.open(path, FAST).close()
    with raw(path) as c:
        assert c.execute("SELECT count(*) FROM _sqlite_migrations").fetchone()[0] == len(
            ALL_MIGRATIONS
        )
    db = Database(sqlite3.connect(path))
    assert migrations.schema_version(db) == len(ALL_MIGRATIONS)
    assert migrations.unknown_migrations(db) == []


def test_default_path_is_under_data_dir(tmp_path: Path) -> None:
    assert store_path(tmp_path, StoreConfig()) == tmp_path / "reputation.sqlite3"
    assert store_path(tmp_path, StoreConfig(path="/x/y.db")) == Path("/x/y.db")


def test_database_from_a_newer_spitwall_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    Store.open(path, FAST).close()
    with raw(path) as c:
        c.execute(
            "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES (?,?,?)",
            [migrations.MIGRATION_SET, "9999_future", "x"],
        )
    with pytest.raises(StoreError, match=r"newer.*9999_future"):
        Store.open(path, FAST)


def test_garbage_file_is_a_clear_error_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    junk = b"this is not a database\n" * 200
    path.write_bytes(junk)
    with pytest.raises(StoreError) as ei:
        Store.open(path, FAST)
    assert ei.value.path == path
    assert "not a SQLite database" in str(ei.value) and str(path) in str(ei.value)
    assert path.read_bytes() == junk


def test_corrupt_pages_behind_a_valid_header_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    Store.open(path, FAST).close()
    with raw(path) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    assert len(data) > 4096 * 3
    data[100 : len(data)] = b"\xa5" * (len(data) - 100)  # keep the 100-byte header, smash the rest
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=r"corrupt|integrity|not a SQLite"):
        Store.open(path, FAST)


def test_locked_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    Store.open(path, FAST).close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA locking_mode = EXCLUSIVE")
    other.execute("BEGIN EXCLUSIVE")
    try:
        t0 = time.monotonic()
        with pytest.raises(StoreError, match="locked") as ei:
            Store.open(path, StoreConfig(lock_timeout=0.2))
        assert time.monotonic() - t0 < 5
        assert ei.value.path == path
    finally:
        other.execute("ROLLBACK")
        other.close()
    Store.open(path, FAST).close()  # usable again once the other side lets go


def test_fresh_file_locked_by_a_writer_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("CREATE TABLE x (a)")
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="locked"):
            Store.open(path, StoreConfig(lock_timeout=0.2))
    finally:
        other.close()


def test_unreadable_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot"):
        Store.open(blocker / "sub" / "r.sqlite3", FAST)


async def test_every_table_written_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    s = Store.open(path, FAST)
    now = 1_800_000_000.0
    r = await s.add_user(
        "alice", "user", tns=["+1 555 123 0001"], password="correct horse", now=now
    )
    assert not isinstance(r, type(None)) and isinstance(r, tuple)
    alice, token = r
    await s.update_settings(
        alice.id, {"strictness": "strict", "band_actions": {"likely": "voicemail"}}
    )
    await s.add_entry(user_entry(alice.id, ListKind.BLOCK, "+1555*", note="spam range"), now=now)
    await s.add_entry(global_entry(ListKind.DNO, "+18005550100"), now=now)
    facts = CallFacts(
        call_id="c1", caller="+12025550111", callee="15551230001", time=now, source_ip="192.0.2.7",
        verstat="TN-Validation-Passed", attest="A", origid="orig-1", spc="1234",
    )  # fmt: skip
    score = Score(42.0, (Reason("shaken.attest_a", -0.85, "A"),))
    s.feedback.record_call(facts, user_id=alice.id, score=score, action="forward")
    s.feedback.record_outcome("c1", OutcomeKind.FINAL_RESPONSE, 200, now=now + 5)
    s.feedback.record_outcome("c1", OutcomeKind.BYE, 300.0, now=now + 305)
    vm = await s.add_voicemail(
        NewVoicemail(
            alice.id, "+12025550111", now, 12.5, "vm/1.wav", 200_000, "c1", 42.0, score.reasons
        )
    )
    s.close()

    s = Store.open(path, FAST)
    try:
        assert s.authenticate(token, now) == s.get_user(alice.id)
        assert s.user_for_tn("15551230001") is not None
        assert s.settings(alice.id).strictness == "strict"
        assert s.settings(alice.id).band_action("likely") == "voicemail"
        assert [str(e.pattern) for e in s.lists_for_user(alice.id)] == ["+1555*"]
        assert [e.kind for e in s.global_lists()] == [ListKind.DNO]
        c = s.book.get(KeyKind.TN, "12025550111", now + 305)
        assert c.calls == pytest.approx(1.0, rel=1e-3) and c.long_calls == pytest.approx(
            1.0, rel=1e-3
        )
        assert s.book.get(KeyKind.ORIGID, "orig-1", now + 305).answered == pytest.approx(
            1, rel=1e-3
        )
        assert s.knows(alice.id, "12025550111", 3)
        calls = await s.calls_for_user(alice.id)
        assert len(calls) == 1
        call = calls[0]
        assert call.caller == "+12025550111" and call.answered and call.duration == 300.0
        assert call.reasons == score.reasons and call.outcome == "ended" and call.final_code == 200
        assert not isinstance(vm, type(None))
        vms = await s.voicemails_for_user(alice.id)
        assert [v.path for v in vms] == ["vm/1.wav"] and vms[0].reasons == score.reasons
    finally:
        s.close()
    with raw(path) as c:
        counts = {t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    assert all(n > 0 for n in counts.values()), counts
    assert counts["feedback_events"] == 2


async def test_tokens_and_passwords_never_stored_in_clear(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    s = Store.open(path, FAST)
    r = await s.add_user("bob", "admin", password="s3cret-passphrase")
    assert isinstance(r, tuple)
    bob, token = r
    r2 = await s.create_token(bob.id, "laptop")
    assert isinstance(r2, tuple)
    s.close()
    blob = path.read_bytes() + (
        path.with_name(path.name + "-wal").read_bytes()
        if path.with_name(path.name + "-wal").exists()
        else b""
    )
    for secret in (token, r2[1], "s3cret-passphrase"):
        assert secret.encode() not in blob
        assert secret[4:].encode() not in blob
    with raw(path) as c:
        hashes = [r[0] for r in c.execute("SELECT token_hash FROM tokens")]
    assert all(len(h) == 64 for h in hashes)


async def test_write_and_read_primitives(store: Store) -> None:
    assert await store.write(lambda db: db.execute("SELECT 41 + 1").fetchone()[0]) == 42
    await store.write(lambda db: db.execute("CREATE TABLE scratch (x)"))
    store.submit(lambda db: db.execute("INSERT INTO scratch VALUES (1)"))
    await store.write(lambda db: None)  # a later awaited write commits after the earlier one
    assert (
        await store.read(lambda db: db.execute("SELECT count(*) FROM scratch").fetchone()[0]) == 1
    )
    with pytest.raises(sqlite3.OperationalError):
        await store.write(lambda db: db.execute("INSERT INTO nowhere VALUES (1)"))
    # one failing function rolls back only itself
    await store.write(lambda db: db.execute("INSERT INTO scratch VALUES (2)"))
    assert (
        await store.read(lambda db: db.execute("SELECT count(*) FROM scratch").fetchone()[0]) == 2
    )


async def test_readers_cannot_write(store: Store) -> None:
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        await store.read(lambda db: db.execute("CREATE TABLE t (x)"))


async def test_batching_groups_background_writes(tmp_path: Path) -> None:
    s = Store.open(tmp_path / "r.sqlite3", StoreConfig(batch_window=0.2))
    try:
        await s.write(lambda db: db.execute("CREATE TABLE t (x)"))
        before, _ = s.writer_stats
        futs = [
            s.submit(lambda db, i=i: db.execute("INSERT INTO t VALUES (?)", [i]))
            for i in range(500)
        ]
        for f in futs:
            f.result(5)
        after, failures = s.writer_stats
        assert after - before <= 3 and failures == 0
    finally:
        s.close()


def test_upgrade_from_the_first_schema_keeps_rows(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    db = Database(sqlite3.connect(path))
    migrations.migrations.apply(db, stop_before="0002_call_reports")
    db.execute(
        "INSERT INTO calls (call_id, time, callee, action, outcome)"
        " VALUES ('old', 1.0, '1555', 'forward', 'bye')"
    )
    db.conn.commit()
    db.close()
    s = Store.open(path, FAST)
    try:
        rows = s.read_sync(
            lambda d: [dict(r) for r in d.execute("SELECT call_id, outcome, report FROM calls")]
        )
        assert rows == [{"call_id": "old", "outcome": "bye", "report": None}]
        assert s.read_sync(migrations.schema_version) == len(ALL_MIGRATIONS)
    finally:
        s.close()


async def test_memory_matches_disk_after_random_changes(tmp_path: Path) -> None:
    """Whatever sequence of API changes, a reopened store loads exactly what memory held."""
    import random

    rng = random.Random(7)
    path = tmp_path / "r.sqlite3"
    s = Store.open(path, FAST)
    uids = []
    for name in ("a", "b", "c"):
        r = await s.add_user(name, "user")
        assert isinstance(r, tuple)
        uids.append(r[0].id)
    for _ in range(300):
        op = rng.random()
        uid = rng.choice([*uids, None])
        if op < 0.6:
            kind = rng.choice([ListKind.BLOCK, ListKind.ALLOW])
            text = "+1" + "".join(rng.choice("0123") for _ in range(rng.randrange(1, 4)))
            text += rng.choice(["*", "5551234"])
            new = (
                user_entry(uid, kind, text)
                if uid
                else global_entry(kind, text, expires=rng.choice([None, 5.0]))
            )
            await s.add_entry(new)
        elif op < 0.85:
            mine = s.lists.entries(uid)
            if mine:
                assert await s.delete_entry(rng.choice(mine).id, user_id=uid) is not None
        elif op < 0.95 and uid:
            await s.update_settings(uid, {"strictness": rng.choice(["lenient", "strict", None])})
        else:
            await s.purge_expired(now=10.0)
    before = {e.id: e for e in s.lists.entries(None)}
    for u in uids:
        before.update({e.id: e for e in s.lists.entries(u)})
    settings_before = {u: s.settings(u) for u in uids}
    s.close()
    s = Store.open(path, FAST)
    try:
        after = {e.id: e for e in s.lists.entries(None)}
        for u in uids:
            after.update({e.id: e for e in s.lists.entries(u)})
        assert after == before and len(s.lists) == len(before)
        assert {u: s.settings(u) for u in uids} == settings_before
    finally:
        s.close()


async def test_maintain_purges_and_prunes(tmp_path: Path) -> None:
    s = Store.open(tmp_path / "r.sqlite3", StoreConfig(batch_window=0.005, half_life_days=1))
    try:
        now = 1_800_000_000.0
        await s.add_entry(global_entry(ListKind.BLOCK, "+1555*", expires=now + 10))
        f = CallFacts(
            call_id="x", caller="+12025550111", callee="1555", time=now, source_ip="192.0.2.1"
        )
        s.feedback.record_call(f, user_id=None, score=None, action="forward")
        assert await s.maintain(now) == (0, 0)
        assert await s.read(lambda db: db.execute("SELECT count(*) FROM calls").fetchone()[0]) == 1
        assert await s.maintain(now + 30 * 86_400) == (1, 2)
        rows = await s.read(lambda db: db.execute("SELECT count(*) FROM reputation").fetchone()[0])
        assert rows == 0 and len(s.book) == 0 and len(s.lists) == 0
        assert await s.read(lambda db: db.execute("SELECT count(*) FROM calls").fetchone()[0]) == 1
        await s.maintain(now + 366 * 86_400)
        assert await s.read(lambda db: db.execute("SELECT count(*) FROM calls").fetchone()[0]) == 0
    finally:
        s.close()


async def test_voicemail_and_calls_are_isolated_per_user(tmp_path: Path) -> None:
    s = Store.open(tmp_path / "r.sqlite3", FAST)
    try:
        a, b = await s.add_user("alice", "user"), await s.add_user("bob", "user")
        assert isinstance(a, tuple) and isinstance(b, tuple)
        alice, bob = a[0], b[0]
        vm = await s.add_voicemail(NewVoicemail(alice.id, "+12025550111", 1.0, 3.0, "vm/a.wav", 10))
        assert not isinstance(vm, type(None)) and hasattr(vm, "id")
        vid = vm.id  # type: ignore[union-attr]
        assert await s.get_voicemail(bob.id, vid) is None
        assert await s.delete_voicemail(bob.id, vid) is None
        assert not await s.mark_voicemail_heard(bob.id, vid)
        assert await s.voicemails_for_user(bob.id) == []
        assert await s.mark_voicemail_heard(alice.id, vid)
        got = await s.get_voicemail(alice.id, vid)
        assert got is not None and got.heard
        assert isinstance(await s.add_voicemail(NewVoicemail(999, None, 1.0, 1.0, "x", 1)), Invalid)
        deleted = await s.delete_voicemail(alice.id, vid)
        assert deleted is not None and deleted.path == "vm/a.wav"
        assert await s.voicemails_for_user(alice.id) == []
        # paging through calls
        for i in range(5):
            f = CallFacts(
                call_id=f"p{i}", caller="+1202555011" + str(i), callee="1555", time=float(i)
            )
            s.feedback.record_call(f, user_id=alice.id, score=None, action="forward")
        await s.write(lambda db: None)
        page1 = await s.calls_for_user(alice.id, limit=2)
        page2 = await s.calls_for_user(alice.id, limit=2, before_id=page1[-1].id)
        assert [c.call_id for c in page1 + page2] == ["p4", "p3", "p2", "p1"]
        assert await s.get_call(page1[0].id, user_id=bob.id) is None
        assert (await s.get_call(page1[0].id, user_id=None)) == page1[0]
    finally:
        s.close()
