"""`spitwall demo` end to end: a real `spitwall serve` subprocess, Python UAC/UAS over UDP
on 127.0.0.1, the running table from spitwall's own call records, the pointers at the end."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_plays_traffic_through_spitwall_serve(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "spitwall",
            "demo",
            "--duration",
            "8",
            "--speed",
            "8",
            "--subscribers",
            "400",
            "--every",
            "3",
            "--no-linger",
            "--data-dir",
            str(data),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:] + out[-2000:]
    m = re.search(r"^(\d+) calls to play", out, re.M)
    assert m and int(m.group(1)) > 0, out
    assert "forwarded" in out and "rejected" in out and "top reasons" in out
    assert "what spitwall did, by who was really calling:" in out
    assert re.search(r"web page +http://127\.0\.0\.1:\d+/ +\(log in as demo / demo-", out)
    assert f"spitwall audit verify --data-dir {data / 'data'}" in out
    # spitwall itself screened the calls (its call records), and saw their outcomes
    db = sqlite3.connect(data / "data" / "reputation.sqlite3")
    rows = db.execute("SELECT count(*), count(outcome) FROM calls").fetchone()
    assert rows[0] == int(m.group(1)) and rows[1] > 0
    # the attestation log it wrote verifies
    audit = subprocess.run(
        [sys.executable, "-m", "spitwall", "audit", "verify", "--data-dir", str(data / "data")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert audit.returncode == 0, audit.stdout + audit.stderr


def test_demo_rejects_bad_options() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "spitwall", "demo", "--duration", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "--duration" in proc.stderr
