"""Tamper evidence: every way of changing the file is refused or named by verification.

Each test writes a real log through the writer into a tmp dir, changes the file the way an
attacker would (through SQLite, past dropped triggers, or by editing raw bytes), and checks
that verification names the first bad record and what is wrong with it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from attestation.audit import (
    AuditReader,
    Checkpoint,
    CheckpointSigner,
    Problem,
    load_public_key,
)
from attestation.audit.record import COLUMNS, entry_columns, seal

from .test_audit_record import build_log, sample_entry, signer_in

N = 120


@pytest.fixture
async def logged(tmp_path: Path) -> tuple[Path, CheckpointSigner]:
    """A 120-record log with checkpoints at 50 and 100 (and 120 at close)."""
    signer = signer_in(tmp_path)
    db = tmp_path / "attestation.sqlite3"
    await build_log(db, 50, signer=signer, checkpoint_records=0)  # close → checkpoint at 50
    await build_log(db, 50, signer=signer, start=50)  # → 100
    await build_log(db, 20, signer=signer, start=100)  # → 120
    return db, signer


def raw(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(db, isolation_level=None)


def drop_triggers(conn: sqlite3.Connection) -> None:
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'")]
    for name in names:
        conn.execute(f"DROP TRIGGER {name}")


def row_of(conn: sqlite3.Connection, seq: int) -> dict[str, object]:
    got = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM records WHERE seq = ?", (seq,))
    return dict(zip(COLUMNS, got.fetchone(), strict=True))


def put_row(conn: sqlite3.Connection, row: dict[str, object]) -> None:
    conn.execute(
        f"INSERT INTO records ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
        [row[c] for c in COLUMNS],
    )


def test_intact_log_verifies(logged: tuple[Path, CheckpointSigner]) -> None:
    db, _ = logged
    result = AuditReader(db).verify()
    assert result.ok, result.describe()
    assert (result.count, result.checkpoints_checked, result.problem) == (N, 3, None)
    assert result.describe().startswith("attestation log intact: 120 records")
    public = load_public_key(Path(f"{db.parent}/checkpoint.key.pub").read_bytes())
    assert AuditReader(db).verify(keys=[public]).ok


def test_one_edited_byte_in_the_file_names_the_record(
    logged: tuple[Path, CheckpointSigner],
) -> None:
    db, _ = logged
    data = bytearray(db.read_bytes())
    assert not Path(f"{db}-wal").exists()  # the writer checkpointed the WAL on close
    at = data.find(b"payload-000041")
    assert at > 0 and data.count(b"payload-000041") == 1
    data[at + len("payload-")] ^= 0x01  # '0' -> '1': still valid UTF-8
    db.write_bytes(bytes(data))
    result = AuditReader(db).verify()
    assert not result.ok
    assert (result.first_bad_seq, result.problem) == (42, Problem.HASH_MISMATCH)
    assert "record 42: hash mismatch" in result.describe()


def test_an_edited_byte_making_invalid_utf8_still_names_the_record(
    logged: tuple[Path, CheckpointSigner],
) -> None:
    db, _ = logged
    data = bytearray(db.read_bytes())
    at = data.find(b"payload-000007")
    data[at] = 0xFF
    db.write_bytes(bytes(data))
    result = AuditReader(db).verify()
    assert (result.ok, result.first_bad_seq, result.problem) == (False, 8, Problem.HASH_MISMATCH)
    assert "UTF-8" in result.detail


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE records SET action = 'forward' WHERE seq = 3",
        "DELETE FROM records WHERE seq = 3",
        "DELETE FROM records",
        "UPDATE checkpoints SET count = 1",
        "DELETE FROM checkpoints",
        "UPDATE meta SET value = 'x' WHERE key = 'log_id'",
        "DELETE FROM meta",
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('log_id', 'x')",
        "INSERT OR REPLACE INTO records SELECT * FROM records WHERE seq = 5",
        "INSERT INTO records SELECT 121, time, time_utc, kind, call_id, source, orig_tn, dest_tn,"
        " identity_headers, passport_header, passport_claims, x5u, cert_fingerprint, spc, issuer,"
        " attest, origid, verstat, reason, sip_code, score, reasons, action, code, elapsed_ms,"
        " timing, details, prev_hash, hash FROM records WHERE seq = 5",
        "INSERT OR REPLACE INTO checkpoints SELECT * FROM checkpoints WHERE n = 1",
    ],
)
def test_the_schema_refuses_changes(logged: tuple[Path, CheckpointSigner], sql: str) -> None:
    db, _ = logged
    conn = raw(db)
    with pytest.raises(sqlite3.IntegrityError, match="attestation log is append-only"):
        conn.execute(sql)
    conn.close()
    assert AuditReader(db).verify().ok


def test_update_behind_dropped_triggers_is_named(logged: tuple[Path, CheckpointSigner]) -> None:
    db, _ = logged
    conn = raw(db)
    drop_triggers(conn)
    conn.execute("UPDATE records SET action = 'forward', code = NULL WHERE seq = 30")
    conn.close()
    result = AuditReader(db).verify()
    assert (result.first_bad_seq, result.problem) == (30, Problem.HASH_MISMATCH)


def test_deleted_middle_record_is_named(logged: tuple[Path, CheckpointSigner]) -> None:
    db, _ = logged
    conn = raw(db)
    drop_triggers(conn)
    conn.execute("DELETE FROM records WHERE seq = 57")
    conn.close()
    result = AuditReader(db).verify()
    assert (result.first_bad_seq, result.problem) == (57, Problem.SEQ_GAP)
    assert "57 missing" in result.detail


def test_deleted_and_renumbered_record_is_named(logged: tuple[Path, CheckpointSigner]) -> None:
    db, _ = logged
    conn = raw(db)
    drop_triggers(conn)
    conn.execute("DELETE FROM records WHERE seq = 57")
    conn.execute("UPDATE records SET seq = -(seq - 1) WHERE seq > 57")
    conn.execute("UPDATE records SET seq = -seq WHERE seq < 0")
    conn.close()
    result = AuditReader(db).verify()
    assert (result.first_bad_seq, result.problem) == (57, Problem.MOVED)
    assert "contents of record 58" in result.detail


def test_deleted_tail_is_detected_through_the_checkpoint(
    logged: tuple[Path, CheckpointSigner],
) -> None:
    db, _ = logged
    conn = raw(db)
    drop_triggers(conn)
    conn.execute("DELETE FROM records WHERE seq > 90")
    conn.close()
    result = AuditReader(db).verify()
    assert (result.first_bad_seq, result.problem) == (91, Problem.CHECKPOINT_BEYOND_END)
    assert "records 91..100 were deleted" in result.detail and result.count == 90


async def test_tail_past_the_last_checkpoint_needs_a_published_checkpoint(
    logged: tuple[Path, CheckpointSigner],
) -> None:
    """The documented limit: cutting the tail *and* its stored checkpoints goes unseen in
    the file alone; a copy of a checkpoint published earlier exposes it."""
    db, _ = logged
    published = Checkpoint.parse(AuditReader(db).latest_checkpoint().to_text())  # type: ignore[union-attr]
    assert published.count == N
    conn = raw(db)
    drop_triggers(conn)
    conn.execute("DELETE FROM records WHERE seq > 100")
    conn.execute("DELETE FROM checkpoints WHERE count > 100")
    conn.close()
    assert AuditReader(db).verify().ok  # undetectable from the file alone
    public = load_public_key(Path(f"{db.parent}/checkpoint.key.pub").read_bytes())
    result = AuditReader(db).verify(keys=[public], published=[published])
    assert (result.first_bad_seq, result.problem) == (101, Problem.CHECKPOINT_BEYOND_END)
    assert "published checkpoint" in result.detail


def test_reordered_rows_are_named(logged: tuple[Path, CheckpointSigner]) -> None:
    db, _ = logged
    conn = raw(db)
    drop_triggers(conn)
    a, b = row_of(conn, 20), row_of(conn, 30)
    conn.execute("DELETE FROM records WHERE seq IN (20, 30)")
    put_row(conn, {**b, "seq": 20})
    put_row(conn, {**a, "seq": 30})
    conn.close()
    result = AuditReader(db).verify()
    assert (result.first_bad_seq, result.problem) == (20, Problem.MOVED)
    assert "contents of record 30" in result.detail


def test_forged_row_inserted_in_the_middle_is_named(
    logged: tuple[Path, CheckpointSigner],
) -> None:
    """The forger knows the encoding: the row is correctly chained to record 39, the rows
    after it are shifted up. Verification names the inserted record."""
    db, _ = logged
    conn = raw(db)
    drop_triggers(conn)
    conn.execute("UPDATE records SET seq = -(seq + 1) WHERE seq >= 40")
    conn.execute("UPDATE records SET seq = -seq WHERE seq < 0")
    forged = seal(entry_columns(sample_entry(9999)), 40, str(row_of(conn, 39)["hash"]))
    put_row(conn, forged)
    conn.close()
    result = AuditReader(db).verify()
    assert (result.first_bad_seq, result.problem) == (40, Problem.INSERTED)


def test_forged_row_with_a_wrong_hash_is_named(logged: tuple[Path, CheckpointSigner]) -> None:
    db, _ = logged
    conn = raw(db)
    drop_triggers(conn)
    last = row_of(conn, N)
    forged = {**seal(entry_columns(sample_entry(5000)), N + 1, str(last["hash"])), "hash": "0" * 64}
    put_row(conn, forged)
    conn.close()
    result = AuditReader(db).verify()
    assert (result.first_bad_seq, result.problem) == (N + 1, Problem.HASH_MISMATCH)


def test_rehashed_forgery_breaks_the_next_link(logged: tuple[Path, CheckpointSigner]) -> None:
    db, _ = logged
    conn = raw(db)
    drop_triggers(conn)
    old = row_of(conn, 110)
    forged = seal(entry_columns(sample_entry(7777)), 110, str(old["prev_hash"]))
    conn.execute("DELETE FROM records WHERE seq = 110")
    put_row(conn, forged)
    conn.close()
    result = AuditReader(db).verify()
    assert (result.first_bad_seq, result.problem) == (110, Problem.PREV_LINK_MISMATCH)


def test_rewritten_history_is_caught_by_the_checkpoint(
    logged: tuple[Path, CheckpointSigner],
) -> None:
    """Alter record 60 and recompute every later hash: the chain is self-consistent again,
    but checkpoint #2 signed a different hash for record 100."""
    db, _ = logged
    conn = raw(db)
    drop_triggers(conn)
    rows = [row_of(conn, s) for s in range(60, N + 1)]
    conn.execute("DELETE FROM records WHERE seq >= 60")
    prev = str(row_of(conn, 59)["hash"])
    for row in rows:
        columns = {k: v for k, v in row.items() if k not in ("seq", "prev_hash", "hash")}
        if row["seq"] == 60:
            columns["action"] = "forward"
        new = seal(columns, int(row["seq"]), prev)  # type: ignore[call-overload]
        put_row(conn, new)
        prev = new["hash"]
    conn.close()
    result = AuditReader(db).verify()
    assert (result.first_bad_seq, result.problem) == (100, Problem.CHECKPOINT_HEAD_MISMATCH)
    assert result.checkpoint == 2


