"""Bad input is normal input: each malformed request gets its own clear 4xx JSON error."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Env

J = {"Content-Type": "application/json"}

# (method, path, raw body or json, headers, status, error code, text in the message)
CASES: list[tuple[str, str, Any, dict[str, str], int, str, str]] = [
    ("POST", "/api/v1/me/blocklist", b"{", J, 400, "bad_json", "malformed JSON"),
    ("POST", "/api/v1/me/blocklist", b'{"number": "+1555",}', J, 400, "bad_json", "malformed"),
    ("POST", "/api/v1/me/blocklist", b"", J, 400, "bad_json", "empty body"),
    ("POST", "/api/v1/me/blocklist", b"[1, 2]", J, 400, "bad_json", "an array"),
    ("POST", "/api/v1/me/blocklist", b'"+1555"', J, 400, "bad_json", "a string"),
    ("POST", "/api/v1/me/blocklist", b'{"number": NaN}', J, 400, "bad_json", "NaN"),
    ("POST", "/api/v1/me/blocklist", b"\xff\xfe{}", J, 400, "bad_json", "UTF-8"),
    ("POST", "/api/v1/me/blocklist", b"[" * 100_000, J, 413, "too_large", "4096"),
    (
        "POST",
        "/api/v1/me/blocklist",
        {"number": "+15551", "colour": "red"},
        {},
        400,
        "unknown_field",
        "colour",
    ),
    ("POST", "/api/v1/me/blocklist", {"note": "no number"}, {}, 400, "invalid", "number"),
    (
        "POST",
        "/api/v1/me/blocklist",
        {"number": 15551234567},
        {},
        400,
        "invalid",
        "expected a string",
    ),
    (
        "POST",
        "/api/v1/me/blocklist",
        {"number": "+1-555-CALL-NOW"},
        {},
        400,
        "invalid",
        "only digits",
    ),
    ("POST", "/api/v1/me/blocklist", {"number": "0555123"}, {}, 400, "invalid", "country code"),
    (
        "POST",
        "/api/v1/me/blocklist",
        {"number": "+1234567890123456"},
        {},
        400,
        "invalid",
        "at most 15",
    ),
    ("POST", "/api/v1/me/blocklist", {"number": "*"}, {}, 400, "invalid", "at least one digit"),
    ("POST", "/api/v1/me/blocklist", {"number": "+15551", "note": 5}, {}, 400, "invalid", "note"),
    (
        "POST",
        "/api/v1/me/blocklist",
        {"number": "+15551", "note": "x" * 501},
        {},
        400,
        "invalid",
        "500",
    ),
    (
        "POST",
        "/api/v1/me/blocklist",
        {"number": "+15551", "expires": 1.0},
        {},
        400,
        "invalid",
        "future",
    ),
    (
        "POST",
        "/api/v1/me/blocklist",
        {"number": "+15551", "expires": "soon"},
        {},
        400,
        "invalid",
        "ISO 8601",
    ),
    (
        "POST",
        "/api/v1/me/blocklist",
        {"number": "+15551", "expires": True},
        {},
        400,
        "invalid",
        "expires",
    ),
    (
        "POST",
        "/api/v1/me/blocklist",
        b"number=1",
        {"Content-Type": "application/x-www-form-urlencoded"},
        415,
        "unsupported_media_type",
        "application/json",
    ),
    (
        "POST",
        "/api/v1/me/blocklist",
        b"number\n" + b"+15551234567\n" * 2000,
        {"Content-Type": "text/csv"},
        413,
        "too_large",
        "CSV upload",
    ),
    (
        "POST",
        "/api/v1/me/blocklist",
        b"",
        {"Content-Type": "text/csv"},
        400,
        "bad_csv",
        "empty file",
    ),
    (
        "POST",
        "/api/v1/me/blocklist",
        b"number\n+1555\xff1\n",
        {"Content-Type": "text/csv"},
        400,
        "bad_csv",
        "UTF-8",
    ),
    (
        "POST",
        "/api/v1/me/blocklist",
        b'number,note\n"+15551,x\n',
        {"Content-Type": "text/csv"},
        400,
        "bad_csv",
        "line 2",
    ),
    (
        "POST",
        "/api/v1/me/blocklist",
        b"number\n+15551,extra\n",
        {"Content-Type": "text/csv"},
        400,
        "bad_csv",
        "fields",
    ),
    (
        "POST",
        "/api/v1/me/blocklist",
        {"number": "+15551", "expires": 1e300},
        {},
        400,
        "invalid",
        "year 10000",
    ),
    (
        "POST",
        "/api/v1/me/blocklist",
        b"number,expires\n+15551,1e300\n",
        {"Content-Type": "text/csv"},
        400,
        "bad_csv",
        "year 10000",
    ),
    ("POST", "/api/v1/me/calls/1/report", {"spam": "yes"}, {}, 400, "invalid", "true or false"),
    ("POST", "/api/v1/me/calls/1/report", {}, {}, 400, "invalid", "spam"),
    ("GET", "/api/v1/me/calls?limit=0", None, {}, 400, "invalid", "limit"),
    ("GET", "/api/v1/me/calls?limit=ten", None, {}, 400, "invalid", "integer"),
    ("GET", "/api/v1/me/calls?limit=1e3", None, {}, 400, "invalid", "integer"),
    ("GET", "/api/v1/me/calls?before=-1", None, {}, 400, "invalid", "before"),
    ("GET", "/api/v1/me/calls?limit=--5", None, {}, 400, "invalid", "integer"),
    ("GET", "/api/v1/me/calls?limit=%D9%A3", None, {}, 400, "invalid", "integer"),
    ("GET", "/api/v1/me/calls?before=99999999999999999999999", None, {}, 400, "invalid", "before"),
    ("GET", "/api/v1/me/calls?page=2", None, {}, 400, "unknown_field", "page"),
    ("GET", "/api/v1/me/calls/abc", None, {}, 404, "not_found", "abc"),
    ("GET", "/api/v1/me/calls/0", None, {}, 404, "not_found", ""),
    ("GET", "/api/v1/me/blocklist?format=xml", None, {}, 400, "invalid", "csv"),
    ("DELETE", "/api/v1/me/blocklist/-3", None, {}, 404, "not_found", ""),
    ("PUT", "/api/v1/me/settings", {"strictness": 3}, {}, 400, "invalid", "strictness"),
    ("PUT", "/api/v1/me/settings", {"reject_code": 607.5}, {}, 400, "invalid", "reject_code"),
]


@pytest.mark.parametrize(("method", "path", "body", "headers", "status", "code", "text"), CASES)
async def test_bad_input(
    env: Env,
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str],
    status: int,
    code: str,
    text: str,
) -> None:
    kw: dict[str, Any] = {"headers": headers}
    if isinstance(body, bytes):
        kw["data"] = body
    elif body is not None:
        kw["json"] = body
    r = await env.call(method, path, "alice", **kw)
    assert r.content_type == "application/json"
    out = await r.json()
    assert r.status == status and out["error"] == code, out
    assert text in out["message"], out
    assert env.store.lists_for_user(env.users["alice"].id) == []


async def test_chunked_oversized_body_is_refused(env: Env) -> None:
    async def gen() -> Any:
        for _ in range(100):
            yield b" " * 1000

    r = await env.call(
        "POST",
        "/api/v1/me/blocklist",
        "alice",
        data=gen(),
        headers={"Content-Type": "application/json"},
    )
    assert r.status == 413 and (await r.json())["error"] == "too_large"
