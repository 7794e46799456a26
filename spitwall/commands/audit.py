"""`spitwall audit verify|export|checkpoint|stats`: the attestation log, for auditors.

``verify`` walks the hash chain and every signed checkpoint and prints either
``attestation log intact: N records, head H, K checkpoints verified`` or names the first
bad record and what is wrong with it. ``export`` streams records to stdout in ``seq``
order as JSON lines (one object per record, JSON-valued columns decoded) or CSV (a header
row, then the stored values; JSON-valued columns as their canonical text, NULL as an
empty field); ``--since``/``--until`` accept UNIX seconds or ISO 8601 (naive = UTC;
``until`` exclusive).
``checkpoint`` prints the newest signed checkpoint for publication (copies kept outside
the file are what expose a tail deleted together with its checkpoints: pass them back with
``verify --checkpoint FILE``). ``stats`` prints the traffic figures as JSON.

The file defaults to ``[attestation] audit_db`` of ``--config`` (else
``<data_dir>/attestation.sqlite3``). Exit codes: 0 intact/done, 1 not intact, 2 usage
(unreadable options, no such file, not an attestation log).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

from attestation.audit import (
    AuditReader,
    Checkpoint,
    KeyFileError,
    NotAnAuditLog,
    QueryError,
    audit_db_path,
    load_public_key,
    parse_time,
)
from attestation.audit.record import COLUMNS

from ..config import load_config


def register(sub: Any) -> None:
    p = sub.add_parser(
        "audit",
        help="verify, export and inspect the attestation log",
        description=__doc__.splitlines()[0],
    )
    asub = p.add_subparsers(dest="audit_command", metavar="ACTION", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--db", type=Path, metavar="FILE", help="the attestation log file")
        q.add_argument("--config", metavar="FILE", help="TOML config naming the file")
        q.add_argument("--data-dir", metavar="DIR", help="override data_dir of the config")

    v = asub.add_parser("verify", help="check the hash chain and signed checkpoints")
    common(v)
    v.add_argument(
        "--key",
        action="append",
        default=[],
        type=Path,
        metavar="PUBKEY",
        help="the operator's published checkpoint public key (PEM or base64; "
        "repeatable); without it signatures are checked against the key "
        "stored in the file",
    )
    v.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="a published checkpoint (from `audit checkpoint`) to check the log "
        "against (repeatable)",
    )
    v.add_argument("--json", action="store_true", help="print the result as JSON")
    v.set_defaults(func=run_verify)

    e = asub.add_parser("export", help="stream records as JSON lines or CSV")
    common(e)
    e.add_argument("--format", required=True, choices=("jsonl", "csv"))
    e.add_argument("--since", metavar="T", help="UNIX seconds or ISO 8601 (inclusive)")
    e.add_argument("--until", metavar="T", help="UNIX seconds or ISO 8601 (exclusive)")
    e.set_defaults(func=run_export)

    c = asub.add_parser("checkpoint", help="print the newest signed checkpoint for publication")
    common(c)
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=run_checkpoint)

    s = asub.add_parser("stats", help="traffic figures as JSON")
    common(s)
    s.add_argument("--since", metavar="T")
    s.add_argument("--until", metavar="T")
    s.add_argument(
        "--spam-score",
        type=float,
        default=70.0,
        help="score from which a call counts as judged spam (default 70)",
    )
    s.set_defaults(func=run_stats)


class _Usage(Exception):
    """A usage problem: message printed, exit 2."""


def _db(args: argparse.Namespace) -> Path:
    """--db, else the config's audit_db (a --config given is read, and checked, either way)."""
    overrides = {"data_dir": args.data_dir} if args.data_dir else None
    cfg = load_config(args.config, overrides) if args.config or args.db is None else None
    if args.db is not None:
        return Path(args.db)
    assert cfg is not None
    return audit_db_path(cfg.attestation, cfg.data_dir)


def _time(value: str | None, name: str) -> float | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except QueryError as exc:
        raise _Usage(f"--{name}: {str(exc).split(': ', 1)[1]}") from None


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _Usage(f"{what} {path}: {exc.strerror}") from None


def _guard(func: Any) -> Any:
    def wrapped(args: argparse.Namespace) -> int:
        try:
            return int(func(args))
        except (_Usage, NotAnAuditLog, KeyFileError) as exc:
            print(f"spitwall audit: {exc}", file=sys.stderr)
            return 2
        except BrokenPipeError:  # `… | head`: the reader went away, not an error of ours
            sys.stderr.close()
            return 0

    return wrapped


@_guard
def run_verify(args: argparse.Namespace) -> int:
    db = _db(args)
    keys = [load_public_key(_read(k, "--key"), str(k)) for k in args.key]
    published = []
    for f in args.checkpoint:
        try:
            published.append(Checkpoint.parse(_read(f, "--checkpoint").decode("utf-8", "replace")))
        except ValueError as exc:
            raise _Usage(f"--checkpoint {f}: {exc}") from None
    result = AuditReader(db).verify(keys=keys, published=published)
    if args.json:
        print(json.dumps(result.as_dict(), sort_keys=True))
    else:
        print(result.describe())
        if result.ok and not keys and result.checkpoints_checked:
            print(
                "note: checkpoint signatures were checked against the public key stored in "
                "the file; pass --key with the operator's published key to check authorship",
                file=sys.stderr,
            )
    return 0 if result.ok else 1


@_guard
def run_export(args: argparse.Namespace) -> int:
    since, until = _time(args.since, "since"), _time(args.until, "until")
    reader = AuditReader(_db(args))
    reader.meta()  # fail early (exit 2) on a file that is not a log
    out = sys.stdout
    if args.format == "jsonl":
        for rec in reader.iter_export(since, until):
            out.write(json.dumps(rec.as_dict(), ensure_ascii=False, sort_keys=True) + "\n")
    else:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for rec in reader.iter_export(since, until):
            writer.writerow(["" if rec.row[c] is None else rec.row[c] for c in COLUMNS])
    out.flush()
    return 0


@_guard
def run_checkpoint(args: argparse.Namespace) -> int:
    cp = AuditReader(_db(args)).latest_checkpoint()
    if cp is None:
        print("spitwall audit: the log has no checkpoint yet", file=sys.stderr)
        return 1
    if args.json:
        doc = {
            k: getattr(cp, k)
            for k in (
                "n",
                "log_id",
                "count",
                "head_hash",
                "time_utc",
                "algorithm",
                "key_id",
                "public_key",
                "signature",
            )
        }
        doc["text"] = cp.to_text()
        print(json.dumps(doc, sort_keys=True))
    else:
        sys.stdout.write(cp.to_text())
    return 0


@_guard
def run_stats(args: argparse.Namespace) -> int:
    since, until = _time(args.since, "since"), _time(args.until, "until")
    stats = AuditReader(_db(args)).stats(since, until, spam_score=args.spam_score)
    print(json.dumps(stats.as_dict(), sort_keys=True))
    return 0
