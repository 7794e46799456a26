"""Errors as JSON: one exception family carrying the status to answer with, one middleware.

Why: every client (the web page, scripts, schemathesis) gets the same shape,
``{"error": "<code>", "message": "<what was wrong, naming the field or line>"}``, with the
right 4xx status; nothing under ``/api/`` ever answers with aiohttp's HTML error pages, and an
unexpected exception becomes a logged 500 without a traceback leaking to the client.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from reputation.lists import Invalid

log = logging.getLogger("spitwall.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """Answer with ``status`` and ``{"error": code, "message": message, **extra}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra

    def response(self) -> web.Response:
        body = {"error": self.code, "message": self.message, **self.extra}
        return web.json_response(body, status=self.status, headers=self.headers)


def bad_request(message: str, code: str = "invalid", **extra: Any) -> ApiError:
    return ApiError(400, code, message, **extra)


def invalid(value: Invalid) -> ApiError:
    """A store/validation failure value → 400 naming the field."""
    return ApiError(400, "invalid", str(value), field=value.field)


def not_found(what: str = "no such resource") -> ApiError:
    return ApiError(404, "not_found", what)


def too_large(limit: int, what: str = "request body") -> ApiError:
    return ApiError(413, "too_large", f"{what} is larger than the limit of {limit} bytes")


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "timeout",
    409: "conflict",
    411: "length_required",
    413: "too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
}


def _from_http(exc: web.HTTPException) -> ApiError:
    code = _STATUS_CODES.get(exc.status, "error")
    message = exc.reason or code
    if exc.status == 404:
        message = "no such endpoint"
    elif exc.status == 405:
        allowed = sorted(getattr(exc, "allowed_methods", ()) or ())
        message = f"method not allowed here (allowed: {', '.join(allowed)})"
        return ApiError(405, code, message, headers={"Allow": ", ".join(allowed)})
    elif exc.status == 413:
        message = "request body too large"
    return ApiError(exc.status, code, message)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Under ``/api/``: ApiError and aiohttp's HTTP errors → JSON; crashes → logged 500."""
    if not request.path.startswith("/api/"):
        return await handler(request)
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _from_http(exc).response()
    except Exception:
        # Never the headers: they may carry a bearer token or a session cookie.
        log.exception("unhandled error in %s %s", request.method, request.path)
        return ApiError(500, "internal", "internal error (logged on the server)").response()
