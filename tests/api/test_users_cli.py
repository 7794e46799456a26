"""`spitwall users add` through the real CLI (a subprocess): the token is printed once,
alone on the last line, and the database holds only its SHA-256."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "spitwall", "users", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
    )


def test_users_add_prints_token_last_and_stores_hash(tmp_path: Path) -> None:
    r = run(
        "add",
        "carol",
        "--role",
        "user",
        "--tn",
        "+1 555 000 3333",
        "--tn",
        "+15550004444",
        "--data-dir",
        str(tmp_path),
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.rstrip("\n").split("\n")
    token = lines[-1]
    assert token.startswith("swt_") and token.strip() == token and " " not in token
    assert "carol" in r.stdout and "+15550003333" in r.stdout
    assert sum(token in line for line in lines) == 1
    db = sqlite3.connect(tmp_path / "reputation.sqlite3")
    hashes = [row[0] for row in db.execute("SELECT token_hash FROM tokens")]
    assert hashes == [hashlib.sha256(token.encode()).hexdigest()]
    dump = "\n".join(db.iterdump())
    assert token not in dump and token[4:] not in dump
    tns = sorted(row[0] for row in db.execute("SELECT tn FROM user_numbers"))
    assert tns == ["15550003333", "15550004444"]
    lst = run("list", "--data-dir", str(tmp_path))
    assert lst.returncode == 0 and "carol\tuser\t+15550003333,+15550004444" in lst.stdout


def test_users_add_with_password_and_errors(tmp_path: Path) -> None:
    r = run(
        "add",
        "dave",
        "--role",
        "admin",
        "--password-stdin",
        "--data-dir",
        str(tmp_path),
        stdin="a long password\n",
    )
    assert r.returncode == 0, r.stderr
    db = sqlite3.connect(tmp_path / "reputation.sqlite3")
    (pw,) = db.execute("SELECT password_hash FROM users WHERE name = 'dave'").fetchone()
    assert pw.startswith("scrypt$") and "a long password" not in pw
    dup = run("add", "dave", "--role", "user", "--data-dir", str(tmp_path))
    assert dup.returncode == 2 and "already taken" in dup.stderr and "swt_" not in dup.stdout
    bad = run("add", "erin", "--role", "user", "--tn", "12ab", "--data-dir", str(tmp_path))
    assert bad.returncode == 2 and "tns[0]" in bad.stderr
    role = run("add", "erin", "--role", "root", "--data-dir", str(tmp_path))
    assert role.returncode == 2 and "invalid choice" in role.stderr