def test_checkpoint_with_a_bad_signature_is_named(logged: tuple[Path, CheckpointSigner]) -> None:
    db, _ = logged
    conn = raw(db)
    drop_triggers(conn)
    conn.execute("UPDATE checkpoints SET count = 99 WHERE n = 2")
    conn.close()
    result = AuditReader(db).verify()
    assert (result.first_bad_seq, result.problem) == (99, Problem.CHECKPOINT_SIGNATURE_INVALID)
    assert result.checkpoint == 2 and "signature invalid" in result.detail


def test_checkpoint_forged_with_another_key_needs_the_published_key(
    logged: tuple[Path, CheckpointSigner],
) -> None:
    db, _ = logged
    reader = AuditReader(db)
    attacker = CheckpointSigner(Ed25519PrivateKey.generate())
    conn = raw(db)
    drop_triggers(conn)
    conn.execute("DELETE FROM records WHERE seq > 110")
    conn.execute("DELETE FROM checkpoints WHERE n = 3")
    cp = attacker.sign(reader.meta()["log_id"], 110, str(row_of(conn, 110)["hash"]), 1.8e9)
    conn.execute(
        "INSERT INTO checkpoints VALUES (3, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            cp.log_id,
            cp.count,
            cp.head_hash,
            cp.time_utc,
            cp.algorithm,
            cp.key_id,
            cp.public_key,
            cp.signature,
        ),
    )
    conn.close()
    assert reader.verify().ok  # self-consistent: the forger stored their own public key
    public = load_public_key(Path(f"{db.parent}/checkpoint.key.pub").read_bytes())
    result = reader.verify(keys=[public])
    assert (result.first_bad_seq, result.problem) == (110, Problem.CHECKPOINT_SIGNATURE_INVALID)
    assert attacker.key_id in result.detail


def test_a_file_that_is_not_a_log_is_refused(tmp_path: Path) -> None:
    from attestation.audit import NotAnAuditLog

    other = tmp_path / "reputation.sqlite3"
    sqlite3.connect(other).execute("CREATE TABLE users (id)").connection.commit()
    with pytest.raises(NotAnAuditLog, match="not an attestation log"):
        AuditReader(other).verify()
    with pytest.raises(NotAnAuditLog, match="no such file"):
        AuditReader(tmp_path / "missing.sqlite3").verify()
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(NotAnAuditLog, match="not a readable SQLite file"):
        AuditReader(junk).verify()
