"""The OpenAPI 3.1 document served at ``/api/v1/openapi.json``, written by hand.

Why by hand: the document is the contract clients code against, so it is reviewed like
code rather than derived from handler internals. ``tests/api/test_openapi.py`` checks that
every route of :func:`api.app.routes` is described here (and nothing more), so the two
cannot drift apart silently.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .auth import ALL_ROLES, roles

J = dict[str, Any]


def _ref(name: str) -> J:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: J) -> J:
    return {"content": {"application/json": {"schema": schema}}}


def _ok(description: str, schema: J | None = None, media: str = "application/json") -> J:
    r: J = {"description": description}
    if schema is not None:
        r["content"] = {media: {"schema": schema}}
    return r


ERR = _ok("error", _ref("Error"))
STD_ERRORS: J = {"400": ERR, "401": ERR, "403": ERR, "404": ERR, "413": ERR, "415": ERR}


def op(
    summary: str,
    responses: J,
    *,
    params: list[J] | None = None,
    body: J | None = None,
    roles_: str = "",
    tag: str = "",
) -> J:
    o: J = {
        "summary": summary,
        "description": f"Roles: {roles_}." if roles_ else summary,
        "responses": {**responses, **STD_ERRORS},
    }
    if tag:
        o["tags"] = [tag]
    if params:
        o["parameters"] = params
    if body is not None:
        o["requestBody"] = body
    return o


def q(name: str, schema: J, description: str = "") -> J:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def p(name: str, schema: J | None = None) -> J:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": schema or {"type": "integer", "minimum": 1},
    }


INT_PAGE = [
    q("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "page size"),
    q("before", {"type": "integer", "minimum": 1}, "the `next` value of the previous page"),
]
TIME = {"type": "string", "description": "UNIX seconds or ISO 8601 (naive = UTC)"}

SCHEMAS: J = {
    "Error": {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string"},
            "message": {"type": "string"},
            "field": {"type": "string"},
        },
    },
    "User": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "role": {"enum": ["user", "admin", "auditor"]},
            "tns": {"type": "array", "items": {"type": "string"}},
            "created": {"type": "number"},
            "disabled": {"type": "boolean"},
        },
    },
    "ListEntry": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "scope": {"enum": ["user", "global"]},
            "user_id": {"type": ["integer", "null"]},
            "kind": {"enum": ["block", "allow", "dno"]},
            "number": {"type": "string", "description": "+E164 or +prefix*"},
            "prefix": {"type": "boolean"},
            "note": {"type": "string"},
            "source": {"type": "string"},
            "created": {"type": "number"},
            "expires": {"type": ["number", "null"]},
        },
    },
    "NewListEntry": {
        "type": "object",
        "additionalProperties": False,
        "required": ["number"],
        "properties": {
            "number": {"type": "string", "examples": ["+15551234567", "+1900*"]},
            "note": {"type": "string", "maxLength": 500},
            "expires": {
                "type": ["number", "string", "null"],
                "description": "UNIX seconds or ISO 8601; must be in the future",
            },
        },
    },
    "CsvReport": {
        "type": "object",
        "properties": {
            "imported": {"type": "integer"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"line": {"type": "integer"}, "reason": {"type": "string"}},
                },
            },
        },
    },
    "Settings": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "monitor": {"type": ["boolean", "null"]},
            "strictness": {"enum": ["lenient", "normal", "strict", None]},
            "anonymous": {"enum": ["forward", "challenge", "voicemail", "reject", None]},
            "band_actions": {
                "type": ["object", "null"],
                "description": "band (ok|suspicious|likely|spam|certain) → action",
                "additionalProperties": {
                    "enum": ["forward", "forward_tagged", "challenge", "voicemail", "reject"]
                },
            },
            "reject_code": {"enum": [603, 607, 608, None]},
            "learn_allow": {"type": ["boolean", "null"]},
            "voicemail_on_fail": {
                "type": ["boolean", "null"],
                "description": "offer voicemail after a failed or timed-out challenge",
            },
            "greeting": {"type": ["string", "null"], "description": "read-only (upload a WAV)"},
        },
    },
    "Call": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "call_id": {"type": "string"},
            "time": {"type": "number"},
            "caller": {"type": ["string", "null"]},
            "callee": {"type": "string"},
            "verstat": {"type": ["string", "null"]},
            "attest": {"type": ["string", "null"]},
            "score": {"type": ["number", "null"]},
            "reasons": {"type": "array", "items": {"type": "object"}},
            "action": {"type": "string"},
            "outcome": {"type": ["string", "null"]},
            "report": {"type": ["string", "null"]},
        },
    },
    "Voicemail": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "caller": {"type": ["string", "null"]},
            "time": {"type": "number"},
            "duration": {"type": "number"},
            "size": {"type": "integer"},
            "heard": {"type": "boolean"},
        },
    },
    "AuditRecord": {"type": "object", "description": "every column of the log's records table"},
}

USER, SUB, ADMIN, AUD = "user, admin, auditor", "user, admin", "admin", "auditor, admin"
LIST_BODY: J = {
    "required": True,
    "content": {
        "application/json": {"schema": _ref("NewListEntry")},
        "text/csv": {
            "schema": {"type": "string"},
            "example": "number,note,expires\n+15551234567,robocaller,\n",
        },
    },
}


def _list_ops(tag: str, roles_: str, kinds: str, path_params: list[J]) -> tuple[J, J]:
    coll = {
        "parameters": path_params,
        "get": op(
            f"the {kinds} entries (JSON, or CSV with format=csv)",
            {
                "200": {
                    "description": "entries",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "entries": {"type": "array", "items": _ref("ListEntry")}
                                },
                            }
                        },
                        "text/csv": {"schema": {"type": "string"}},
                    },
                }
            },
            params=[q("format", {"enum": ["json", "csv"]})],
            roles_=roles_,
            tag=tag,
        ),
        "post": op(
            "add one entry (JSON) or import many (text/csv: a per-line report)",
            {
                "201": _ok("created", _ref("ListEntry")),
                "200": _ok(
                    "updated entry or CSV report", {"oneOf": [_ref("ListEntry"), _ref("CsvReport")]}
                ),
            },
            body=LIST_BODY,
            roles_=roles_,
            tag=tag,
        ),
    }
    one = {
        "parameters": [*path_params, p("id")],
        "delete": op(
            "delete an entry", {"204": {"description": "deleted"}}, roles_=roles_, tag=tag
        ),
    }
    return coll, one


def build() -> J:
    kind_param = p("kind", {"enum": ["block", "allow", "dno"]})
    me_block, me_block_one = _list_ops("me", SUB, "block list", [])
    me_allow, me_allow_one = _list_ops("me", SUB, "allow list", [])
    adm_list, adm_list_one = _list_ops("admin", ADMIN, "global list", [kind_param])
    paths: J = {
        "/session": {
            "post": {
                **op(
                    "log in (token, or name and password) → session cookie + CSRF token",
                    {"201": _ok("logged in", {"type": "object"})},
                    body={
                        "required": True,
                        **_json(
                            {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {
                                    "token": {"type": "string"},
                                    "name": {"type": "string"},
                                    "password": {"type": "string"},
                                },
                            }
                        ),
                    },
                    tag="session",
                ),
                "security": [],
            },
            "get": op(
                "the logged-in user and the session's CSRF token",
                {"200": _ok("session", {"type": "object"})},
                roles_=USER,
                tag="session",
            ),
            "delete": op(
                "log out", {"204": {"description": "logged out"}}, roles_=USER, tag="session"
            ),
        },
        "/openapi.json": {
            "get": op(
                "this document", {"200": _ok("OpenAPI 3.1", {"type": "object"})}, roles_=USER
            ),
        },
        "/me": {
            "get": op("your profile", {"200": _ok("profile", _ref("User"))}, roles_=USER, tag="me")
        },
        "/me/blocklist": me_block,
        "/me/blocklist/{id}": me_block_one,
        "/me/allowlist": me_allow,
        "/me/allowlist/{id}": me_allow_one,
        "/me/settings": {
            "get": op(
                "your settings, the defaults in effect, bands and actions",
                {"200": _ok("settings", {"type": "object"})},
                roles_=SUB,
                tag="me",
            ),
            "put": op(
                "replace your settings (absent keys: deployment default)",
                {"200": _ok("settings", {"type": "object"})},
                body={"required": True, **_json(_ref("Settings"))},
                roles_=SUB,
                tag="me",
            ),
        },
        "/me/greeting": {
            "get": op(
                "your voicemail greeting (WAV)",
                {"200": _ok("WAV", {"type": "string", "format": "binary"}, "audio/wav")},
                roles_=SUB,
                tag="me",
            ),
            "put": op(
                "upload a greeting: 16-bit mono PCM WAV, 8 or 16 kHz, size-capped",
                {"201": _ok("stored", {"type": "object"})},
                body={
                    "required": True,
                    "content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}},
                },
                roles_=SUB,
                tag="me",
            ),
            "delete": op(
                "remove your greeting", {"204": {"description": "removed"}}, roles_=SUB, tag="me"
            ),
        },
        "/me/calls": {
            "get": op(
                "your calls, newest first (verdict, score, reasons, action, outcome)",
                {
                    "200": _ok(
                        "a page",
                        {
                            "type": "object",
                            "properties": {
                                "calls": {"type": "array", "items": _ref("Call")},
                                "next": {"type": ["integer", "null"]},
                            },
                        },
                    )
                },
                params=INT_PAGE,
                roles_=SUB,
                tag="me",
            ),
        },
        "/me/calls/{id}": {
            "parameters": [p("id")],
            "get": op(
                "one of your calls", {"200": _ok("call", _ref("Call"))}, roles_=SUB, tag="me"
            ),
        },
        "/me/calls/{id}/report": {
            "parameters": [p("id")],
            "post": op(
                "report a call as spam or not spam",
                {"200": _ok("recorded", {"type": "object"})},
                body={
                    "required": True,
                    **_json(
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["spam"],
                            "properties": {"spam": {"type": "boolean"}},
                        }
                    ),
                },
                roles_=SUB,
                tag="me",
            ),
        },
        "/me/voicemails": {
            "get": op(
                "your voicemails, newest first",
                {
                    "200": _ok(
                        "a page",
                        {
                            "type": "object",
                            "properties": {
                                "voicemails": {"type": "array", "items": _ref("Voicemail")},
                                "next": {"type": ["integer", "null"]},
                            },
                        },
                    )
                },
                params=INT_PAGE,
                roles_=SUB,
                tag="me",
            ),
        },
        "/me/voicemails/{id}": {
            "parameters": [p("id")],
            "delete": op(
                "delete a voicemail", {"204": {"description": "deleted"}}, roles_=SUB, tag="me"
            ),
        },
        "/me/voicemails/{id}/audio": {
            "parameters": [p("id")],
            "get": op(
                "the recording (WAV, streamed; marks it heard)",
                {"200": _ok("WAV", {"type": "string", "format": "binary"}, "audio/wav")},
                roles_=SUB,
                tag="me",
            ),
        },
        "/admin/lists/{kind}": adm_list,
        "/admin/lists/{kind}/{id}": adm_list_one,
        "/admin/users": {
            "get": op(
                "all accounts", {"200": _ok("users", {"type": "object"})}, roles_=ADMIN, tag="admin"
            ),
            "post": op(
                "create an account; the response holds its API token (shown once)",
                {"201": _ok("created", {"type": "object"}), "409": ERR},
                body={
                    "required": True,
                    **_json(
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["name", "role"],
                            "properties": {
                                "name": {"type": "string"},
                                "role": {"enum": ["user", "admin", "auditor"]},
                                "tns": {"type": "array", "items": {"type": "string"}},
                                "password": {"type": "string"},
                            },
                        }
                    ),
                },
                roles_=ADMIN,
                tag="admin",
            ),
        },
        "/admin/users/{id}": {
            "parameters": [p("id")],
            "get": op("one account", {"200": _ok("user", _ref("User"))}, roles_=ADMIN, tag="admin"),
            "delete": op(
                "delete an account and all its data",
                {"204": {"description": "deleted"}, "409": ERR},
                roles_=ADMIN,
                tag="admin",
            ),
        },
        "/admin/users/{id}/tns": {
            "parameters": [p("id")],
            "put": op(
                "replace the numbers an account owns",
                {"200": _ok("user", _ref("User")), "409": ERR},
                body={
                    "required": True,
                    **_json(
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["tns"],
                            "properties": {"tns": {"type": "array", "items": {"type": "string"}}},
                        }
                    ),
                },
                roles_=ADMIN,
                tag="admin",
            ),
        },
        "/admin/policy": {
            "get": op(
                "the default policy, weights and pattern thresholds in effect",
                {"200": _ok("policy", {"type": "object"}), "503": ERR},
                roles_=ADMIN,
                tag="admin",
            ),
        },
        "/admin/stats": {
            "get": op(
                "live counters (accounts, lists, writer, metrics)",
                {"200": _ok("counters", {"type": "object"})},
                roles_=ADMIN,
                tag="admin",
            ),
        },
        "/audit/records": {
            "get": op(
                "search the attestation log, newest first",
                {
                    "200": _ok(
                        "a page",
                        {
                            "type": "object",
                            "properties": {
                                "records": {"type": "array", "items": _ref("AuditRecord")},
                                "next_cursor": {"type": ["string", "null"]},
                            },
                        },
                    ),
                    "503": ERR,
                },
                params=[
                    q("since", TIME),
                    q("until", TIME, "exclusive"),
                    q("orig", {"type": "string"}, "caller TN or prefix*"),
                    q("dest", {"type": "string"}, "called TN or prefix*"),
                    q("attest", {"type": "string"}),
                    q("verstat", {"type": "string"}),
                    q("reason", {"type": "string"}),
                    q("action", {"type": "string"}),
                    q("spc", {"type": "string"}),
                    q("origid", {"type": "string"}),
                    q("call_id", {"type": "string"}),
                    q("kind", {"type": "string"}),
                    q("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
                    q("cursor", {"type": "string"}),
                ],
                roles_=AUD,
                tag="audit",
            ),
        },
        "/audit/records/{id}": {
            "parameters": [p("id")],
            "get": op(
                "one record in full (Identity header, PASSporT, certificate)",
                {"200": _ok("record", _ref("AuditRecord")), "503": ERR},
                roles_=AUD,
                tag="audit",
            ),
        },
        "/audit/export": {
            "get": op(
                "stream every record in [since, until) as JSON lines or CSV",
                {
                    "200": {
                        "description": "the records",
                        "content": {
                            "application/x-ndjson": {"schema": {"type": "string"}},
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                    "503": ERR,
                },
                params=[
                    q("format", {"enum": ["jsonl", "csv"]}),
                    q("since", TIME),
                    q("until", TIME),
                ],
                roles_=AUD,
                tag="audit",
            ),
        },
        "/audit/verify": {
            "get": op(
                "verify the whole hash chain and the signed checkpoints",
                {"200": _ok("result", {"type": "object"}), "503": ERR},
                roles_=AUD,
                tag="audit",
            ),
        },
        "/audit/stats": {
            "get": op(
                "traffic statistics: by day/hour, attestation, verstat, action, top spam sources",
                {"200": _ok("statistics", {"type": "object"}), "503": ERR},
                params=[
                    q("since", TIME),
                    q("until", TIME),
                    q("top", {"type": "integer", "minimum": 1, "maximum": 1000}),
                ],
                roles_=AUD,
                tag="audit",
            ),
        },
        "/internal/challenge-outcome": {
            "post": {
                **op(
                    "challenge/voicemail outcome from the challenge UA (shared-secret bearer)",
                    {"200": _ok("applied", {"type": "object"})},
                    body={"required": True, **_json({"type": "object"})},
                    tag="internal",
                ),
                "security": [{"internal": []}],
            },
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "spitwall API",
            "version": "1",
            "description": "Subscribers (/me), operators (/admin), auditors (/audit). Errors "
            'are JSON {"error": code, "message": text}. Authenticate with '
            "'Authorization: Bearer <token>' or the web session cookie plus X-CSRF-Token.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "spitwall_session"},
                "internal": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "the challenge report token",
                },
            },
        },
    }


DOCUMENT = build()


@roles(*ALL_ROLES)
async def document(request: web.Request) -> web.Response:
    return web.json_response(DOCUMENT)
