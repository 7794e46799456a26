"""Auditor endpoints against a real, signed attestation log file."""

from __future__ import annotations

import csv
import io
import json

import pytest

from .conftest import ALICE_TN, AUDIT_N, T0, Env, audit_entry


def expected(pred: object) -> list[int]:
    return [i + 1 for i in reversed(range(AUDIT_N)) if pred(audit_entry(i))]  # type: ignore[operator]


@pytest.mark.parametrize(
    ("query", "pred"),
    [
        ("action=reject", lambda e: e.action == "reject"),
        ("verstat=TN-Validation-Failed", lambda e: e.verstat == "TN-Validation-Failed"),
        ("attest=A", lambda e: e.attest == "A"),
        ("reason=bad_signature", lambda e: e.reason == "bad_signature"),
        ("spc=SPC2", lambda e: e.spc == "SPC2"),
        ("origid=o-1", lambda e: e.origid == "o-1"),
        ("orig=%2B12155550003", lambda e: e.orig_tn == "12155550003"),
        ("orig=121555500*", lambda e: e.orig_tn.startswith("121555500")),
        (f"dest={ALICE_TN}", lambda e: e.dest_tn == ALICE_TN),
        (
            f"since={T0 + 3600 * 10}&until={T0 + 3600 * 20}",
            lambda e: T0 + 36000 <= e.time < T0 + 72000,
        ),
        (
            "since=2025-11-28T13:20:00Z&action=forward",
            lambda e: e.time >= T0 + 36000 and e.action == "forward",
        ),
        ("call_id=call-7@example.test", lambda e: e.call_id == "call-7@example.test"),
    ],
)
async def test_search_filters(env: Env, query: str, pred: object) -> None:
    out = await env.json("GET", f"/api/v1/audit/records?limit=1000&{query}", "audrey")
    assert [r["seq"] for r in out["records"]] == expected(pred)
    assert out["next_cursor"] is None


async def test_pagination_and_one_record(env: Env) -> None:
    seen: list[int] = []
    cursor = ""
    while True:
        out = await env.json("GET", f"/api/v1/audit/records?limit=7&cursor={cursor}", "audrey")
        seen += [r["seq"] for r in out["records"]]
        if out["next_cursor"] is None:
            break
        cursor = out["next_cursor"]
    assert seen == list(range(AUDIT_N, 0, -1))
    rec = await env.json("GET", "/api/v1/audit/records/8", "audrey")
    assert rec["seq"] == 8 and rec["well_formed"] is True
    assert rec["identity_headers"][0].startswith("eyJhbGciOiJFUzI1NiJ9.payload-7.")
    assert rec["passport_claims"]["attest"] == "B" and rec["passport_header"]["ppt"] == "shaken"
    assert rec["cert_fingerprint"] and rec["issuer"] == "CN=Test STI-CA" and len(rec["hash"]) == 64
    assert (await env.call("GET", "/api/v1/audit/records/99999", "audrey")).status == 404


async def test_export_jsonl_and_csv(env: Env) -> None:
    r = await env.call("GET", "/api/v1/audit/export?format=jsonl", "audrey")
    assert r.status == 200 and r.content_type == "application/x-ndjson"
    lines = (await r.text()).splitlines()
    assert [json.loads(x)["seq"] for x in lines] == list(range(1, AUDIT_N + 1))
    r = await env.call(
        "GET", f"/api/v1/audit/export?format=csv&since={T0 + 3600}&until={T0 + 3600 * 4}", "audrey"
    )
    rows = list(csv.DictReader(io.StringIO(await r.text())))
    assert [int(x["seq"]) for x in rows] == [2, 3, 4]
    assert rows[0]["orig_tn"] == audit_entry(1).orig_tn and rows[0]["prev_hash"]
    r = await env.call("GET", "/api/v1/audit/export?format=xml", "audrey")
    assert r.status == 400 and (await r.json())["field"] == "format"


async def test_verify_and_stats(env: Env) -> None:
    v = await env.json("GET", "/api/v1/audit/verify", "audrey")
    assert v["ok"] is True and v["count"] >= AUDIT_N and v["checkpoints_checked"] >= 1
    assert v["summary"].startswith("attestation log intact")
    s = await env.json("GET", "/api/v1/audit/stats", "audrey")
    assert s["total"] == AUDIT_N and sum(n for _, n in s["by_day"]) == AUDIT_N
    assert set(s["by_attest"]) <= {"A", "B", "C", "none"}
    assert s["by_action"]["reject"] == len(expected(lambda e: e.action == "reject"))
    assert s["top_spc"] and s["by_day_verstat"] and s["by_day_attest"] and s["by_hour"]
    top = await env.json("GET", "/api/v1/audit/stats?top=1", "audrey")
    assert len(top["top_spc"]) == 1


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("since=yesterday", "since"),
        ("until=12:xx", "until"),
        ("since=2000&until=1000", "until"),
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("limit=1001", "limit"),
        ("cursor=abc", "cursor"),
        ("orig=12a*", "orig"),
        ("colour=red", "colour"),
    ],
)
async def test_bad_search_parameters(env: Env, query: str, field: str) -> None:
    r = await env.call("GET", f"/api/v1/audit/records?{query}", "audrey")
    out = await r.json()
    assert r.status == 400 and out.get("field") == field, out


async def test_missing_log_is_503(env: Env, tmp_path: object) -> None:
    from pathlib import Path

    from api.state import STATE
    from attestation.audit import AuditReader

    app = env.client.server.app
    sub = next(a for a in app._subapps)  # the /api/v1 sub-application
    sub[STATE].audit = AuditReader(Path(str(tmp_path)) / "nope.sqlite3")
    for path in ("/api/v1/audit/records", "/api/v1/audit/verify", "/api/v1/audit/export"):
        r = await env.call("GET", path, "audrey")
        assert r.status == 503 and (await r.json())["error"] == "unavailable", path
