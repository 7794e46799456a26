"""Voicemail storage: where recordings go, how much a callee may keep, when they go away,
and when a caller has stopped talking.

Why separate from the agent: everything here is plain files and arithmetic, so limits
(quota, size, retention) and silence detection are tested without pjsua2. The agent asks
:func:`record_budget` before answering a voicemail, feeds :class:`SilenceDetector` with the
caller's signal level while recording, and calls :func:`cleanup` now and then.

Layout: ``<data_dir>/voicemail/<callee digits>/<UTC YYYYmmddTHHMMSSZ>-<caller>-<id>.wav``
with a JSON sidecar (same name, ``.json``) holding the metadata that was reported.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger("spitwall.challenge.recorder")

BYTES_PER_SECOND = 16000  # 8 kHz, 16-bit, mono
WAV_HEADER = 44
_SAFE = re.compile(r"[^0-9A-Za-z_-]")


def safe_name(text: str, fallback: str = "unknown") -> str:
    """A path component from a number or user part: no separators, no dots, bounded."""
    cleaned = _SAFE.sub("", text.lstrip("+"))[:40]
    return cleaned or fallback


def mailbox(voicemail_dir: Path, callee: str) -> Path:
    return voicemail_dir / safe_name(callee)


def recording_path(voicemail_dir: Path, callee: str, caller: str, wall: float) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(wall))
    name = f"{stamp}-{safe_name(caller, 'anonymous')}-{secrets.token_hex(4)}.wav"
    return mailbox(voicemail_dir, callee) / name


def usage_bytes(directory: Path) -> int:
    total = 0
    try:
        with os.scandir(directory) as it:
            for entry in it:
                if entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
    except FileNotFoundError:
        return 0
    return total


@dataclass(frozen=True, slots=True)
class Budget:
    seconds: float
    """How long this recording may run (0 when the mailbox is full)."""
    full: bool


def record_budget(
    voicemail_dir: Path,
    callee: str,
    *,
    max_seconds: float,
    max_bytes: int,
    quota_bytes: int,
    min_seconds: float,
) -> Budget:
    """Longest recording allowed now: the smallest of the length cap, the size cap and what
    is left of the callee's quota. Full when not even ``min_seconds`` fit."""
    left = quota_bytes - usage_bytes(mailbox(voicemail_dir, callee))
    by_size = (min(max_bytes, left) - WAV_HEADER) / BYTES_PER_SECOND
    seconds = max(0.0, min(max_seconds, by_size))
    if seconds < max(min_seconds, 0.5):
        return Budget(0.0, True)
    return Budget(seconds, False)


def cleanup(voicemail_dir: Path, now_wall: float, retention_days: float) -> int:
    """Delete recordings (and sidecars) older than ``retention_days``; return the count."""
    if retention_days <= 0:
        return 0
    cutoff = now_wall - retention_days * 86400.0
    removed = 0
    if not voicemail_dir.is_dir():
        return 0
    for box in voicemail_dir.iterdir():
        if not box.is_dir() or box.is_symlink():
            continue
        for f in box.iterdir():
            if f.suffix not in (".wav", ".json") or not f.is_file():
                continue
            try:
                if f.stat().st_mtime < cutoff:
                    f.unlink()
                    removed += f.suffix == ".wav"
            except OSError as exc:
                log.warning("cannot remove old recording %s: %s", f, exc)
    return removed


@dataclass(frozen=True, slots=True)
class Recording:
    """What is stored beside the WAV and sent with the voicemail outcome."""

    path: str
    caller: str
    callee: str
    decision_id: str
    started: float
    """UNIX time the recording began."""
    duration: float
    """Seconds of audio in the WAV."""
    speech: float
    """Seconds until the caller fell silent (or hung up)."""
    bytes: int

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def write_sidecar(rec: Recording) -> None:
    side = Path(rec.path).with_suffix(".json")
    tmp = side.with_suffix(".tmp")
    tmp.write_text(json.dumps(rec.to_json(), indent=1, sort_keys=True))
    tmp.replace(side)


def truncate_wav(path: Path, max_bytes: int) -> None:
    """Enforce the size cap after the fact (the recorder stops on time; a late stop may
    write a few frames more). Rewrites the RIFF/data sizes of a canonical 44-byte header."""
    size = path.stat().st_size
    if size <= max_bytes:
        return
    data_len = (max_bytes - WAV_HEADER) & ~1
    with path.open("r+b") as fh:
        fh.truncate(WAV_HEADER + data_len)
        fh.seek(4)
        fh.write((36 + data_len).to_bytes(4, "little"))
        fh.seek(40)
        fh.write(data_len.to_bytes(4, "little"))


class SilenceDetector:
    """Says when the caller has been quiet for ``seconds``: fed (level, now) samples.

    ``level`` is pjsua's 0..255 signal level of the caller's leg. Quiet means at or below
    ``threshold``. Returns the time silence began once it lasted long enough, else None."""

    def __init__(self, threshold: int, seconds: float, start: float) -> None:
        self.threshold = threshold
        self.seconds = seconds
        self._quiet_since: float | None = start

    def feed(self, level: int, now: float) -> float | None:
        if level > self.threshold:
            self._quiet_since = None
            return None
        if self._quiet_since is None:
            self._quiet_since = now
        if now - self._quiet_since >= self.seconds:
            return self._quiet_since
        return None
