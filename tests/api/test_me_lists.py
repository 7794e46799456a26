"""Subscribers' block and allow lists over HTTP: add, list, delete, CSV in and out, and the
very next call seeing a change (the store's ``match`` right after the response)."""

from __future__ import annotations

import time

import pytest

from reputation.lists import ListKind

from .conftest import ALICE_TN, Env


@pytest.mark.parametrize(("path", "kind"), [("blocklist", "block"), ("allowlist", "allow")])
async def test_add_list_delete(env: Env, path: str, kind: str) -> None:
    e = await env.json(
        "POST",
        f"/api/v1/me/{path}",
        "alice",
        201,
        json={"number": "+1 (555) 123-4567", "note": "robocaller"},
    )
    assert e["number"] == "+15551234567" and e["kind"] == kind and e["note"] == "robocaller"
    assert isinstance(e["id"], int) and e["scope"] == "user" and e["prefix"] is False
    listing = await env.json("GET", f"/api/v1/me/{path}", "alice")
    assert [x["id"] for x in listing["entries"]] == [e["id"]]
    # The same number again updates the entry (200, same id).
    again = await env.json(
        "POST", f"/api/v1/me/{path}", "alice", 200, json={"number": "+15551234567", "note": "x"}
    )
    assert again["id"] == e["id"] and again["note"] == "x"
    r = await env.call("DELETE", f"/api/v1/me/{path}/{e['id']}", "alice")
    assert r.status == 204
    assert (await env.json("GET", f"/api/v1/me/{path}", "alice"))["entries"] == []
    r = await env.call("DELETE", f"/api/v1/me/{path}/{e['id']}", "alice")
    assert r.status == 404


async def test_block_affects_the_very_next_call(env: Env) -> None:
    alice = env.users["alice"]
    now = time.time()
    assert env.store.match(alice.id, "15557770000", now) is None
    e = await env.json("POST", "/api/v1/me/blocklist", "alice", 201, json={"number": "+1555777*"})
    hit = env.store.match(alice.id, "15557770000", time.time())  # no await in between
    assert hit is not None and hit.kind is ListKind.BLOCK and hit.entry.id == e["id"]
    assert env.store.match(env.users["bob"].id, "15557770000", now) is None
    await env.call("DELETE", f"/api/v1/me/blocklist/{e['id']}", "alice")
    assert env.store.match(alice.id, "15557770000", time.time()) is None


async def test_prefix_and_expiry(env: Env) -> None:
    future = time.time() + 3600
    e = await env.json(
        "POST",
        "/api/v1/me/blocklist",
        "alice",
        201,
        json={"number": "+1900*", "expires": future},
    )
    assert e["prefix"] is True and e["number"] == "+1900*" and e["expires"] == pytest.approx(future)
    iso = await env.json(
        "POST",
        "/api/v1/me/blocklist",
        "alice",
        201,
        json={"number": "+1901*", "expires": "2099-01-01T00:00:00Z"},
    )
    assert iso["expires"] == 4070908800.0


async def test_csv_import_reports_each_bad_line_and_export_round_trips(env: Env) -> None:
    csv_text = (
        "number,note,expires\n"
        "+15551230001,first,\n"
        "not-a-number,bad,\n"
        "+15551230002,second,2099-01-01\n"
        "+15551230003,old,2001-01-01\n"
        "+1555123*,range,\n"
        "+15551230001,dup,\n"
    )
    r = await env.call(
        "POST",
        "/api/v1/me/blocklist",
        "alice",
        data=csv_text.encode(),
        headers={"Content-Type": "text/csv"},
    )
    body = await r.json()
    assert r.status == 200, body
    assert body["imported"] == 3
    lines = {e["line"]: e["reason"] for e in body["errors"]}
    assert set(lines) == {3, 5, 7}
    assert "only digits" in lines[3] and "past" in lines[5] and "duplicate of line 2" in lines[7]
    r = await env.call("GET", "/api/v1/me/blocklist?format=csv", "alice")
    assert r.status == 200 and r.content_type == "text/csv"
    exported = await r.text()
    assert exported.splitlines()[0].startswith("number,kind,note,expires")
    assert "+15551230002,block,second,2099-01-01T00:00:00Z" in exported
    # Re-importing the export changes nothing and reports nothing bad.
    r = await env.call(
        "POST",
        "/api/v1/me/blocklist",
        "alice",
        data=exported.encode(),
        headers={"Content-Type": "text/csv"},
    )
    body = await r.json()
    assert body == {"imported": 3, "errors": []}
    assert len((await env.json("GET", "/api/v1/me/blocklist", "alice"))["entries"]) == 3


async def test_csv_allow_kind_rejected_on_block_list_and_all_bad_is_400(env: Env) -> None:
    r = await env.call(
        "POST",
        "/api/v1/me/blocklist",
        "alice",
        data=b"number,kind\n+15551230001,allow\n+15551230002,dno\n",
        headers={"Content-Type": "text/csv"},
    )
    body = await r.json()
    assert r.status == 400 and body["error"] == "bad_csv" and body["imported"] == 0
    assert [e["line"] for e in body["errors"]] == [2, 3]
    assert "cannot be imported here" in body["errors"][0]["reason"]
    r = await env.call(
        "POST",
        "/api/v1/me/allowlist",
        "alice",
        data=b"phone,note\n+15551230001,x\n",
        headers={"Content-Type": "text/csv"},
    )
    body = await r.json()
    assert r.status == 400 and "unknown column 'phone'" in body["message"]


async def test_alice_list_entries_do_not_match_bob(env: Env) -> None:
    await env.json("POST", "/api/v1/me/blocklist", "alice", 201, json={"number": f"+{ALICE_TN}"})
    assert (await env.json("GET", "/api/v1/me/blocklist", "bob"))["entries"] == []
