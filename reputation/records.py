"""Call records and voicemail metadata: the rows the HTTP API pages through.

These are history, not hot-path state: they are read from disk on a reader thread (the
store's ``read``), never kept whole in memory. Every query that serves a subscriber takes
the ``user_id`` and filters on it in SQL, so one user's ids never reach another's rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from .feedback import reasons_from_json
from .model import Reason


@dataclass(frozen=True, slots=True)
class CallRecord:
    id: int
    call_id: str
    time: float
    user_id: int | None
    callee: str
    caller: str | None
    source_ip: str
    trunk: str | None
    verstat: str | None
    attest: str | None
    origid: str | None
    spc: str | None
    score: float | None
    reasons: tuple[Reason, ...]
    action: str
    outcome: str | None
    final_code: int | None
    answered: bool
    duration: float | None
    ended: float | None
    report: str | None = None
    """The subscriber's verdict: ``spam``, ``not_spam`` or None."""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "call_id": self.call_id,
            "time": self.time,
            "callee": self.callee,
            "caller": self.caller,
            "source_ip": self.source_ip,
            "trunk": self.trunk,
            "verstat": self.verstat,
            "attest": self.attest,
            "origid": self.origid,
            "spc": self.spc,
            "score": self.score,
            "reasons": [
                {"signal": r.signal, "weight": r.weight, "detail": r.detail} for r in self.reasons
            ],
            "action": self.action,
            "outcome": self.outcome,
            "final_code": self.final_code,
            "answered": self.answered,
            "duration": self.duration,
            "report": self.report,
        }


def call_from_row(r: Any) -> CallRecord:
    return CallRecord(
        id=int(r["id"]),
        call_id=str(r["call_id"]),
        time=float(r["time"]),
        user_id=None if r["user_id"] is None else int(r["user_id"]),
        callee=str(r["callee"]),
        caller=r["caller"],
        source_ip=str(r["source_ip"]),
        trunk=r["trunk"],
        verstat=r["verstat"],
        attest=r["attest"],
        origid=r["origid"],
        spc=r["spc"],
        score=None if r["score"] is None else float(r["score"]),
        reasons=reasons_from_json(r["reasons"]),
        action=str(r["action"]),
        outcome=r["outcome"],
        final_code=None if r["final_code"] is None else int(r["final_code"]),
        answered=bool(r["answered"]),
        duration=None if r["duration"] is None else float(r["duration"]),
        ended=None if r["ended"] is None else float(r["ended"]),
        report=r["report"],
    )


def _page(limit: int, before_id: int | None) -> tuple[str, list[Any], int]:
    limit = max(1, min(int(limit), 1000))
    if before_id is None:
        return "", [], limit
    return " AND id < ?", [int(before_id)], limit


def calls_for_user(
    db: Database, user_id: int, limit: int = 50, before_id: int | None = None
) -> list[CallRecord]:
    """Newest first; page with ``before_id`` = the last id of the previous page."""
    extra, args, limit = _page(limit, before_id)
    rows = db.execute(
        f"SELECT * FROM calls WHERE user_id = ?{extra} ORDER BY id DESC LIMIT ?",
        [user_id, *args, limit],
    ).fetchall()
    return [call_from_row(r) for r in rows]


def recent_calls(db: Database, limit: int = 50, before_id: int | None = None) -> list[CallRecord]:
    extra, args, limit = _page(limit, before_id)
    rows = db.execute(
        f"SELECT * FROM calls WHERE 1{extra} ORDER BY id DESC LIMIT ?", [*args, limit]
    ).fetchall()
    return [call_from_row(r) for r in rows]


def get_call(db: Database, call_row_id: int, user_id: int | None) -> CallRecord | None:
    """One call by row id; with ``user_id`` only if it is that user's call."""
    if user_id is None:
        r = db.execute("SELECT * FROM calls WHERE id = ?", [call_row_id]).fetchone()
    else:
        r = db.execute(
            "SELECT * FROM calls WHERE id = ? AND user_id = ?", [call_row_id, user_id]
        ).fetchone()
    return None if r is None else call_from_row(r)


