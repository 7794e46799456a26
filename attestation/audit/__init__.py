"""The tamper-evident attestation log: every verification and screening decision, hash-chained
in its own append-only SQLite file, with signed checkpoints, for auditors.

Modules: ``record`` (the entry, its canonical encoding and hash), ``schema`` (tables and
append-only triggers), ``store`` (the single writer thread), ``checkpoint`` (signed
checkpoints and keys), ``chain`` (verification), ``query`` (search, export, statistics).

Wiring (the composition root)::

    log = open_audit_log(config.attestation, config.data_dir)
    await log.start()
    log.append(AuditEntry.from_verdict(verdict, time=now, call_id=..., action="reject", ...))
    await log.close()            # final checkpoint

    reader = AuditReader(audit_db_path(config.attestation, config.data_dir))
    page = await asyncio.to_thread(reader.search, SearchFilters(verstat=...), limit=50)
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..config import AttestationConfig
from .chain import Problem, VerifyResult, verify_chain
from .checkpoint import (
    Checkpoint,
    CheckpointSigner,
    KeyFileError,
    load_public_key,
    load_signing_key,
)
from .query import (
    AuditReader,
    AuditRecord,
    AuditStats,
    QueryError,
    SearchFilters,
    SearchPage,
    parse_time,
)
from .record import GENESIS_HASH, AuditEntry, RecordKind, canonical_bytes, record_hash
from .schema import NotAnAuditLog
from .store import AuditCounters, AuditLog, AuditLogError

__all__ = [
    "GENESIS_HASH",
    "AuditCounters",
    "AuditEntry",
    "AuditLog",
    "AuditLogError",
    "AuditReader",
    "AuditRecord",
    "AuditStats",
    "Checkpoint",
    "CheckpointSigner",
    "KeyFileError",
    "NotAnAuditLog",
    "Problem",
    "QueryError",
    "RecordKind",
    "SearchFilters",
    "SearchPage",
    "VerifyResult",
    "audit_db_path",
    "canonical_bytes",
    "checkpoint_key_path",
    "load_public_key",
    "load_signing_key",
    "open_audit_log",
    "parse_time",
    "record_hash",
    "verify_chain",
]


def audit_db_path(config: AttestationConfig, data_dir: Path) -> Path:
    """``config.audit_db``, else ``<data_dir>/attestation.sqlite3``."""
    return (
        config.audit_db if config.audit_db is not None else Path(data_dir) / "attestation.sqlite3"
    )


def checkpoint_key_path(config: AttestationConfig, data_dir: Path) -> Path:
    """``config.checkpoint_key``, else ``<data_dir>/attestation-checkpoint.key``."""
    if config.checkpoint_key is not None:
        return config.checkpoint_key
    return Path(data_dir) / "attestation-checkpoint.key"


def open_audit_log(
    config: AttestationConfig, data_dir: Path, *, logger: logging.Logger | None = None
) -> AuditLog:
    """An (unstarted) AuditLog from config, loading or generating the checkpoint key.

    Raises KeyFileError for an unusable key file. A generated key is announced in the log
    with its path and key id (never the key itself).
    """
    log = logger or logging.getLogger("spitwall.audit")
    key_path = checkpoint_key_path(config, data_dir)
    signer, created = load_signing_key(key_path, create=True)
    if created:
        log.warning(
            "generated a new attestation checkpoint key at %s (key id %s); publish %s.pub "
            "to auditors and back the key up",
            key_path,
            signer.key_id,
            key_path,
        )
    return AuditLog(
        audit_db_path(config, data_dir),
        signer=signer,
        batch_ms=config.audit_batch_ms,
        queue_max=config.audit_queue_max,
        checkpoint_records=config.checkpoint_records,
        checkpoint_interval=config.checkpoint_interval,
        logger=log,
    )
