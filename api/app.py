"""The API's app factory: ``build_api(...)`` returns the extension the runtime calls with the
shared aiohttp Application (the one that also serves ``/metrics`` and ``/healthz``).

Layout: the JSON API is a sub-application mounted at ``/api/v1`` with its own middlewares
(errors as JSON outermost, then authentication and roles); the web page (``/`` and
``/static/…``) is served by the root application without authentication — it holds no data,
it only calls the API. Security headers are added to every response of the shared app by an
``on_response_prepare`` hook (the page's CSP forbids inline script and any origin but ours).

Wiring (the composition root)::

    ext = build_api(store, AuditReader(audit_db_path(cfg.attestation, cfg.data_dir)),
                    cfg.http, data_dir=cfg.data_dir, reputation=cfg.reputation,
                    challenge_token=report_token, registry=runtime.registry)
    Runtime(cfg, extensions=[ext], ...)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from attestation.audit import AuditReader
from reputation.config import ReputationConfig
from reputation.store import Store

from . import admin, audit, auth, internal, me, openapi, voicemail
from .auth import auth_middleware
from .config import HttpConfig
from .errors import error_middleware
from .state import STATE, ApiState, ChallengePass

STATIC_DIR = Path(__file__).parent / "static"
PREFIX = "/api/v1"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


def routes() -> list[web.RouteDef]:
    """Every API route, relative to ``/api/v1`` (the OpenAPI test walks this list)."""
    r = web
    return [
        r.post("/session", auth.login),
        r.get("/session", auth.session_info),
        r.delete("/session", auth.logout),
        r.get("/openapi.json", openapi.document),
        r.get("/me", me.profile),
        r.get("/me/blocklist", me.block_get),
        r.post("/me/blocklist", me.block_post),
        r.delete("/me/blocklist/{id}", me.block_delete),
        r.get("/me/allowlist", me.allow_get),
        r.post("/me/allowlist", me.allow_post),
        r.delete("/me/allowlist/{id}", me.allow_delete),
        r.get("/me/settings", me.settings_get),
        r.put("/me/settings", me.settings_put),
        r.get("/me/greeting", me.greeting_get),
        r.put("/me/greeting", me.greeting_put),
        r.delete("/me/greeting", me.greeting_delete),
        r.get("/me/calls", me.calls),
        r.get("/me/calls/{id}", me.call_get),
        r.post("/me/calls/{id}/report", me.call_report),
        r.get("/me/voicemails", voicemail.voicemails),
        r.get("/me/voicemails/{id}/audio", voicemail.voicemail_audio),
        r.delete("/me/voicemails/{id}", voicemail.voicemail_delete),
        r.get("/admin/lists/{kind}", admin.lists_get),
        r.post("/admin/lists/{kind}", admin.lists_post),
        r.delete("/admin/lists/{kind}/{id}", admin.lists_delete),
        r.get("/admin/users", admin.users_list),
        r.post("/admin/users", admin.users_create),
        r.get("/admin/users/{id}", admin.user_get),
        r.delete("/admin/users/{id}", admin.user_delete),
        r.put("/admin/users/{id}/tns", admin.user_set_tns),
        r.get("/admin/policy", admin.policy),
        r.get("/admin/stats", admin.stats),
        r.get("/audit/records", audit.records),
        r.get("/audit/records/{id}", audit.record),
        r.get("/audit/export", audit.export),
        r.get("/audit/verify", audit.verify),
        r.get("/audit/stats", audit.stats),
        r.post("/internal/challenge-outcome", internal.challenge_outcome),
    ]


def api_app(st: ApiState) -> web.Application:
    """The ``/api/v1`` sub-application on its own (tests may mount it directly)."""
    app = web.Application(middlewares=[error_middleware, auth_middleware])
    app[STATE] = st
    app.router.add_routes(routes())
    return app


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    h = response.headers
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("Referrer-Policy", "no-referrer")
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Content-Security-Policy", CSP)
    h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    h.setdefault("Cross-Origin-Resource-Policy", "same-origin")
    if request.path.startswith("/api/"):
        h.setdefault("Cache-Control", "no-store")


def setup_api(app: web.Application, st: ApiState) -> None:
    """Mount the API and the web page on ``app`` (the shared runtime application)."""
    app.add_subapp(PREFIX, api_app(st))
    app.router.add_get("/", _index)
    app.router.add_static("/static/", STATIC_DIR, show_index=False, follow_symlinks=False)
    app.on_response_prepare.append(_security_headers)


def build_api(
    store: Store,
    audit_reader: AuditReader | None,
    config: HttpConfig,
    *,
    data_dir: Path,
    reputation: ReputationConfig | None = None,
    challenge_token: str | None = None,
    audit_keys: Sequence[Any] = (),
    registry: Any = None,
    on_challenge_pass: ChallengePass | None = None,
    clock: Callable[[], float] = time.time,
) -> Callable[[web.Application], None]:
    """The runtime extension that adds the API and the web page to the shared app.

    ``store``: the open reputation :class:`Store` (bound to the serving loop);
    ``audit_reader``: read-only access to the attestation log (None: audit endpoints 503);
    ``challenge_token``: bearer token of ``POST /api/v1/internal/challenge-outcome`` (the
    ``[challenge] report_token``, or ``passtoken.derive(secret, "challenge-report")``; None
    disables the endpoint); ``audit_keys``: Ed25519 public keys for checkpoint verification;
    ``registry``: the Prometheus registry /admin/stats samples; ``on_challenge_pass``:
    called with (caller, callee, remember_until) when a caller passes a challenge.
    """
    st = ApiState(
        store=store,
        config=config,
        data_dir=Path(data_dir),
        audit=audit_reader,
        audit_keys=tuple(audit_keys),
        reputation=reputation,
        challenge_token=challenge_token or None,
        registry=registry,
        on_challenge_pass=on_challenge_pass,
        clock=clock,
    )

    def extend(app: web.Application) -> None:
        setup_api(app, st)

    return extend
