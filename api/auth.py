"""Who is asking, and may they: bearer tokens, web sessions, roles, CSRF, login.

Theory of operation
-------------------
Every handler under ``/api/v1`` declares who may call it with :func:`roles` (or
:func:`public` / :func:`internal`); :func:`auth_middleware` runs before it and

1. identifies the caller: ``Authorization: Bearer swt_…`` (API tokens, checked against the
   store's in-memory directory of SHA-256 hashes), else the ``spitwall_session`` cookie the
   web page got from ``POST /api/v1/session``; nobody → 401 with ``WWW-Authenticate``;
2. for a cookie on a state-changing method, requires ``X-CSRF-Token`` to equal that
   session's token (403 ``csrf``): a cross-site page can make the browser send the cookie
   (SameSite=Strict already stops that in current browsers) but can never read the token;
3. checks the role (403 ``forbidden``). A handler that declares nothing is refused: being
   reachable must be a decision, not a default.

Unknown paths get 401 before 404, so the URL space is not mapped for strangers. Tokens and
cookies are never logged. Failed logins are limited per client address and per account name
(:class:`~api.sessions.LoginLimiter`); token and password checks cost the same whether or
not the account exists (the store's ``login`` spends the scrypt time either way).
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.web_urldispatcher import MatchInfoError

from reputation.users import Role, User

from .errors import ApiError, Handler
from .payload import field_str, read_json
from .sessions import Session
from .state import ApiState, state

COOKIE = "spitwall_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_ACCESS = "__spitwall_access__"
_USER = web.RequestKey("spitwall_user", User)
_SESSION = web.RequestKey("spitwall_session", Session)

F = TypeVar("F", bound=Callable[..., Any])


def roles(*allowed: Role) -> Callable[[F], F]:
    """Declare the roles that may call a handler."""

    def mark(fn: F) -> F:
        setattr(fn, _ACCESS, frozenset(allowed))
        return fn

    return mark


def public(fn: F) -> F:
    """Callable without authentication (login only)."""
    setattr(fn, _ACCESS, "public")
    return fn


def internal(fn: F) -> F:
    """Callable with the challenge process's shared-secret bearer token only."""
    setattr(fn, _ACCESS, "internal")
    return fn


ALL_ROLES = (Role.USER, Role.ADMIN, Role.AUDITOR)
SUBSCRIBERS = (Role.USER, Role.ADMIN)


def access_of(handler: object) -> object:
    return getattr(handler, _ACCESS, None)


def current_user(request: web.Request) -> User:
    user = request.get(_USER)
    if not isinstance(user, User):  # the middleware guarantees it for role-checked handlers
        raise ApiError(401, "unauthorized", "authentication required")
    return user


def unauthorized(message: str) -> ApiError:
    return ApiError(
        401,
        "unauthorized",
        message,
        headers={"WWW-Authenticate": 'Bearer realm="spitwall"'},
    )


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise unauthorized("Authorization must be 'Bearer <token>'")
    return value.strip()


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/api/"):
        return await handler(request)
    st = state(request)
    access = access_of(request.match_info.handler)
    if access == "public":
        return await handler(request)
    token = _bearer(request)
    if access == "internal":
        want = st.challenge_token
        if not want or token is None or not hmac.compare_digest(token.encode(), want.encode()):
            raise unauthorized("a valid internal bearer token is required")
        return await handler(request)
    now = st.clock()
    user: User | None = None
    if token is not None:
        user = st.store.authenticate(token, now)
        if user is None:
            raise unauthorized("invalid, expired or revoked token")
    else:
        raw = request.cookies.get(COOKIE)
        session = st.sessions.get(raw, now) if raw else None
        if session is not None:
            u = st.store.get_user(session.user_id)
            if u is None or u.disabled:
                st.sessions.drop(raw or "")
            else:
                user = u
                request[_SESSION] = session
                if request.method not in SAFE_METHODS and not st.sessions.csrf_ok(
                    session, request.headers.get(CSRF_HEADER)
                ):
                    raise ApiError(
                        403, "csrf", f"missing or wrong {CSRF_HEADER} header for this session"
                    )
        if user is None:
            raise unauthorized("authentication required (bearer token or session cookie)")
    request[_USER] = user
    if isinstance(request.match_info, MatchInfoError):
        return await handler(request)  # 404/405 for an authenticated caller
    if not isinstance(access, frozenset):
        raise ApiError(403, "forbidden", "this endpoint declares no access rule")
    if user.role not in access:
        raise ApiError(
            403,
            "forbidden",
            f"role {user.role.value!r} may not use this endpoint"
            f" (allowed: {', '.join(sorted(r.value for r in access))})",
        )
    return await handler(request)


# ---------------------------------------------------------------------------- login


def _client(request: web.Request, st: ApiState) -> str:
    if st.config.trust_forwarded_for:
        fwd = request.headers.get("X-Forwarded-For", "")
        first = fwd.split(",")[0].strip()
        if first:
            return first
    return request.remote or "unknown"


def _session_json(user: User, csrf: str) -> dict[str, Any]:
    return {"user": user.to_json(), "csrf": csrf}


@public
async def login(request: web.Request) -> web.Response:
    """``POST /api/v1/session``: ``{"token": …}`` or ``{"name": …, "password": …}``."""
    st = state(request)
    data = await read_json(request, st.config.max_json_bytes, allowed=("token", "name", "password"))
    token = field_str(data, "token", max_len=200)
    name = field_str(data, "name", max_len=64)
    password = field_str(data, "password", max_len=1024)
    if token and (name or password):
        raise ApiError(400, "invalid", "give either a token or a name and password, not both")
    if not token and not (name and password):
        raise ApiError(400, "invalid", "give a token, or a name and a password")
    now = st.clock()
    keys = [f"ip:{_client(request, st)}"] + ([f"name:{name.lower()}"] if name else [])
    wait = st.limiter.retry_after(keys, now)
    if wait is not None:
        raise ApiError(
            429,
            "rate_limited",
            f"too many failed logins; try again in {math.ceil(wait)} s",
            headers={"Retry-After": str(math.ceil(wait))},
        )
    user = st.store.authenticate(token, now) if token else await st.store.login(name, password)
    if user is None:
        st.limiter.failed(keys, now)
        raise ApiError(401, "login_failed", "wrong token, or wrong name or password")
    st.limiter.succeeded(keys)
    raw, session = st.sessions.create(user.id, now)
    resp = web.json_response(_session_json(user, session.csrf), status=201)
    resp.set_cookie(
        COOKIE,
        raw,
        max_age=int(st.config.session_ttl),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=st.config.cookie_secure,
    )
    return resp


@roles(*ALL_ROLES)
async def session_info(request: web.Request) -> web.Response:
    """``GET /api/v1/session``: who is logged in, and the CSRF token for this session."""
    user = current_user(request)
    session = request.get(_SESSION)
    return web.json_response(_session_json(user, session.csrf if session else ""))


@roles(*ALL_ROLES)
async def logout(request: web.Request) -> web.Response:
    """``DELETE /api/v1/session``: end the web session (a bearer token is unaffected)."""
    raw = request.cookies.get(COOKIE)
    if raw:
        state(request).sessions.drop(raw)
    resp = web.Response(status=204)
    resp.del_cookie(COOKIE, path="/")
    return resp
