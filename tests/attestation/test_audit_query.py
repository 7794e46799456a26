"""The auditors' query API: search with filters and cursors, one record, export, stats."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from attestation.audit import AuditReader, QueryError, SearchFilters, parse_time

from .test_audit_record import ACTIONS, T0, VERSTATS, build_log, sample_entry, signer_in

N = 200


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> AuditReader:
    import asyncio

    d = tmp_path_factory.mktemp("audit-query")
    db = d / "attestation.sqlite3"
    asyncio.run(build_log(db, N, signer=signer_in(d)))
    return AuditReader(db)


def expected(pred: object) -> list[int]:
    """Seqs (newest first) of the sample entries matching ``pred`` (record seq = i + 1)."""
    return [i + 1 for i in reversed(range(N)) if pred(sample_entry(i))]  # type: ignore[operator]


@pytest.mark.parametrize(
    ("filters", "pred"),
    [
        (SearchFilters(action="reject"), lambda e: e.action == "reject"),
        (SearchFilters(verstat=VERSTATS[1]), lambda e: e.verstat == VERSTATS[1]),
        (SearchFilters(attest="A"), lambda e: e.attest == "A"),
        (SearchFilters(reason="bad_signature"), lambda e: e.reason == "bad_signature"),
        (SearchFilters(spc="SPC2"), lambda e: e.spc == "SPC2"),
        (SearchFilters(origid="origid-5"), lambda e: e.origid == "origid-5"),
        (SearchFilters(call_id="call-77@example.test"), lambda e: e.call_id.startswith("call-77@")),
        (SearchFilters(orig="+12155550003"), lambda e: e.orig_tn == "12155550003"),
        (SearchFilters(orig="1215555000*"), lambda e: e.orig_tn.startswith("1215555000")),
        (SearchFilters(dest="16095550001"), lambda e: e.dest_tn == "16095550001"),
        (SearchFilters(kind="decision"), lambda e: True),
        (SearchFilters(kind="loss"), lambda e: False),
        (
            SearchFilters(since=T0 + 600, until=T0 + 1200),  # [minute 10, minute 20)
            lambda e: T0 + 600 <= e.time < T0 + 1200,
        ),
        (
            SearchFilters(action="reject", spc="SPC0", since=T0 + 3000),
            lambda e: e.action == "reject" and e.spc == "SPC0" and e.time >= T0 + 3000,
        ),
    ],
)
def test_search_filters_match_exactly(
    reader: AuditReader, filters: SearchFilters, pred: object
) -> None:
    page = reader.search(filters, limit=1000)
    assert [r.seq for r in page.records] == expected(pred)
    assert page.next_cursor is None


def test_pagination_walks_every_match_once(reader: AuditReader) -> None:
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        page = reader.search(SearchFilters(verstat=VERSTATS[0]), limit=7, cursor=cursor)
        seen += [r.seq for r in page.records]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == expected(lambda e: e.verstat == VERSTATS[0])
    assert pages == -(-len(seen) // 7)
    records, next_cursor = reader.search(limit=N)  # unpacks as (records, next_cursor)
    assert len(records) == N and next_cursor is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"cursor": "abc"}, "cursor"),
        ({"filters": SearchFilters(orig="12a*")}, "orig"),
        ({"filters": SearchFilters(since="yesterday")}, "since"),  # type: ignore[arg-type]
    ],
)
def test_bad_search_arguments_name_the_field(
    reader: AuditReader, kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(QueryError) as info:
        reader.search(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_search_uses_indexes(reader: AuditReader) -> None:
    conn = sqlite3.connect(f"file:{reader.path}?mode=ro", uri=True)
    for column in ("spc", "origid", "call_id", "orig_tn", "action", "verstat"):
        plan = " ".join(
            str(r[-1])
            for r in conn.execute(
                f"EXPLAIN QUERY PLAN SELECT * FROM records WHERE {column} = ? "
                "AND seq < ? ORDER BY seq DESC LIMIT 51",
                ("x", 10),
            )
        )
        assert f"records_{column}" in plan and "TEMP B-TREE" not in plan, plan


def test_get_one_record_in_full(reader: AuditReader) -> None:
    rec = reader.get(42)
    assert rec is not None and rec.seq == 42
    d = rec.as_dict()
    assert d["identity_headers"] == [sample_entry(41).identity_headers[0]]
    assert d["passport_header"] == {"alg": "ES256", "ppt": "shaken", "typ": "passport"}
    assert d["reasons"][0] == ["shaken.attest", -1.5, "attest A"]
    assert d["time_utc"] == "2025-11-28T16:41:00.000000Z"
    assert len(d["hash"]) == 64 and d["prev_hash"] == reader.get(41).hash  # type: ignore[union-attr]
    assert rec.entry() == sample_entry(41)
    assert reader.get(N + 1) is None and reader.get(0) is None


def test_export_streams_a_time_window_in_seq_order(reader: AuditReader) -> None:
    got = [r.seq for r in reader.iter_export(T0 + 60 * 10, T0 + 60 * 15)]
    assert got == [11, 12, 13, 14, 15]
    assert [r.seq for r in reader.iter_export()] == list(range(1, N + 1))
    assert list(reader.iter_export(T0 - 100, T0)) == []
    assert [r.seq for r in reader.iter_export(since=T0 + 60 * (N - 2))] == [N - 1, N]


def test_parse_time_accepts_unix_and_iso_8601() -> None:
    assert parse_time("1764345600") == T0
    assert parse_time("1764345600.5") == T0 + 0.5
    assert parse_time("2025-11-28T16:00:00Z") == T0
    assert parse_time("2025-11-28T17:00:00+01:00") == T0
    assert parse_time("2025-11-28T16:00:00") == T0  # naive = UTC
    assert parse_time("2025-11-28") == T0 - 16 * 3600
    for bad in ("yesterday", "", "2025-13-01", "1e9"):
        with pytest.raises(QueryError, match="neither UNIX seconds nor an ISO 8601"):
            parse_time(bad)


def test_stats_volumes_and_top_spam_sources(reader: AuditReader) -> None:
    s = reader.stats()
    entries = [sample_entry(i) for i in range(N)]
    spam = [e for e in entries if e.action in ("reject", "challenge", "voicemail") or e.score >= 70]  # type: ignore[operator]
    assert s.total == N and s.spam_total == len(spam)
    assert s.by_day == [("2025-11-28", N)]  # 200 minutes from 16:00
    assert s.by_hour == [("2025-11-28T16", 60), ("2025-11-28T17", 60), ("2025-11-28T18", 60),
                         ("2025-11-28T19", 20)]  # fmt: skip
    assert s.by_action == {a: N // 5 for a in ACTIONS}
    assert s.by_verstat == {v: sum(e.verstat == v for e in entries) for v in VERSTATS}
    assert s.by_attest == {"A": 67, "B": 67, "none": 66}  # i % 3: A, B, (no attest)
    assert s.by_kind == {"decision": N}
    assert sum(n for _, _, n in s.by_day_verstat) == N
    counts: dict[str, int] = {}
    for e in spam:
        counts[str(e.spc)] = counts.get(str(e.spc), 0) + 1
    assert dict(s.top_spc) == counts
    ips: dict[str, int] = {}
    for e in spam:
        ip = e.source.split(":")[0]
        ips[ip] = ips.get(ip, 0) + 1
    assert dict(s.top_source) == ips
    assert [n for _, n in s.top_origid] == sorted((n for _, n in s.top_origid), reverse=True)
    assert s.top_caller_prefix == [("1215555", len(spam))]
    window = reader.stats(T0, T0 + 3600, spam_score=101)
    assert window.total == 60 and window.by_hour == [("2025-11-28T16", 60)]
    assert window.spam_total == 36  # challenge, voicemail, reject: 3 of every 5
    assert window.as_dict()["total"] == 60


def test_the_file_reads_with_sqlite_utils(reader: AuditReader) -> None:
    """Auditors copy the file and open it with sqlite-utils or Datasette."""
    import sqlite_utils

    db = sqlite_utils.Database(sqlite3.connect(f"file:{reader.path}?mode=ro", uri=True))
    assert {"records", "checkpoints", "meta"} <= set(db.table_names())
    assert db["records"].count == N
    first = next(db["records"].rows_where("seq = ?", [1]))
    assert first["call_id"] == "call-0@example.test" and len(first["hash"]) == 64
    assert "records_spc" in {i.name for i in db["records"].indexes}  # type: ignore[union-attr]


async def test_stats_top_sources_strip_ports_for_ipv4_and_ipv6(tmp_path: Path) -> None:
    from attestation.audit import AuditEntry, AuditLog

    db = tmp_path / "a.sqlite3"
    log = AuditLog(db)
    await log.start()
    for source in ["[2001:db8::1]:5060", "[2001:db8::1]:5062", "2001:db8::2", "192.0.2.9:5070",
                   "192.0.2.9:5071", "192.0.2.9", "", "host.example:5060"]:  # fmt: skip
        log.append(AuditEntry(time=T0, source=source, action="reject", orig_tn="4930123"))
    log.append(AuditEntry(time=T0, source="198.51.100.1:5060", action="forward", score=10.0))
    await log.close()
    s = AuditReader(db).stats(prefix_digits=4)
    assert s.top_source == [("192.0.2.9", 3), ("2001:db8::1", 2), ("2001:db8::2", 1),
                            ("host.example", 1)]  # fmt: skip
    assert s.top_caller_prefix == [("4930", 8)] and s.spam_total == 8 and s.total == 9
    with pytest.raises(QueryError):
        AuditReader(db).stats(top=0)
