"""The single writer: non-blocking appends, batching, checkpoints, backpressure, crashes."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from attestation.audit import (
    AuditLog,
    AuditLogError,
    AuditReader,
    SearchFilters,
    open_audit_log,
)
from attestation.config import AttestationConfig

from .test_audit_record import build_log, sample_entry, signer_in

ROOT = Path(__file__).resolve().parents[2]


async def test_append_returns_at_once_and_flush_commits_in_order(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.sqlite3", batch_ms=50.0)
    await log.start()
    entries = [sample_entry(i) for i in range(2000)]
    started = time.perf_counter()
    for entry in entries:
        log.append(entry)  # a put_nowait: no encoding, no I/O on the event loop
    elapsed = time.perf_counter() - started
    assert elapsed < 0.5, f"2000 appends took {elapsed:.3f}s on the event loop"
    assert await log.flush() == 2000
    assert log.head[0] == 2000 and log.counters.batches >= 1
    await log.close()
    page = AuditReader(tmp_path / "a.sqlite3").search(limit=3)
    assert [r.row["call_id"] for r in page.records] == [
        f"call-{i}@example.test" for i in (1999, 1998, 1997)
    ]


async def test_writer_resumes_the_chain_after_restart(tmp_path: Path) -> None:
    db = tmp_path / "a.sqlite3"
    signer = signer_in(tmp_path)
    first = await build_log(db, 10, signer=signer)
    second = await build_log(db, 10, signer=signer, start=10)
    assert first.log_id == second.log_id and second.head[0] == 20
    result = AuditReader(db).verify()
    assert result.ok and result.count == 20 and result.checkpoints_checked == 2


async def test_checkpoints_every_n_records_and_at_close(tmp_path: Path) -> None:
    db = tmp_path / "a.sqlite3"
    log = AuditLog(db, signer=signer_in(tmp_path), batch_ms=0.0, checkpoint_records=100)
    await log.start()
    for i in range(250):
        log.append(sample_entry(i))
        if i % 50 == 0:
            await log.flush()
    await log.close()
    counts = [cp.count for cp in AuditReader(db).checkpoints()]
    assert counts[-1] == 250 and len(counts) == 3
    assert all(b - a >= 100 for a, b in itertools.pairwise(counts[:-1]))


async def test_checkpoint_after_an_interval_without_new_records(tmp_path: Path) -> None:
    db = tmp_path / "a.sqlite3"
    log = AuditLog(db, signer=signer_in(tmp_path), checkpoint_records=0, checkpoint_interval=0.05)
    await log.start()
    log.append(sample_entry(1))
    await log.flush()
    reader = AuditReader(db)
    for _ in range(200):  # the writer's own timer, not ours: poll its effect
        if reader.latest_checkpoint() is not None:
            break
        await asyncio.sleep(0.01)
    cp = reader.latest_checkpoint()
    assert cp is not None and cp.count == 1
    await log.close()
    assert len(reader.checkpoints()) == 1  # nothing new since: no second checkpoint at close


async def test_full_queue_uses_the_backlog_then_records_the_loss(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A stalled disk (another connection holds the write lock): the first entries wait in
    the queue and the backlog, the rest are dropped loudly, and once the disk is back the
    chain itself says how many were lost."""
    db = tmp_path / "a.sqlite3"
    log = AuditLog(db, batch_ms=0.0, queue_max=5)
    await log.start()
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # the writer now waits on busy_timeout
    for i in range(40):
        log.append(sample_entry(i))
    await asyncio.sleep(0)
    assert log.counters.overflowed >= 1 and log.counters.dropped >= 1
    assert "attestation record LOST" in caplog.text
    blocker.execute("ROLLBACK")
    blocker.close()
    await log.flush()
    await log.close()
    reader = AuditReader(db)
    written = reader.count()
    assert written == 40 - log.counters.dropped + 1
    loss = reader.search(SearchFilters(kind="loss")).records
    assert len(loss) == 1 and loss[0].as_dict()["details"]["lost"] == log.counters.dropped
    kept = [r.row["call_id"] for r in reader.iter_export() if r.row["kind"] == "decision"]
    assert kept == sorted(kept, key=lambda c: int(c.split("-")[1].split("@")[0]))  # order kept
    assert reader.verify().ok


async def test_append_after_close_is_counted_not_silent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = AuditLog(tmp_path / "a.sqlite3")
    await log.start()
    await log.close()
    log.append(sample_entry(1))
    assert log.counters.dropped == 1 and "LOST" in caplog.text
    with pytest.raises(AuditLogError):
        await log.flush()


async def test_start_fails_clearly_on_a_file_that_is_not_a_log(tmp_path: Path) -> None:
    other = tmp_path / "reputation.sqlite3"
    sqlite3.connect(other).execute("CREATE TABLE users (id)").connection.commit()
    log = AuditLog(other)
    with pytest.raises(AuditLogError, match="not an attestation log"):
        await log.start()


