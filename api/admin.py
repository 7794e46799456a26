"""Operator endpoints (``/api/v1/admin/…``, role ``admin``): global and Do-Not-Originate
lists, accounts and their numbers, the policy in effect, live counters."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from aiohttp import web

from reputation.lists import Invalid, ListKind
from reputation.users import Role, check_role, parse_tn

from . import lists
from .auth import current_user, roles
from .errors import ApiError, bad_request, invalid, not_found
from .me import sync_greeting
from .payload import field_str, path_id, read_json
from .state import state


def _kind(request: web.Request) -> ListKind:
    text = request.match_info["kind"]
    try:
        return ListKind(text)
    except ValueError:
        raise not_found(f"no list {text[:20]!r} (lists: block, allow, dno)") from None


@roles(Role.ADMIN)
async def lists_get(request: web.Request) -> web.StreamResponse:
    return await lists.list_entries(request, None, _kind(request))


@roles(Role.ADMIN)
async def lists_post(request: web.Request) -> web.Response:
    return await lists.add_entries(request, None, _kind(request))


@roles(Role.ADMIN)
async def lists_delete(request: web.Request) -> web.Response:
    return await lists.delete_entry(request, None, _kind(request))


# ---------------------------------------------------------------------------- users


@roles(Role.ADMIN)
async def users_list(request: web.Request) -> web.Response:
    st = state(request)
    return web.json_response({"users": [u.to_json() for u in st.store.users.all()]})


def _tns(data: dict[str, Any]) -> list[str]:
    v = data.get("tns", [])
    if not isinstance(v, list) or len(v) > 1000 or not all(isinstance(x, str) for x in v):
        raise bad_request("tns: expected an array of E.164 numbers (strings)", field="tns")
    return list(v)


@roles(Role.ADMIN)
async def users_create(request: web.Request) -> web.Response:
    """Create an account; the response holds its first API token, the only time it is shown."""
    st = state(request)
    data = await read_json(
        request,
        st.config.max_json_bytes,
        allowed=("name", "role", "tns", "password"),
        required=("name", "role"),
    )
    name = field_str(data, "name", max_len=64)
    role = check_role(data["role"]) if isinstance(data["role"], str) else None
    if role is None:
        raise bad_request("role: expected a string (user, admin or auditor)", field="role")
    if isinstance(role, Invalid):
        raise invalid(role)
    password = data.get("password")
    if password is not None and not isinstance(password, str):
        raise bad_request("password: expected a string", field="password")
    result = await st.store.add_user(name, role, tns=_tns(data), password=password, now=st.clock())
    if isinstance(result, Invalid):
        status = 409 if "taken" in result.message or "belongs" in result.message else 400
        raise ApiError(status, "conflict" if status == 409 else "invalid", str(result))
    user, token = result
    return web.json_response({"user": user.to_json(), "token": token}, status=201)


@roles(Role.ADMIN)
async def user_get(request: web.Request) -> web.Response:
    st = state(request)
    uid = path_id(request)
    u = st.store.get_user(uid)
    if u is None:
        raise not_found(f"no user {uid}")
    out = u.to_json()
    out["settings"] = st.store.settings(uid).to_json()
    return web.json_response(out)


@roles(Role.ADMIN)
async def user_delete(request: web.Request) -> web.Response:
    st = state(request)
    uid = path_id(request)
    if uid == current_user(request).id:
        raise ApiError(409, "conflict", "an administrator cannot delete their own account")
    old = st.store.get_user(uid)
    if old is None or not await st.store.delete_user(uid):
        raise not_found(f"no user {uid}")
    st.sessions.drop_user(uid)
    sync_greeting(st, uid, old.tns)
    return web.Response(status=204)


@roles(Role.ADMIN)
async def user_set_tns(request: web.Request) -> web.Response:
    """Replace the numbers a user owns (``{"tns": ["+1…", …]}``)."""
    st = state(request)
    uid = path_id(request)
    data = await read_json(request, st.config.max_json_bytes, allowed=("tns",), required=("tns",))
    wanted = _tns(data)
    u = st.store.get_user(uid)
    if u is None:
        raise not_found(f"no user {uid}")
    digits: list[str] = []
    for i, tn in enumerate(wanted):
        d = parse_tn(tn, f"tns[{i}]")
        if isinstance(d, Invalid):
            raise invalid(d)
        owner = st.store.user_for_tn(d)
        if owner is not None and owner.id != uid:
            raise ApiError(409, "conflict", f"tns[{i}]: +{d} already belongs to another user")
        digits.append(d)
    for d in u.tns:
        if d not in digits:
            r = await st.store.remove_number(uid, d)
            if isinstance(r, Invalid):
                raise invalid(r)
    for d in digits:
        r = await st.store.add_number(uid, d, now=st.clock())
        if isinstance(r, Invalid):
            raise invalid(r)
    sync_greeting(st, uid, u.tns)
    nu = st.store.get_user(uid)
    assert nu is not None
    return web.json_response(nu.to_json())


# ---------------------------------------------------------------------------- policy, stats


@roles(Role.ADMIN)
async def policy(request: web.Request) -> web.Response:
    rep = state(request).reputation
    if rep is None:
        raise ApiError(503, "unavailable", "the reputation configuration was not provided")
    return web.json_response(
        {
            "policy": _plain(dataclasses.asdict(rep.policy)),
            "weights": _plain(dataclasses.asdict(rep.weights)),
            "patterns": _plain(dataclasses.asdict(rep.patterns)),
            "signals": _plain(dataclasses.asdict(rep.signals)),
        }
    )


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if isinstance(v, str | int | float | bool) or v is None:
        return v
    return str(v)


def _metrics(registry: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    if registry is None:
        return out
    for metric in registry.collect():
        for s in metric.samples:
            if s.name.endswith(("_bucket", "_created")):
                continue
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            key = f"{s.name}{{{labels}}}" if labels else s.name
            value = float(s.value)
            out[key] = value if value == value and abs(value) != float("inf") else 0.0
    return out


@roles(Role.ADMIN)
async def stats(request: web.Request) -> web.Response:
    st = state(request)
    store = st.store
    users = store.users.all()
    by_role = {r.value: sum(1 for u in users if u.role is r) for r in Role}
    entries = {"user": {k.value: 0 for k in ListKind}, "global": {k.value: 0 for k in ListKind}}
    for k in ListKind:
        entries["global"][k.value] = len(store.global_lists(k))
        entries["user"][k.value] = sum(len(store.lists_for_user(u.id, k)) for u in users)
    commits, failures = store.writer_stats
    audit_records = None
    if st.audit is not None:
        try:
            audit_records = await asyncio.to_thread(st.audit.count)
        except Exception:  # an unreadable log is reported by /audit/verify, not here
            audit_records = None
    return web.json_response(
        {
            "time": st.clock(),
            "users": {"total": len(users), "by_role": by_role},
            "list_entries": entries,
            "store": {"writer_commits": commits, "writer_failures": failures},
            "sessions": len(st.sessions),
            "audit_records": audit_records,
            "metrics": _metrics(st.registry),
        }
    )
