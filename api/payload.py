"""Request bodies and query parameters: bounded reads, strict JSON, typed fields.

Why strict: a body that is not exactly what the endpoint documents is a client bug the
client should hear about, not something to guess at. So JSON must be an object of known
fields (an unknown field is an error naming it), numbers must be finite and of the right
kind, and a body larger than its limit is refused with 413 before it is parsed — read in
chunks from the socket, so a chunked upload cannot get past the cap either.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from .errors import ApiError, bad_request, too_large

_CHUNK = 65_536
_INT = re.compile(r"-?[0-9]+")


def media_type(request: web.Request) -> str:
    return request.content_type.lower()


async def read_body(request: web.Request, limit: int, what: str = "request body") -> bytes:
    """The whole body, at most ``limit`` bytes (else 413)."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise too_large(limit, what)
    parts: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(_CHUNK)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise too_large(limit, what)
        parts.append(chunk)
    return b"".join(parts)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


async def read_json(
    request: web.Request,
    limit: int,
    *,
    allowed: Collection[str],
    required: Collection[str] = (),
) -> dict[str, Any]:
    """A JSON object body with only ``allowed`` fields and every ``required`` one."""
    if media_type(request) != "application/json":
        raise ApiError(
            415,
            "unsupported_media_type",
            f"expected Content-Type: application/json, got {request.content_type or 'none'}",
        )
    raw = await read_body(request, limit)
    if not raw.strip():
        raise bad_request("empty body: expected a JSON object", "bad_json")
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
    except UnicodeDecodeError:
        raise bad_request("body is not valid UTF-8", "bad_json") from None
    except (ValueError, RecursionError) as exc:
        raise bad_request(f"malformed JSON: {exc}", "bad_json") from None
    if not isinstance(data, dict):
        raise bad_request(f"expected a JSON object, got {_json_type(data)}", "bad_json")
    unknown = sorted(k for k in data if k not in allowed)
    if unknown:
        raise bad_request(
            f"unknown field {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})",
            "unknown_field",
            field=unknown[0],
        )
    missing = [k for k in required if k not in data]
    if missing:
        raise bad_request(f"{missing[0]}: required field is missing", field=missing[0])
    return data


def _json_type(v: object) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    return "an object"


def field_str(data: Mapping[str, Any], name: str, *, max_len: int, default: str = "") -> str:
    v = data.get(name, default)
    if v is None:
        return default
    if not isinstance(v, str):
        raise bad_request(f"{name}: expected a string, got {_json_type(v)}", field=name)
    if len(v) > max_len:
        raise bad_request(f"{name}: at most {max_len} characters", field=name)
    return v


def field_bool(data: Mapping[str, Any], name: str) -> bool:
    v = data.get(name)
    if not isinstance(v, bool):
        raise bad_request(f"{name}: expected true or false, got {_json_type(v)}", field=name)
    return v


def field_number(data: Mapping[str, Any], name: str) -> float | None:
    v = data.get(name)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise bad_request(f"{name}: expected a number, got {_json_type(v)}", field=name)
    return float(v)


def query_int(
    query: MultiMapping[str], name: str, default: int | None, lo: int, hi: int
) -> int | None:
    """An integer query parameter in [lo, hi]; absent → ``default``; anything else → 400."""
    text = query.get(name)
    if text is None or text == "":
        return default
    if not _INT.fullmatch(text) or len(text) > 19:
        raise bad_request(f"{name}: expected an integer, got {text[:40]!r}", field=name)
    v = int(text)
    if not lo <= v <= hi:
        raise bad_request(f"{name}: must be from {lo} to {hi}, got {v}", field=name)
    return v


def page_params(query: MultiMapping[str], page_size: int) -> tuple[int, int | None]:
    """``limit`` and ``before`` (the ``next`` of the previous page) of a paged list."""
    only_params(query, ("limit", "before"))
    limit = query_int(query, "limit", page_size, 1, 1000) or 1
    return limit, query_int(query, "before", None, 1, 2**62)


def page(key: str, rows: Sequence[Any], limit: int) -> web.Response:
    """One page, newest first, with ``next`` set when there may be more."""
    nxt = rows[-1].id if len(rows) == limit else None
    return web.json_response({key: [r.to_json() for r in rows], "next": nxt})


def only_params(query: MultiMapping[str], allowed: Collection[str]) -> None:
    """Unknown query parameters are errors too (a typo must not silently widen a search)."""
    for k in query:
        if k not in allowed:
            raise bad_request(
                f"unknown query parameter {k!r} (allowed: {', '.join(sorted(allowed)) or 'none'})",
                "unknown_field",
                field=k,
            )


def path_id(request: web.Request, name: str = "id") -> int:
    """A positive integer id from the URL path; anything else is "no such resource"."""
    text = request.match_info.get(name, "")
    if not (text.isascii() and text.isdigit()) or len(text) > 18 or int(text) < 1:
        raise ApiError(404, "not_found", f"no such {name}: {text[:40]!r}")
    return int(text)
