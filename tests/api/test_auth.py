"""Authentication, roles, web sessions, CSRF, the login rate limit and security headers."""

from __future__ import annotations

import re

import pytest
from aiohttp import ClientSession, CookieJar

from api.app import routes

from .conftest import Env

API_ROUTES = [(r.method, "/api/v1" + r.path) for r in routes()]  # type: ignore[attr-defined]


def concrete(path: str) -> str:
    return path.replace("{kind}", "block").replace("{id}", "1")


async def test_every_route_needs_authentication(env: Env) -> None:
    for method, path in API_ROUTES:
        if path == "/api/v1/session" and method == "POST":
            continue  # the login endpoint itself
        for headers in (
            {},
            {"Authorization": "Bearer swt_not-a-real-token"},
            {"Authorization": "Basic YWxpY2U6eA=="},
        ):
            r = await env.call(method, concrete(path), headers=headers)
            body = await r.json()
            assert r.status == 401, (method, path, headers, body)
            assert body["error"] == "unauthorized" and body["message"]
            assert r.headers["WWW-Authenticate"].startswith("Bearer")


async def test_unknown_paths_401_before_404(env: Env) -> None:
    r = await env.call("GET", "/api/v1/nope")
    assert r.status == 401 and (await r.json())["error"] == "unauthorized"
    r = await env.call("GET", "/api/v1/nope", "alice")
    assert r.status == 404 and (await r.json())["error"] == "not_found"
    r = await env.call("PATCH", "/api/v1/me", "alice")
    body = await r.json()
    assert r.status == 405 and body["error"] == "method_not_allowed" and "GET" in body["message"]


ROLE_TABLE = [
    # (who, method, path, expected status)
    ("alice", "GET", "/api/v1/me", 200),
    ("audrey", "GET", "/api/v1/me", 200),
    ("root", "GET", "/api/v1/me/blocklist", 200),
    ("audrey", "GET", "/api/v1/me/blocklist", 403),
    ("audrey", "POST", "/api/v1/me/blocklist", 403),
    ("audrey", "PUT", "/api/v1/me/settings", 403),
    ("audrey", "POST", "/api/v1/admin/lists/block", 403),
    ("audrey", "POST", "/api/v1/admin/users", 403),
    ("audrey", "DELETE", "/api/v1/admin/users/1", 403),
    ("audrey", "GET", "/api/v1/audit/records", 200),
    ("root", "GET", "/api/v1/audit/records", 200),
    ("alice", "GET", "/api/v1/audit/records", 403),
    ("alice", "GET", "/api/v1/audit/export", 403),
    ("alice", "GET", "/api/v1/admin/users", 403),
    ("alice", "POST", "/api/v1/admin/lists/dno", 403),
    ("alice", "GET", "/api/v1/admin/stats", 403),
    ("alice", "POST", "/api/v1/internal/challenge-outcome", 401),
    ("root", "POST", "/api/v1/internal/challenge-outcome", 401),
    ("root", "GET", "/api/v1/admin/policy", 200),
]


@pytest.mark.parametrize(("who", "method", "path", "status"), ROLE_TABLE)
async def test_roles(env: Env, who: str, method: str, path: str, status: int) -> None:
    r = await env.call(method, path, who, json={})
    body = await r.text()
    assert r.status == status, body
    if status == 403:
        assert (await r.json())["error"] == "forbidden"


async def test_auditor_cannot_write_anything(env: Env) -> None:
    """Every state-changing route answers the auditor 403 (or 401 for the internal one)."""
    for method, path in API_ROUTES:
        if method == "GET" or path == "/api/v1/session":
            continue
        r = await env.call(method, concrete(path), "audrey", json={"number": "+15550001234"})
        assert r.status in (403, 401), (method, path, r.status)
    assert env.store.global_lists() == []
    assert env.store.lists_for_user(env.users["audrey"].id) == []


def cookie_header(set_cookie: str) -> dict[str, str]:
    attrs = {a.strip().split("=")[0].lower() for a in set_cookie.split(";")[1:]}
    return {"attrs": ",".join(sorted(attrs)), "line": set_cookie}


async def test_web_login_with_token_then_cookie_and_csrf(env: Env) -> None:
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as s:
        r = await s.post(env.url("/api/v1/session"), json={"token": env.tokens["alice"]})
        body = await r.json()
        assert r.status == 201 and body["user"]["name"] == "alice" and body["csrf"]
        sc = r.headers["Set-Cookie"]
        assert re.search(r"(?i)\bHttpOnly\b", sc) and re.search(r"(?i)SameSite=Strict", sc)
        assert "Path=/" in sc
        assert env.tokens["alice"] not in sc
        csrf = body["csrf"]
        r = await s.get(env.url("/api/v1/me"))
        assert r.status == 200 and (await r.json())["name"] == "alice"
        # A state-changing request with the cookie alone is refused.
        r = await s.post(env.url("/api/v1/me/blocklist"), json={"number": "+15551112222"})
        assert r.status == 403 and (await r.json())["error"] == "csrf"
        r = await s.post(
            env.url("/api/v1/me/blocklist"),
            json={"number": "+15551112222"},
            headers={"X-CSRF-Token": "wrong"},
        )
        assert r.status == 403
        r = await s.post(
            env.url("/api/v1/me/blocklist"),
            json={"number": "+15551112222"},
            headers={"X-CSRF-Token": csrf},
        )
        assert r.status == 201
        r = await s.get(env.url("/api/v1/session"))
        assert (await r.json())["csrf"] == csrf
        r = await s.delete(env.url("/api/v1/session"), headers={"X-CSRF-Token": csrf})
        assert r.status == 204
        r = await s.get(env.url("/api/v1/me"))
        assert r.status == 401


