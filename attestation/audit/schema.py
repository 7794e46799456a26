"""The attestation log's SQLite file: tables, append-only triggers, connections.

Why plain SQL rather than an ORM or migration table: the file is evidence. Its whole
schema is this page, version 1 (``meta.format_version``); a later version adds tables or
columns under a new version number and verifiers read the number first. Everything is
readable with ``sqlite-utils`` or Datasette (hashes as hex text, times as UNIX seconds and
as ISO 8601 UTC text).

Append-only is enforced three ways in the schema: UPDATE and DELETE on every table are
refused by triggers (``RAISE(ABORT, 'attestation log is append-only')``), and an INSERT
must extend the chain (``seq`` = last + 1, ``prev_hash`` = last ``hash``), which also shuts
the ``INSERT OR REPLACE`` door (REPLACE deletes without firing delete triggers). None of
this stops someone who edits the file's bytes or drops the triggers; the hash chain and
the signed checkpoints are what detect that.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .record import COLUMNS, FORMAT_VERSION, GENESIS_HASH

APPEND_ONLY = "attestation log is append-only"

_RECORD_TYPES = {
    "seq": "INTEGER PRIMARY KEY",
    "time": "REAL NOT NULL",
    "time_utc": "TEXT NOT NULL",
    "kind": "TEXT NOT NULL",
    "call_id": "TEXT NOT NULL",
    "source": "TEXT NOT NULL",
    "identity_headers": "TEXT NOT NULL",
    "sip_code": "INTEGER",
    "score": "REAL",
    "reasons": "TEXT NOT NULL",
    "code": "INTEGER",
    "elapsed_ms": "REAL",
    "timing": "TEXT NOT NULL",
    "details": "TEXT NOT NULL",
    "prev_hash": "TEXT NOT NULL",
    "hash": "TEXT NOT NULL",
}

INDEXED = (
    "time",
    "call_id",
    "orig_tn",
    "dest_tn",
    "spc",
    "origid",
    "verstat",
    "action",
    "attest",
    "reason",
)
"""Columns with an index of their own (search filters; rowid order comes free)."""

_LAST_HASH = (
    f"(SELECT coalesce((SELECT hash FROM records ORDER BY seq DESC LIMIT 1), '{GENESIS_HASH}'))"
)

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    {", ".join(f"{c} {_RECORD_TYPES.get(c, 'TEXT')}" for c in COLUMNS)}
);
CREATE TABLE IF NOT EXISTS checkpoints (
    n INTEGER PRIMARY KEY,
    log_id TEXT NOT NULL,
    count INTEGER NOT NULL,
    head_hash TEXT NOT NULL,
    time_utc TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    key_id TEXT NOT NULL,
    public_key TEXT NOT NULL,
    signature TEXT NOT NULL
);
{"".join(f"CREATE INDEX IF NOT EXISTS records_{c} ON records ({c});" for c in INDEXED)}
CREATE TRIGGER IF NOT EXISTS records_append_only BEFORE INSERT ON records
WHEN NEW.seq IS NOT (SELECT coalesce(max(seq), 0) + 1 FROM records)
  OR NEW.prev_hash IS NOT {_LAST_HASH}
BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}: a record must extend the chain'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_append_only BEFORE INSERT ON checkpoints
WHEN NEW.n IS NOT (SELECT coalesce(max(n), 0) + 1 FROM checkpoints)
BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}: checkpoints are numbered in order'); END;
CREATE TRIGGER IF NOT EXISTS meta_append_only BEFORE INSERT ON meta
WHEN EXISTS (SELECT 1 FROM meta WHERE key = NEW.key)
BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END;
""" + "".join(
    f"""
CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table}
BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END;"""
    for table in ("records", "checkpoints", "meta")
    for op in ("UPDATE", "DELETE")
)


class NotAnAuditLog(ValueError):
    """The file is missing, or not an attestation log (wrong tables or format version)."""


def open_writer(path: Path, log_id: str) -> sqlite3.Connection:
    """The single writer's connection: WAL, synchronous=NORMAL, schema created if absent.

    ``log_id`` is recorded on first creation only; the file's own id is read back via
    :func:`read_meta`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error:
        conn.close()
        raise
    try:
        existing = {
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if existing and "records" not in existing:
            raise NotAnAuditLog(
                f"{path}: has other tables and no 'records': not an attestation log"
            )
        for statement in _statements(SCHEMA):
            conn.execute(statement)
        conn.execute(
            "INSERT INTO meta (key, value) SELECT 'format_version', ? "
            "WHERE NOT EXISTS (SELECT 1 FROM meta WHERE key = 'format_version')",
            (str(FORMAT_VERSION),),
        )
        conn.execute(
            "INSERT INTO meta (key, value) SELECT 'log_id', ? "
            "WHERE NOT EXISTS (SELECT 1 FROM meta WHERE key = 'log_id')",
            (log_id,),
        )
        conn.execute("COMMIT")
        read_meta(conn, path)
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()
        raise
    return conn


def _statements(script: str) -> list[str]:
    """Split the schema into statements (triggers hold ``;`` inside BEGIN … END)."""
    out: list[str] = []
    buf = ""
    for part in script.split(";"):
        buf += part + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \n;"):
                out.append(buf.strip())
            buf = ""
    return out


def open_reader(path: Path) -> sqlite3.Connection:
    """A read-only connection (``mode=ro``): readers can never write, whatever they run."""
    if not path.is_file():
        raise NotAnAuditLog(f"{path}: no such file")
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


def read_meta(conn: sqlite3.Connection, path: Path | str) -> dict[str, str]:
    """The ``meta`` table, after checking this is an attestation log we can read."""
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise NotAnAuditLog(f"{path}: not a readable SQLite file ({exc})") from None
    missing = {"meta", "records", "checkpoints"} - tables
    if missing:
        raise NotAnAuditLog(
            f"{path}: not an attestation log (missing {', '.join(sorted(missing))})"
        )
    meta = {str(k): str(v) for k, v in conn.execute("SELECT key, value FROM meta")}
    version = meta.get("format_version")
    if version != str(FORMAT_VERSION):
        raise NotAnAuditLog(f"{path}: attestation log format {version!r} is not supported")
    if "log_id" not in meta:
        raise NotAnAuditLog(f"{path}: attestation log has no log_id")
    return meta
