"""Voicemail limits without pjsua2: quota, size cap, retention, silence detection."""

from __future__ import annotations

import os
import wave
from pathlib import Path

import pytest

from challenge.recorder import (
    BYTES_PER_SECOND,
    Budget,
    SilenceDetector,
    cleanup,
    mailbox,
    record_budget,
    recording_path,
    safe_name,
    truncate_wav,
    usage_bytes,
)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("+15557654321", "15557654321"),
        ("../../etc", "etc"),
        ("", "unknown"),
        ("a/b\\c.d", "abcd"),
        ("x" * 99, "x" * 40),
    ],
)
def test_safe_names_never_escape_the_directory(text: str, name: str) -> None:
    assert safe_name(text) == name


def test_recording_path_layout(tmp_path: Path) -> None:
    p = recording_path(tmp_path, "+15557654321", "+1 555 123", 1_700_000_000.0)
    assert p.parent == tmp_path / "15557654321"
    assert p.name.startswith("20231114T221320Z-1555123-") and p.suffix == ".wav"


@pytest.mark.parametrize(
    ("used", "max_seconds", "max_bytes", "quota", "expected"),
    [
        (0, 120.0, 4_000_000, 50_000_000, Budget(120.0, False)),
        (0, 120.0, 16_044, 50_000_000, Budget(1.0, False)),  # the size cap binds
        (
            49_000_000,
            120.0,
            4_000_000,
            50_000_000,
            Budget((1_000_000 - 44) / BYTES_PER_SECOND, False),
        ),  # the quota binds
        (49_990_000, 120.0, 4_000_000, 50_000_000, Budget(0.0, True)),  # full
        (60_000_000, 120.0, 4_000_000, 50_000_000, Budget(0.0, True)),  # over quota
    ],
)
def test_record_budget(
    tmp_path: Path, used: int, max_seconds: float, max_bytes: int, quota: int, expected: Budget
) -> None:
    box = mailbox(tmp_path, "15557654321")
    box.mkdir(parents=True)
    if used:
        with (box / "old.wav").open("wb") as fh:
            fh.truncate(used)
    got = record_budget(
        tmp_path,
        "15557654321",
        max_seconds=max_seconds,
        max_bytes=max_bytes,
        quota_bytes=quota,
        min_seconds=1.0,
    )
    assert got.full == expected.full
    assert got.seconds == pytest.approx(expected.seconds)
    assert usage_bytes(box) == used


def test_cleanup_removes_only_old_recordings(tmp_path: Path) -> None:
    box = tmp_path / "15557654321"
    box.mkdir()
    now = 1_700_000_000.0
    for name, age_days in [("old.wav", 31), ("old.json", 31), ("new.wav", 1), ("notes.txt", 99)]:
        f = box / name
        f.write_bytes(b"x")
        os.utime(f, (now - age_days * 86400, now - age_days * 86400))
    assert cleanup(tmp_path, now, 30.0) == 1
    assert sorted(p.name for p in box.iterdir()) == ["new.wav", "notes.txt"]
    assert cleanup(tmp_path, now, 0) == 0  # 0 keeps forever
    assert cleanup(tmp_path / "missing", now, 30.0) == 0


def test_truncate_wav_rewrites_the_header(tmp_path: Path) -> None:
    path = tmp_path / "m.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x01\x00" * 16000)
    truncate_wav(path, 44 + 8000)
    with wave.open(str(path), "rb") as w:
        assert w.getnframes() == 4000
    truncate_wav(path, 10**9)  # under the cap: untouched
    assert path.stat().st_size == 44 + 8000


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        ([(50, 0.0), (50, 1.0), (2, 1.1), (2, 2.0), (2, 2.6)], 1.1),  # quiet from 1.1 for 1.5
        ([(2, 0.0), (2, 1.0), (2, 1.5)], 0.0),  # silent from the start
        ([(2, 0.0), (2, 1.0), (40, 1.2), (2, 1.3), (2, 2.7)], None),  # speech resets
        ([(6, 0.0), (6, 1.5)], 0.0),  # at the threshold counts as quiet
    ],
)
def test_silence_detector(samples: list[tuple[int, float]], expected: float | None) -> None:
    det = SilenceDetector(threshold=6, seconds=1.5, start=0.0)
    got = None
    for level, now in samples:
        got = det.feed(level, now)
    assert got == expected
