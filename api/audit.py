"""Auditor endpoints (``/api/v1/audit/…``, roles ``auditor`` and ``admin``, read-only):
search the attestation log, one record in full, streaming export, chain verification and
the traffic-study statistics.

The log is read through :class:`~attestation.audit.AuditReader`, which opens a read-only
SQLite connection per call, so nothing here can write to it. Every read runs off the event
loop; an export runs its whole generator on one dedicated thread (the cursor must stay on
the thread that opened it) and hands rows to the response in batches, so memory stays flat
at any log size and the client's pace throttles the reads.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from aiohttp import web

from attestation.audit import (
    AuditReader,
    AuditRecord,
    NotAnAuditLog,
    QueryError,
    SearchFilters,
    parse_time,
)
from attestation.audit.record import COLUMNS
from reputation.users import Role

from .auth import roles
from .errors import ApiError, bad_request, not_found
from .payload import only_params, path_id, query_int
from .state import state

T = TypeVar("T")
AUDITORS = (Role.AUDITOR, Role.ADMIN)
FILTERS = (
    "orig",
    "dest",
    "attest",
    "verstat",
    "reason",
    "action",
    "spc",
    "origid",
    "call_id",
    "kind",
)
EXPORT_BATCH = 500


def _reader(request: web.Request) -> AuditReader:
    r = state(request).audit
    if r is None:
        raise ApiError(503, "unavailable", "no attestation log is configured")
    return r


async def _run(fn: Callable[[], T]) -> T:
    try:
        return await asyncio.to_thread(fn)
    except QueryError as exc:
        raise bad_request(str(exc), field=exc.field) from None
    except NotAnAuditLog as exc:
        raise ApiError(503, "unavailable", f"attestation log unavailable: {exc}") from None


def _time(request: web.Request, name: str) -> float | None:
    text = request.query.get(name)
    if text is None or text == "":
        return None
    try:
        return parse_time(text[:64])
    except QueryError:
        raise bad_request(
            f"{name}: {text[:40]!r} is neither UNIX seconds nor an ISO 8601 date/time", field=name
        ) from None


def _range(request: web.Request) -> tuple[float | None, float | None]:
    since, until = _time(request, "since"), _time(request, "until")
    if since is not None and until is not None and until < since:
        raise bad_request("until: must not be before since", field="until")
    return since, until


def _record_json(rec: AuditRecord) -> dict[str, Any]:
    return rec.as_dict()


@roles(*AUDITORS)
async def records(request: web.Request) -> web.Response:
    """Search, newest first; ``cursor`` = ``next_cursor`` of the previous page."""
    st = state(request)
    q = request.query
    only_params(q, ("since", "until", "limit", "cursor", *FILTERS))
    since, until = _range(request)
    values: dict[str, str | None] = {}
    for name in FILTERS:
        v = q.get(name)
        if v is not None and len(v) > 256:
            raise bad_request(f"{name}: at most 256 characters", field=name)
        values[name] = v if v != "" else None
    filters = SearchFilters(since=since, until=until, **values)
    limit = query_int(q, "limit", st.config.page_size, 1, 1000) or 1
    cursor = q.get("cursor") or None
    reader = _reader(request)
    page = await _run(lambda: reader.search(filters, limit=limit, cursor=cursor))
    return web.json_response(
        {"records": [_record_json(r) for r in page.records], "next_cursor": page.next_cursor}
    )


@roles(*AUDITORS)
async def record(request: web.Request) -> web.Response:
    """One record in full: raw Identity headers, decoded PASSporT, certificate details, hash."""
    seq = path_id(request)
    reader = _reader(request)
    rec = await _run(lambda: reader.get(seq))
    if rec is None:
        raise not_found(f"no record {seq}")
    out = _record_json(rec)
    try:
        rec.entry()
        out["well_formed"] = True
    except (TypeError, ValueError) as exc:
        out["well_formed"] = False
        out["problem"] = str(exc)
    return web.json_response(out)


def _csv_line(values: list[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue()


@roles(*AUDITORS)
async def export(request: web.Request) -> web.StreamResponse:
    """Every record with since <= time < until in ``seq`` order: JSON lines or CSV."""
    only_params(request.query, ("format", "since", "until"))
    fmt = request.query.get("format", "jsonl")
    if fmt not in ("jsonl", "csv"):
        raise bad_request(f"format: expected jsonl or csv, got {fmt[:20]!r}", field="format")
    since, until = _range(request)
    reader = _reader(request)
    await _run(reader.meta)  # a missing or foreign file is a 503 before streaming starts

    def encode(rec: AuditRecord) -> str:
        if fmt == "jsonl":
            return json.dumps(rec.as_dict(), ensure_ascii=False, sort_keys=True) + "\n"
        return _csv_line(["" if rec.row[c] is None else rec.row[c] for c in COLUMNS])

    resp = web.StreamResponse(
        headers={
            "Content-Type": "application/x-ndjson" if fmt == "jsonl" else "text/csv",
            "Content-Disposition": f'attachment; filename="attestation-log.{fmt}"',
        }
    )
    await resp.prepare(request)
    if fmt == "csv":
        await resp.write(_csv_line(list(COLUMNS)).encode())
    pool = ThreadPoolExecutor(1, thread_name_prefix="audit-export")
    rows: Iterator[AuditRecord] = reader.iter_export(since, until)
    loop = asyncio.get_running_loop()

    def batch() -> str:
        out = []
        for rec in rows:
            out.append(encode(rec))
            if len(out) >= EXPORT_BATCH:
                break
        return "".join(out)

    try:
        while chunk := await loop.run_in_executor(pool, batch):
            await resp.write(chunk.encode("utf-8", "surrogateescape"))
    except ConnectionResetError:
        return resp  # the client went away; nothing more to send
    finally:
        await loop.run_in_executor(pool, rows.close)  # type: ignore[attr-defined]
        pool.shutdown(wait=False)
    await resp.write_eof()
    return resp


@roles(*AUDITORS)
async def verify(request: web.Request) -> web.Response:
    """Walk the whole hash chain and every signed checkpoint."""
    only_params(request.query, ())
    st = state(request)
    reader = _reader(request)
    result = await _run(lambda: reader.verify(keys=list(st.audit_keys)))
    return web.json_response({**result.as_dict(), "summary": result.describe()})


@roles(*AUDITORS)
async def stats(request: web.Request) -> web.Response:
    """Volumes by day/hour, attestation, verification result, action; top spam sources."""
    only_params(request.query, ("since", "until", "top"))
    since, until = _range(request)
    top = query_int(request.query, "top", 10, 1, 1000) or 10
    reader = _reader(request)
    result = await _run(lambda: reader.stats(since, until, top=top))
    return web.json_response(result.as_dict())
