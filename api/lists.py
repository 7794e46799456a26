"""Block, allow and Do-Not-Originate lists over HTTP: one implementation for a subscriber's
own lists (``/me/blocklist``, ``/me/allowlist``) and the operator's global ones
(``/admin/lists/{block|allow|dno}``).

A change is made through the store, which commits it and then updates the in-memory
:class:`~reputation.lists.ListIndex` before returning, so the very next call is screened
against it. The owner is never taken from the request body: it is the authenticated user
(or "global" for the admin routes), so nobody can write into somebody else's list, and a
delete of another owner's id is "not found".
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from reputation.csvio import export_list_csv, parse_expiry, parse_list_csv
from reputation.lists import (
    MAX_NOTE_CHARS,
    Invalid,
    ListEntry,
    ListKind,
    ListScope,
    ListSource,
    NewListEntry,
    parse_pattern,
)

from .errors import ApiError, bad_request, invalid, not_found
from .payload import field_str, media_type, only_params, path_id, read_body, read_json
from .state import state

CSV_TYPES = ("text/csv", "application/csv")
IMPORT_BATCH = 2000
MAX_EXPIRES = 253_402_300_799.0
"""9999-12-31T23:59:59Z: later expiry times are refused (they cannot be written as dates)."""


def _owner_scope(user_id: int | None) -> ListScope:
    return ListScope.GLOBAL if user_id is None else ListScope.USER


def _expiry(value: object, now: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise bad_request(
            "expires: expected UNIX seconds, an ISO 8601 date/time or null", field="expires"
        )
    t = parse_expiry(str(value)) if isinstance(value, str) else float(value)
    if isinstance(t, Invalid):
        raise invalid(t)
    if t is None:
        return None
    if t != t or t in (float("inf"), float("-inf")) or t < 0:
        raise bad_request("expires: not a time", field="expires")
    if t <= now:
        raise bad_request("expires: must be in the future", field="expires")
    if t > MAX_EXPIRES:
        raise bad_request("expires: must be before the year 10000", field="expires")
    return t


async def list_entries(
    request: web.Request, user_id: int | None, kind: ListKind
) -> web.StreamResponse:
    """GET: the owner's entries of one kind, as JSON or (``?format=csv``) CSV."""
    st = state(request)
    only_params(request.query, ("format",))
    fmt = request.query.get("format", "json")
    entries = (
        st.store.lists_for_user(user_id, kind)
        if user_id is not None
        else st.store.global_lists(kind)
    )
    if fmt == "csv":
        name = f"{kind.value}list.csv" if user_id is not None else f"global-{kind.value}.csv"
        return web.Response(
            text=await asyncio.to_thread(export_list_csv, entries),
            content_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    if fmt != "json":
        raise bad_request(f"format: expected json or csv, got {fmt[:20]!r}", field="format")
    return web.json_response({"entries": [_entry_json(e) for e in entries]})


def _entry_json(e: ListEntry) -> dict[str, Any]:
    return e.to_json()


async def add_entries(request: web.Request, user_id: int | None, kind: ListKind) -> web.Response:
    """POST: one entry as JSON, or many as CSV (a per-line report)."""
    only_params(request.query, ())
    if media_type(request) in CSV_TYPES:
        return await _import_csv(request, user_id, kind)
    st = state(request)
    data = await read_json(
        request,
        st.config.max_json_bytes,
        allowed=("number", "note", "expires"),
        required=("number",),
    )
    pattern = parse_pattern(data["number"], field="number")
    if isinstance(pattern, Invalid):
        raise invalid(pattern)
    note = field_str(data, "note", max_len=MAX_NOTE_CHARS)
    now = st.clock()
    expires = _expiry(data.get("expires"), now)
    source = ListSource.API if user_id is not None else ListSource.ADMIN
    new = NewListEntry(_owner_scope(user_id), user_id, kind, pattern, note, source, expires)
    existed = any(
        e.kind is kind and e.pattern == pattern
        for e in (
            st.store.lists_for_user(user_id, kind)
            if user_id is not None
            else st.store.global_lists(kind)
        )
    )
    result = await st.store.add_entry(new, now=now)
    if isinstance(result, Invalid):
        raise invalid(result)
    return web.json_response(_entry_json(result), status=200 if existed else 201)


async def _import_csv(request: web.Request, user_id: int | None, kind: ListKind) -> web.Response:
    st = state(request)
    raw = await read_body(request, st.config.max_csv_bytes, "CSV upload")
    now = st.clock()
    # Parsing 100 000 rows takes a good part of a second: off the loop the proxy shares.
    parsed = await asyncio.to_thread(
        parse_list_csv,
        raw,
        scope=_owner_scope(user_id),
        user_id=user_id,
        default_kind=kind,
        allowed_kinds=(kind,),
        now=now,
        max_rows=st.config.max_csv_rows,
    )
    errors: list[dict[str, Any]] = [{"line": e.line, "reason": e.reason} for e in parsed.errors]
    news, lines = [], []
    for line, e in zip(parsed.lines, parsed.entries, strict=True):
        if e.expires is not None and e.expires > MAX_EXPIRES:
            errors.append({"line": line, "reason": "expires: must be before the year 10000"})
        else:
            news.append(e)
            lines.append(line)
    # In batches: the store updates its in-memory index on the event loop after each commit,
    # and 100 000 entries at once would stall calls for a noticeable fraction of a second.
    results: list[Any] = []
    for i in range(0, len(news), IMPORT_BATCH):
        results += await st.store.add_entries(news[i : i + IMPORT_BATCH], now=now)
    imported = 0
    for line, r in zip(lines, results, strict=True):
        if isinstance(r, Invalid):
            errors.append({"line": line, "reason": str(r)})
        else:
            imported += 1
    errors.sort(key=lambda e: int(e["line"]))
    if imported == 0 and errors:
        raise ApiError(
            400,
            "bad_csv",
            f"nothing imported: {len(errors)} bad line(s); first: line {errors[0]['line']}:"
            f" {errors[0]['reason']}",
            imported=0,
            errors=errors,
        )
    return web.json_response({"imported": imported, "errors": errors})


async def delete_entry(request: web.Request, user_id: int | None, kind: ListKind) -> web.Response:
    st = state(request)
    entry_id = path_id(request)
    e = st.store.lists.get(entry_id)
    if e is None or e.user_id != user_id or e.kind is not kind:
        raise not_found(f"no {kind.value} list entry {entry_id}")
    gone = await st.store.delete_entry(entry_id, user_id=user_id)
    if gone is None:
        raise not_found(f"no {kind.value} list entry {entry_id}")
    return web.Response(status=204)