async def test_open_audit_log_generates_the_key_once_and_never_logs_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    log = open_audit_log(AttestationConfig(checkpoint_records=0), tmp_path)
    key = tmp_path / "attestation-checkpoint.key"
    assert log.path == tmp_path / "attestation.sqlite3"
    assert key.stat().st_mode & 0o777 == 0o600 and Path(f"{key}.pub").exists()
    assert "generated a new attestation checkpoint key" in caplog.text
    pem_body = key.read_text().splitlines()[1]
    assert pem_body not in caplog.text
    await log.start()
    log.append(sample_entry(0))
    await log.close()
    caplog.clear()
    open_audit_log(AttestationConfig(), tmp_path)
    assert "generated" not in caplog.text


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from attestation.audit import AuditLog, load_signing_key
    sys.path.insert(0, sys.argv[2])
    from tests.attestation.test_audit_record import sample_entry

    async def main() -> None:
        signer, _ = load_signing_key(Path(sys.argv[1]).parent / "k.key")
        log = AuditLog(Path(sys.argv[1]), signer=signer, batch_ms=5, checkpoint_records=500)
        await log.start()
        i = int(sys.argv[3])
        while True:
            for _ in range(50):
                log.append(sample_entry(i))
                i += 1
            print(await log.flush(), flush=True)
            await asyncio.sleep(0)

    asyncio.run(main())
    """
)


def _kill_writer_mid_stream(db: Path, start: int, at_least: int) -> int:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), str(ROOT), str(start)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    committed = 0
    try:
        for line in proc.stdout:
            committed = int(line)
            if committed >= at_least:
                break
        else:
            pytest.fail(f"writer exited early: {proc.stderr.read() if proc.stderr else ''}")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    return committed


async def test_sigkill_mid_stream_keeps_the_chain_and_every_flushed_record(
    tmp_path: Path,
) -> None:
    db = tmp_path / "a.sqlite3"
    flushed = _kill_writer_mid_stream(db, 0, 3000)
    result = AuditReader(db).verify()
    assert result.ok, result.describe()
    assert result.count >= flushed  # a flush returned only after its commit
    # a second writer resumes from the last committed hash; killed again, still intact
    flushed2 = _kill_writer_mid_stream(db, result.count, result.count + 1000)
    again = AuditReader(db).verify()
    assert again.ok and again.count >= flushed2 > result.count
    log = await build_log(db, 10, signer=signer_in(tmp_path), start=again.count)
    final = AuditReader(db).verify()
    assert final.ok and final.count == again.count + 10 == log.head[0]
    seqs = json.dumps([r.seq for r in AuditReader(db).search(limit=3).records])
    assert seqs == json.dumps([final.count, final.count - 1, final.count - 2])


async def test_a_failed_commit_is_retried_then_recorded_as_a_loss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "a.sqlite3"
    log = AuditLog(db, batch_ms=0.0)
    await log.start()
    log.append(sample_entry(0))
    await log.flush()
    real = AuditLog._insert
    failures = iter([True, False, True, True])  # batch 2: fails once; batch 3: fails twice

    def flaky(self: AuditLog, conn: sqlite3.Connection, rows: list[tuple[object, ...]]) -> None:
        if next(failures, False):
            raise sqlite3.OperationalError("disk I/O error")
        real(self, conn, rows)

    monkeypatch.setattr(AuditLog, "_insert", flaky)
    log.append(sample_entry(1))
    assert await log.flush() == 2  # retried once, written
    log.append(sample_entry(2))
    assert await log.flush() == 2  # failed twice: lost
    assert log.counters.write_failed == 1 and "write failed twice" in caplog.text
    log.append(sample_entry(3))
    assert await log.flush() == 4  # the loss record, then entry 3
    await log.close()
    reader = AuditReader(db)
    loss = reader.get(3)
    assert loss is not None and loss.row["kind"] == "loss"
    assert loss.as_dict()["details"]["lost"] == 1
    assert reader.get(4).row["call_id"] == "call-3@example.test"  # type: ignore[union-attr]
    assert reader.verify().ok


async def test_two_writers_on_one_file_keep_one_chain(tmp_path: Path) -> None:
    """Worker processes may each open the log: every commit extends the file's own head
    (read inside the write transaction), so their records interleave in one chain."""
    db = tmp_path / "a.sqlite3"
    signer = signer_in(tmp_path)
    logs = [AuditLog(db, signer=signer, batch_ms=1.0, checkpoint_records=150) for _ in range(2)]
    for log in logs:
        await log.start()
    for i in range(600):
        logs[i % 2].append(sample_entry(i))
        if i % 100 == 99:
            await asyncio.gather(*(log.flush() for log in logs))
    await asyncio.gather(*(log.close() for log in logs))
    result = AuditReader(db).verify()
    assert result.ok, result.describe()
    assert result.count == 600 and result.checkpoints_checked >= 2
