"""Reading the log for auditors: search, one record, export, verification and statistics.

Every call opens its own read-only connection (``mode=ro``) and closes it, so an
:class:`AuditReader` can be shared by threads (``asyncio.to_thread``) and can never write.
Search pages newest first with an opaque cursor (the last ``seq`` seen) rather than an
offset, so paging is O(page) and stable while records are appended; every filter column
has an index whose implicit rowid suffix also gives the order. Export streams in ``seq``
order with a rowid range scan (constant memory at any size).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .chain import VerifyResult, load_checkpoints, verify_chain
from .checkpoint import Checkpoint
from .record import COLUMNS, JSON_COLUMNS, AuditEntry, entry_from_row
from .schema import open_reader, read_meta

SPAM_ACTIONS = ("reject", "challenge", "voicemail")
"""Actions that count a call as judged spam in :meth:`AuditReader.stats`."""
MAX_LIMIT = 1000


class QueryError(ValueError):
    """A bad search or export argument; ``field`` names it (for a 400 answer)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One stored record exactly as in the file."""

    row: Mapping[str, Any]
    """Every column's stored value (JSON-valued columns as their canonical text)."""

    @property
    def seq(self) -> int:
        return int(self.row["seq"])

    @property
    def hash(self) -> str:
        return str(self.row["hash"])

    def entry(self) -> AuditEntry:
        """The entry written (ValueError/TypeError if the stored row was tampered with)."""
        return entry_from_row(self.row)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: every column, JSON-valued ones decoded (kept as text if invalid)."""
        out = dict(self.row)
        for name in JSON_COLUMNS:
            text = out.get(name)
            if isinstance(text, str):
                try:
                    out[name] = json.loads(text)
                except ValueError:
                    pass
        return out


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """Search criteria; all given ones must match. Times are UNIX seconds, ``until`` exclusive."""

    since: float | None = None
    until: float | None = None
    orig: str | None = None
    """Caller TN, exact, or a prefix ending in ``*`` (``1215*``)."""
    dest: str | None = None
    """Called TN, exact or ``prefix*``."""
    attest: str | None = None
    verstat: str | None = None
    reason: str | None = None
    action: str | None = None
    spc: str | None = None
    origid: str | None = None
    call_id: str | None = None
    kind: str | None = None


class SearchPage(NamedTuple):
    """A page of records, newest first, and the cursor for the next (None at the end)."""

    records: list[AuditRecord]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class AuditStats:
    """Traffic study figures over [since, until)."""

    since: float | None
    until: float | None
    total: int
    spam_total: int
    by_day: list[tuple[str, int]]
    by_hour: list[tuple[str, int]]
    """Hours as ``YYYY-MM-DDTHH`` (UTC)."""
    by_day_verstat: list[tuple[str, str, int]]
    by_day_attest: list[tuple[str, str, int]]
    by_attest: dict[str, int]
    by_verstat: dict[str, int]
    by_action: dict[str, int]
    by_kind: dict[str, int]
    top_spc: list[tuple[str, int]]
    """Of calls judged spam, as the rest of the ``top_`` lists."""
    top_origid: list[tuple[str, int]]
    top_source: list[tuple[str, int]]
    """Source IP addresses (port removed)."""
    top_caller_prefix: list[tuple[str, int]]

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


_ISO_Z = re.compile(r"[zZ]$")


def parse_time(text: str) -> float:
    """UNIX seconds from ``1764350000``, ``1764350000.5`` or ISO 8601 (naive means UTC)."""
    value = text.strip()
    try:
        return float(value) if re.fullmatch(r"-?\d+(\.\d+)?", value) else _iso(value)
    except (ValueError, OverflowError):
        raise QueryError(
            "time", f"{text!r} is neither UNIX seconds nor an ISO 8601 date/time"
        ) from None


def _iso(value: str) -> float:
    dt = datetime.fromisoformat(_ISO_Z.sub("+00:00", value))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _name(value: object) -> str:
    return "none" if value is None else str(value)


class AuditReader:
    """Read-only access to one attestation log file."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def _connect(self) -> sqlite3.Connection:
        conn = open_reader(self.path)
        try:
            read_meta(conn, self.path)
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def _record(cursor: sqlite3.Cursor, row: Sequence[Any]) -> AuditRecord:
        names = [d[0] for d in cursor.description]
        return AuditRecord(dict(zip(names, row, strict=True)))

    def get(self, seq: int) -> AuditRecord | None:
        """One record by ``seq``, or None."""
        with closing(self._connect()) as conn:
            cur = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM records WHERE seq = ?", (seq,))
            row = cur.fetchone()
            return None if row is None else self._record(cur, row)

    def count(self) -> int:
        """Records present (the last seq; cheap)."""
        with closing(self._connect()) as conn:
            row = conn.execute("SELECT max(seq) FROM records").fetchone()
            return int(row[0] or 0)

    def search(
        self, filters: SearchFilters | None = None, *, limit: int = 50, cursor: str | None = None
    ) -> SearchPage:
        """Records matching ``filters``, newest first, ``limit`` a page (1..1000)."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise QueryError("limit", f"must be an integer from 1 to {MAX_LIMIT}")
        where, params = _where(filters or SearchFilters())
        if cursor is not None:
            if not cursor.isdigit():
                raise QueryError("cursor", "invalid cursor (use next_cursor from the last page)")
            where.append("seq < ?")
            params.append(int(cursor))
        sql = f"SELECT {', '.join(COLUMNS)} FROM records"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq DESC LIMIT ?"
        with closing(self._connect()) as conn:
            cur = conn.execute(sql, (*params, limit + 1))
            rows = cur.fetchall()
            records = [self._record(cur, r) for r in rows[:limit]]
        more = len(rows) > limit
        return SearchPage(records, str(records[-1].seq) if more and records else None)

    def iter_export(
        self, since: float | None = None, until: float | None = None
    ) -> Iterator[AuditRecord]:
        """Every record with since <= time < until, in seq order, streamed."""
        conn = self._connect()
        try:
            lo, hi = _seq_range(conn, since, until)
            if lo is None or hi is None:
                return
            sql = (
                f"SELECT {', '.join(COLUMNS)} FROM records NOT INDEXED "
                "WHERE seq BETWEEN ? AND ? AND time >= ? AND time < ? ORDER BY seq"
            )
            lo_t = since if since is not None else float("-inf")
            hi_t = until if until is not None else float("inf")
            cur = conn.execute(sql, (lo, hi, lo_t, hi_t))
            while rows := cur.fetchmany(1000):
                for row in rows:
                    yield self._record(cur, row)
        finally:
            conn.close()

    def verify(
        self, keys: Sequence[Ed25519PublicKey] = (), published: Sequence[Checkpoint] = ()
    ) -> VerifyResult:
        """Walk the whole chain and check every checkpoint (see ``chain.verify_chain``)."""
        conn = open_reader(self.path)
        try:
            return verify_chain(conn, keys=keys, published=published, name=str(self.path))
        finally:
            conn.close()

    def latest_checkpoint(self) -> Checkpoint | None:
        with closing(self._connect()) as conn:
            cps = load_checkpoints(conn)
        return cps[-1] if cps else None

    def checkpoints(self) -> list[Checkpoint]:
        with closing(self._connect()) as conn:
            return load_checkpoints(conn)

    def stats(
        self,
        since: float | None = None,
        until: float | None = None,
        *,
        spam_score: float = 70.0,
        top: int = 10,
        prefix_digits: int = 7,
    ) -> AuditStats:
        """Volumes and the top sources of spam over [since, until) (``loss`` records excluded).

        A call counts as judged spam when its action is reject, challenge or voicemail or its
        score is at least ``spam_score``. Caller prefixes are the first ``prefix_digits``
        E.164 digits (7 = NANP country code + NPA + NXX).
        """
        if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= MAX_LIMIT:
            raise QueryError("top", f"must be an integer from 1 to {MAX_LIMIT}")
        if isinstance(prefix_digits, bool) or not isinstance(prefix_digits, int):
            raise QueryError("prefix_digits", "must be an integer")
        where, params = _where(SearchFilters(since=since, until=until))
        where.append("kind != 'loss'")
        cond = " AND ".join(where)
        is_spam = f"(action IN ({', '.join('?' * len(SPAM_ACTIONS))}) OR score >= ?)"
        spam_params = [*SPAM_ACTIONS, float(spam_score)]
        # Two scans in all: volumes grouped by every dimension at once, then the spam subset
        # grouped by its sources; Python folds the small group tables into each view.
        volumes_sql = (
            f"SELECT substr(time_utc, 1, 13), attest, verstat, action, kind, {is_spam}, "
            f"count(*) FROM records WHERE {cond} GROUP BY 1, 2, 3, 4, 5, 6"
        )
        sources_sql = (
            f"SELECT spc, origid, {_SOURCE_IP}, substr(orig_tn, 1, ?), count(*) FROM records "
            f"WHERE {cond} AND {is_spam} GROUP BY 1, 2, 3, 4"
        )
        hours: Counter[str] = Counter()
        days: Counter[str] = Counter()
        day_verstat: Counter[tuple[str, str]] = Counter()
        day_attest: Counter[tuple[str, str]] = Counter()
        views: dict[str, Counter[str]] = {
            k: Counter() for k in ("attest", "verstat", "action", "kind")
        }
        spam_total = 0
        tops: list[Counter[str]] = [Counter(), Counter(), Counter(), Counter()]
        with closing(self._connect()) as conn:
            for hour, attest, verstat, action, kind, spam, n in conn.execute(
                volumes_sql, (*spam_params, *params)
            ):
                day = hour[:10]
                hours[hour] += n
                days[day] += n
                day_verstat[day, _name(verstat)] += n
                day_attest[day, _name(attest)] += n
                for name, value in (("attest", attest), ("verstat", verstat), ("action", action),
                                    ("kind", kind)):  # fmt: skip
                    views[name][_name(value)] += n
                spam_total += n if spam else 0
            for *keys, n in conn.execute(sources_sql, (int(prefix_digits), *params, *spam_params)):
                for counter, key in zip(tops, keys, strict=True):
                    if key not in (None, ""):
                        counter[str(key)] += n
        ranked = [sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:top] for c in tops]
        return AuditStats(
            since=since,
            until=until,
            total=sum(days.values()),
            spam_total=spam_total,
            by_day=sorted(days.items()),
            by_hour=sorted(hours.items()),
            by_day_verstat=[(d, v, n) for (d, v), n in sorted(day_verstat.items())],
            by_day_attest=[(d, a, n) for (d, a), n in sorted(day_attest.items())],
            by_attest=dict(sorted(views["attest"].items())),
            by_verstat=dict(sorted(views["verstat"].items())),
            by_action=dict(sorted(views["action"].items())),
            by_kind=dict(sorted(views["kind"].items())),
            top_spc=ranked[0],
            top_origid=ranked[1],
            top_source=ranked[2],
            top_caller_prefix=ranked[3],
        )

    def meta(self) -> dict[str, str]:
        with closing(self._connect()) as conn:
            return read_meta(conn, self.path)


_SOURCE_IP = (
    "CASE WHEN source LIKE '[%]:%' THEN substr(source, 2, instr(source, ']') - 2) "
    "WHEN instr(source, ':') > 0 AND instr(substr(source, instr(source, ':') + 1), ':') = 0 "
    "THEN substr(source, 1, instr(source, ':') - 1) ELSE source END"
)
"""The IP address of ``source``: ``192.0.2.1:5060`` → ``192.0.2.1``, ``[2001:db8::1]:5060`` →
``2001:db8::1``; anything else (a bare IPv6 address, no port) as it is."""


def _where(f: SearchFilters) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    for name in ("since", "until"):
        value = getattr(f, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise QueryError(name, "must be UNIX seconds")
    if f.since is not None:
        where.append("time >= ?")
        params.append(float(f.since))
    if f.until is not None:
        where.append("time < ?")
        params.append(float(f.until))
    for name, column in (("orig", "orig_tn"), ("dest", "dest_tn")):
        value = getattr(f, name)
        if value is None:
            continue
        value = value.strip().lstrip("+")
        if value.endswith("*"):
            prefix = value[:-1]
            if not prefix.isdigit():
                raise QueryError(name, "a prefix must be digits followed by '*'")
            where.append(f"{column} >= ? AND {column} < ?")
            params += [prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)]
        else:
            where.append(f"{column} = ?")
            params.append(value)
    for name in ("attest", "verstat", "reason", "action", "spc", "origid", "call_id", "kind"):
        value = getattr(f, name)
        if value is not None:
            if not isinstance(value, str):
                raise QueryError(name, "must be a string")
            where.append(f"{name} = ?")
            params.append(value)
    return where, params


def _seq_range(
    conn: sqlite3.Connection, since: float | None, until: float | None
) -> tuple[int | None, int | None]:
    """The seq bounds of [since, until) using the time index (times are nearly in order)."""
    if since is None and until is None:
        row = conn.execute("SELECT min(seq), max(seq) FROM records").fetchone()
        return row[0], row[1]
    lo_t = float("-inf") if since is None else float(since)
    hi_t = float("inf") if until is None else float(until)
    row = conn.execute(
        "SELECT min(seq), max(seq) FROM records INDEXED BY records_time "
        "WHERE time >= ? AND time < ?",
        (lo_t, hi_t),
    ).fetchone()
    return row[0], row[1]
