"""`spitwall audit verify|export|checkpoint|stats`: output and exit codes (0 / 1 / 2)."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from spitwall.cli import main

from .test_audit_record import T0, build_log, signer_in

N = 30


@pytest.fixture
async def db(tmp_path: Path) -> Path:
    path = tmp_path / "attestation.sqlite3"
    await build_log(path, N, signer=signer_in(tmp_path))
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(["audit", *argv])
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_verify_intact_then_tampered(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "verify", "--db", str(db))
    assert code == 0 and out.startswith("attestation log intact: 30 records")
    assert "--key" in err  # tells the auditor what the signature check did not prove
    key = f"{db.parent}/checkpoint.key.pub"
    code, out, err = run(capsys, "verify", "--db", str(db), "--key", key, "--json")
    assert code == 0 and json.loads(out)["ok"] is True and err == ""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("DROP TRIGGER records_no_update")
    conn.execute("UPDATE records SET score = 1.0 WHERE seq = 12")
    conn.close()
    code, out, _ = run(capsys, "verify", "--db", str(db))
    assert code == 1 and out.startswith("attestation log NOT intact: record 12: hash mismatch")
    code, out, _ = run(capsys, "verify", "--db", str(db), "--json")
    doc = json.loads(out)
    assert (code, doc["ok"], doc["first_bad_seq"], doc["problem"]) == (
        1,
        False,
        12,
        "hash mismatch",
    )


def test_verify_against_a_published_checkpoint(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, text, _ = run(capsys, "checkpoint", "--db", str(db))
    assert code == 0 and text.startswith("spitwall attestation log checkpoint v1\n")
    published = tmp_path / "published.txt"
    published.write_text(text)
    code, out, _ = run(capsys, "checkpoint", "--db", str(db), "--json")
    assert json.loads(out)["count"] == N and json.loads(out)["text"] == text
    key = f"{db.parent}/checkpoint.key.pub"
    args = ("verify", "--db", str(db), "--key", key, "--checkpoint", str(published))
    assert run(capsys, *args)[0] == 0
    conn = sqlite3.connect(db, isolation_level=None)
    for t in ("records_no_delete", "checkpoints_no_delete"):
        conn.execute(f"DROP TRIGGER {t}")
    conn.execute("DELETE FROM records WHERE seq > 25")
    conn.execute("DELETE FROM checkpoints")
    conn.close()
    assert run(capsys, "verify", "--db", str(db))[0] == 0  # the file alone cannot tell
    code, out, _ = run(capsys, *args)
    assert code == 1 and "record 26: checkpoint count beyond the end" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("verify", "--db", "{tmp}/missing.sqlite3"), "no such file"),
        (("verify", "--db", "{tmp}/junk"), "not a readable SQLite file"),
        (("verify", "--db", "{db}", "--key", "{tmp}/missing.pub"), "--key"),
        (("verify", "--db", "{db}", "--key", "{tmp}/junk"), "not an Ed25519 public key"),
        (("verify", "--db", "{db}", "--checkpoint", "{tmp}/junk"), "not a spitwall checkpoint"),
        (("export", "--db", "{db}", "--format", "jsonl", "--since", "soon"), "--since"),
        (("export", "--db", "{db}", "--format", "xml"), "invalid choice"),
        (("export", "--db", "{db}"), "--format"),
        (("verify", "--db", "{db}", "--config", "{tmp}/nope.toml"), "config file not found"),
        (("stats", "--db", "{tmp}/other.sqlite3"), "not an attestation log"),
        (("frobnicate",), "invalid choice"),
    ],
)
def test_usage_errors_exit_2_with_a_message(
    db: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
    message: str,
) -> None:
    (tmp_path / "junk").write_bytes(b"\x00garbage\n" * 64)
    sqlite3.connect(tmp_path / "other.sqlite3").execute("CREATE TABLE t (x)").connection.commit()
    argv = tuple(a.format(tmp=tmp_path, db=db) for a in argv)
    try:
        code = main(["audit", *argv])
    except SystemExit as exc:
        code = int(exc.code or 0)
    _, err = capsys.readouterr()
    assert code == 2 and message in err, err


def test_export_jsonl_and_csv_with_since_until(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    window = ("--since", "2025-11-28T16:05:00Z", "--until", str(int(T0 + 600)))
    code, out, _ = run(capsys, "export", "--db", str(db), "--format", "jsonl", *window)
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [d["seq"] for d in lines] == [6, 7, 8, 9, 10]
    assert lines[0]["passport_claims"]["iat"] == int(T0) + 5 and lines[0]["time"] == T0 + 300
    code, out, _ = run(capsys, "export", "--db", str(db), "--format", "csv", *window)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and [r["seq"] for r in rows] == ["6", "7", "8", "9", "10"]
    assert json.loads(rows[0]["reasons"])[0][0] == "shaken.attest" and rows[0]["code"] == ""
    code, out, _ = run(capsys, "export", "--db", str(db), "--format", "jsonl")
    assert len(out.splitlines()) == N


def test_stats_prints_json(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "stats", "--db", str(db), "--since", str(T0))
    doc = json.loads(out)
    assert code == 0 and doc["total"] == N and doc["by_day"] == [["2025-11-28", N]]


def test_the_installed_command_finds_the_log_through_the_config(db: Path, tmp_path: Path) -> None:
    """The real entry point, a config naming data_dir, and a byte edited in the file."""
    config = tmp_path / "spitwall.toml"
    config.write_text(f'data_dir = "{tmp_path}"\n')
    cmd = [sys.executable, "-m", "spitwall", "audit", "verify", "--config", str(config)]
    ok = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    data = bytearray(db.read_bytes())
    at = data.find(b"payload-000019")
    data[at + 9] ^= 0x02
    db.write_bytes(bytes(data))
    bad = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "record 20: hash mismatch" in bad.stdout
