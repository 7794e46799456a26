"""Operator endpoints: global and DNO lists (with bulk CSV), users, policy, live counters."""

from __future__ import annotations

import time

import pytest

from reputation.lists import ListKind, ListScope

from .conftest import Env


@pytest.mark.parametrize("kind", ["block", "allow", "dno"])
async def test_global_lists(env: Env, kind: str) -> None:
    e = await env.json(
        "POST", f"/api/v1/admin/lists/{kind}", "root", 201, json={"number": "+18005550100"}
    )
    assert e["scope"] == "global" and e["kind"] == kind and e["user_id"] is None
    assert e["source"] == "admin"
    hit = env.store.match(env.users["alice"].id, "18005550100", time.time())
    assert hit is not None and hit.scope is ListScope.GLOBAL and hit.kind is ListKind(kind)
    listing = await env.json("GET", f"/api/v1/admin/lists/{kind}", "root")
    assert [x["id"] for x in listing["entries"]] == [e["id"]]
    # Subscribers never see global entries in their own lists.
    assert (await env.json("GET", "/api/v1/me/blocklist", "alice"))["entries"] == []
    r = await env.call("DELETE", f"/api/v1/admin/lists/{kind}/{e['id']}", "root")
    assert r.status == 204
    assert env.store.match(None, "18005550100", time.time()) is None


async def test_dno_bulk_import(env: Env) -> None:
    rows = "\n".join(f"+1800555{i:04d},IRS inbound only" for i in range(500))
    r = await env.call(
        "POST",
        "/api/v1/admin/lists/dno",
        "root",
        data=f"number,note\n{rows}\n+1800x,bad\n".encode(),
        headers={"Content-Type": "text/csv"},
    )
    out = await r.json()
    assert r.status == 200 and out["imported"] == 500
    assert out["errors"] == [{"line": 502, "reason": out["errors"][0]["reason"]}]
    assert len(env.store.global_lists(ListKind.DNO)) == 500
    hit = env.store.match(None, "18005550499", time.time())
    assert hit is not None and hit.kind is ListKind.DNO
    r = await env.call("GET", "/api/v1/admin/lists/dno?format=csv", "root")
    assert (await r.text()).count("\n") == 501


async def test_unknown_list_kind(env: Env) -> None:
    r = await env.call("GET", "/api/v1/admin/lists/grey", "root")
    assert r.status == 404 and "grey" in (await r.json())["message"]


async def test_users_create_list_tns_delete(env: Env) -> None:
    out = await env.json(
        "POST",
        "/api/v1/admin/users",
        "root",
        201,
        json={"name": "carol", "role": "user", "tns": ["+15550003333"], "password": "carolpass1"},
    )
    token = out["token"]
    assert token.startswith("swt_") and out["user"]["tns"] == ["+15550003333"]
    env.tokens["carol"] = token
    assert (await env.json("GET", "/api/v1/me", "carol"))["name"] == "carol"
    names = [u["name"] for u in (await env.json("GET", "/api/v1/admin/users", "root"))["users"]]
    assert names == ["alice", "bob", "root", "audrey", "carol"]
    uid = out["user"]["id"]
    u = await env.json(
        "PUT",
        f"/api/v1/admin/users/{uid}/tns",
        "root",
        json={"tns": ["+15550004444", "+1 555 000 5555"]},
    )
    assert u["tns"] == ["+15550004444", "+15550005555"]
    assert env.store.user_for_tn("15550003333") is None
    assert env.store.user_for_tn("15550004444").id == uid  # type: ignore[union-attr]
    r = await env.call(
        "PUT",
        f"/api/v1/admin/users/{uid}/tns",
        "root",
        json={"tns": [f"+{env.users['alice'].tns[0]}"]},
    )
    assert r.status == 409
    one = await env.json("GET", f"/api/v1/admin/users/{uid}", "root")
    assert one["name"] == "carol" and one["settings"] == {}
    # Duplicates and bad input
    r = await env.call(
        "POST", "/api/v1/admin/users", "root", json={"name": "carol", "role": "user"}
    )
    assert r.status == 409 and "taken" in (await r.json())["message"]
    r = await env.call("POST", "/api/v1/admin/users", "root", json={"name": "x", "role": "god"})
    assert r.status == 400 and (await r.json())["field"] == "role"
    r = await env.call(
        "POST", "/api/v1/admin/users", "root", json={"name": "y", "role": "user", "tns": "+1555"}
    )
    assert r.status == 400 and (await r.json())["field"] == "tns"
    r = await env.call("DELETE", f"/api/v1/admin/users/{uid}", "root")
    assert r.status == 204
    assert (await env.call("GET", "/api/v1/me", "carol")).status == 401
    assert (await env.call("GET", f"/api/v1/admin/users/{uid}", "root")).status == 404
    r = await env.call("DELETE", f"/api/v1/admin/users/{env.users['root'].id}", "root")
    assert r.status == 409


async def test_policy_and_stats(env: Env) -> None:
    p = await env.json("GET", "/api/v1/admin/policy", "root")
    assert p["policy"]["reject_at"] == 90.0 and p["policy"]["action_certain"] == "reject"
    assert "list_user_block" in p["weights"] and "rate_minute" in p["patterns"]
    await env.json("POST", "/api/v1/me/blocklist", "alice", 201, json={"number": "+15551"})
    await env.json("POST", "/api/v1/admin/lists/dno", "root", 201, json={"number": "+18005550100"})
    s = await env.json("GET", "/api/v1/admin/stats", "root")
    assert s["users"] == {"total": 4, "by_role": {"user": 2, "admin": 1, "auditor": 1}}
    assert s["list_entries"]["user"]["block"] == 1 and s["list_entries"]["global"]["dno"] == 1
    assert s["audit_records"] >= 60
    assert s["metrics"]["spitwall_test_calls_total"] == 3.0