async def test_password_login_and_rate_limit(env: Env) -> None:
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as s:
        url = env.url("/api/v1/session")
        r = await s.post(url, json={"name": "bob", "password": "bob-password-1"})
        assert r.status == 201 and (await r.json())["user"]["name"] == "bob"
        for _ in range(3):  # login_max_failures = 3 in the test config
            r = await s.post(url, json={"name": "bob", "password": "wrong-password"})
            assert r.status == 401 and (await r.json())["error"] == "login_failed"
        r = await s.post(url, json={"name": "bob", "password": "bob-password-1"})
        body = await r.json()
        assert r.status == 429 and body["error"] == "rate_limited"
        assert 0 < int(r.headers["Retry-After"]) <= 60
        # Token logins from the same address are limited too (the address is the key).
        r = await s.post(url, json={"token": env.tokens["alice"]})
        assert r.status == 429
    # A bearer token on the API is unaffected by the login limiter.
    assert (await env.json("GET", "/api/v1/me", "alice"))["name"] == "alice"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"token": ""},
        {"name": "bob"},
        {"token": "x", "name": "bob", "password": "p"},
        {"token": 5},
        {"user": "bob", "password": "x"},
    ],
)
async def test_login_bad_requests(env: Env, body: dict[str, object]) -> None:
    r = await env.call("POST", "/api/v1/session", json=body)
    assert r.status == 400 and (await r.json())["error"] in ("invalid", "unknown_field")


async def test_disabled_or_deleted_user_loses_access(env: Env) -> None:
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as s:
        r = await s.post(env.url("/api/v1/session"), json={"token": env.tokens["bob"]})
        assert r.status == 201
        await env.json("DELETE", f"/api/v1/admin/users/{env.users['bob'].id}", "root", 204)
        r = await s.get(env.url("/api/v1/me"))
        assert r.status == 401
    r = await env.call("GET", "/api/v1/me", "bob")
    assert r.status == 401


async def test_security_headers_on_page_and_api(env: Env) -> None:
    r = await env.call("GET", "/")
    assert r.status == 200 and r.content_type == "text/html"
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    r = await env.call("GET", "/api/v1/me", "alice")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Cache-Control"] == "no-store"
    r = await env.call("GET", "/static/app.js")
    assert r.status == 200 and "javascript" in r.content_type
    r = await env.call("GET", "/static/../api/app.py")
    assert r.status in (403, 404)


async def test_tokens_and_cookies_never_reach_the_log(
    env: Env, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import logging

    caplog.set_level(logging.DEBUG)

    async def boom(*a: object, **k: object) -> object:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(env.store, "calls_for_user", boom)
    r = await env.call("GET", "/api/v1/me/calls", "alice")
    out = await r.json()
    assert r.status == 500 and out == {
        "error": "internal",
        "message": "internal error (logged on the server)",
    }
    await env.call("GET", "/api/v1/me", headers={"Authorization": "Bearer swt_guess"})
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as s:
        r = await s.post(env.url("/api/v1/session"), json={"token": env.tokens["bob"]})
        cookie = r.cookies["spitwall_session"].value
        await s.post(env.url("/api/v1/session"), json={"token": "swt_wrong"})
    assert "disk on fire" in caplog.text  # the failure itself is logged…
    for secret in (env.tokens["alice"], env.tokens["bob"], "swt_guess", "swt_wrong", cookie):
        assert secret not in caplog.text  # …but never a credential


async def test_every_route_every_role(env: Env) -> None:
    """The declared roles are enforced on every route: allowed roles get past auth (no 401,
    no 403), the others get 403. Destructive calls use ids that do not exist."""
    from api.auth import access_of

    who_by_role = {"user": "alice", "admin": "root", "auditor": "audrey"}
    for rd in routes():
        access = access_of(rd.handler)  # type: ignore[attr-defined]
        if access in ("public", "internal"):
            continue
        assert isinstance(access, frozenset), rd
        path = "/api/v1" + rd.path.replace("{kind}", "block").replace("{id}", "999999")  # type: ignore[attr-defined]
        for role, who in who_by_role.items():
            r = await env.call(rd.method, path, who, json={})  # type: ignore[attr-defined]
            allowed = any(a.value == role for a in access)
            if allowed:
                assert r.status not in (401, 403), (rd.method, path, role, await r.text())  # type: ignore[attr-defined]
            else:
                assert r.status == 403, (rd.method, path, role, r.status)  # type: ignore[attr-defined]
    # Nobody was deleted or changed along the way.
    assert len(env.store.users.all()) == 4