def latest_call(db: Database, call_id: str) -> CallRecord | None:
    r = db.execute(
        "SELECT * FROM calls WHERE call_id = ? ORDER BY id DESC LIMIT 1", [call_id]
    ).fetchone()
    return None if r is None else call_from_row(r)


def applied_kinds(db: Database, call_id: str) -> set[str]:
    return {
        str(r[0])
        for r in db.execute(
            "SELECT DISTINCT kind FROM feedback_events WHERE call_id = ?", [call_id]
        )
    }


@dataclass(frozen=True, slots=True)
class Voicemail:
    id: int
    user_id: int
    call_id: str | None
    caller: str | None
    time: float
    duration: float
    path: str
    """Where the recording lives (relative to the data directory, as the challenge UA wrote it)."""
    size: int
    score: float | None
    reasons: tuple[Reason, ...]
    heard: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "call_id": self.call_id,
            "caller": self.caller,
            "time": self.time,
            "duration": self.duration,
            "size": self.size,
            "score": self.score,
            "reasons": [
                {"signal": r.signal, "weight": r.weight, "detail": r.detail} for r in self.reasons
            ],
            "heard": self.heard,
        }


@dataclass(frozen=True, slots=True)
class NewVoicemail:
    user_id: int
    caller: str | None
    time: float
    duration: float
    path: str
    size: int
    call_id: str | None = None
    score: float | None = None
    reasons: tuple[Reason, ...] = ()


def voicemail_from_row(r: Any) -> Voicemail:
    return Voicemail(
        id=int(r["id"]),
        user_id=int(r["user_id"]),
        call_id=r["call_id"],
        caller=r["caller"],
        time=float(r["time"]),
        duration=float(r["duration"]),
        path=str(r["path"]),
        size=int(r["size"]),
        score=None if r["score"] is None else float(r["score"]),
        reasons=reasons_from_json(r["reasons"]),
        heard=bool(r["heard"]),
    )


def insert_voicemail(db: Database, v: NewVoicemail) -> Voicemail:
    reasons = json.dumps([[r.signal, r.weight, r.detail] for r in v.reasons])
    cur = db.execute(
        "INSERT INTO voicemails"
        " (user_id, call_id, caller, time, duration, path, size, score, reasons)"
        " VALUES (?,?,?,?,?,?,?,?,?)",
        [v.user_id, v.call_id, v.caller, v.time, v.duration, v.path, v.size, v.score, reasons],
    )
    vid = cur.lastrowid
    assert vid is not None
    return Voicemail(
        vid, v.user_id, v.call_id, v.caller, v.time, v.duration, v.path, v.size, v.score, v.reasons
    )


def voicemails_for_user(
    db: Database, user_id: int, limit: int = 50, before_id: int | None = None
) -> list[Voicemail]:
    extra, args, limit = _page(limit, before_id)
    rows = db.execute(
        f"SELECT * FROM voicemails WHERE user_id = ?{extra} ORDER BY id DESC LIMIT ?",
        [user_id, *args, limit],
    ).fetchall()
    return [voicemail_from_row(r) for r in rows]


def get_voicemail(db: Database, user_id: int, vm_id: int) -> Voicemail | None:
    r = db.execute(
        "SELECT * FROM voicemails WHERE id = ? AND user_id = ?", [vm_id, user_id]
    ).fetchone()
    return None if r is None else voicemail_from_row(r)


def delete_voicemail(db: Database, user_id: int, vm_id: int) -> Voicemail | None:
    v = get_voicemail(db, user_id, vm_id)
    if v is not None:
        db.execute("DELETE FROM voicemails WHERE id = ? AND user_id = ?", [vm_id, user_id])
    return v


def mark_heard(db: Database, user_id: int, vm_id: int) -> bool:
    cur = db.execute(
        "UPDATE voicemails SET heard = 1 WHERE id = ? AND user_id = ?", [vm_id, user_id]
    )
    return cur.rowcount > 0
