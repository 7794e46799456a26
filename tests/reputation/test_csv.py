"""CSV list import/export: every bad row reported by line and reason, good rows kept."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reputation.csvio import export_list_csv, parse_expiry, parse_list_csv
from reputation.lists import Invalid, ListEntry, ListKind, ListPattern, ListScope, ListSource
from reputation.store import Store

from .storekit import store

__all__ = ["store"]

NOW = 1_800_000_000.0  # 2027-01-15


def test_good_and_bad_rows_by_line() -> None:
    data = (
        "Number,Kind,Note,Expires\n"  # 1
        "+15551234567,block,robo,2030-01-01\n"  # 2 ok
        "+1555*,,range,\n"  # 3 ok (default kind)
        "hello,block,,\n"  # 4 bad number
        "\n"  # 5 blank: skipped
        "+15550000001,maybe,,\n"  # 6 bad kind
        "+15550000002,block,,yesterday\n"  # 7 bad expiry
        "+15550000003,block,,2001-01-01\n"  # 8 expired
        '+15550000004,block,"unterminated,\n'  # 9 malformed CSV
        "+15550000005,block,a,b,c\n"  # 10 too many fields
        "15551234567,block,dup,\n"  # 11 duplicate of line 2
        "+18005550100,dno,,\n"  # 12 dno not allowed for users
        "+1 (202) 555-0111,allow,friend,1900000000\n"  # 13 ok, UNIX seconds
        "+15550000006,block," + "x" * 501 + ",\n"  # 14 note too long
        "0123,block,,\n"  # 15 national number
    )
    r = parse_list_csv(data, scope=ListScope.USER, user_id=7, now=NOW)
    assert r.lines == (2, 3, 13)
    assert [str(e.pattern) for e in r.entries] == ["+15551234567", "+1555*", "+12025550111"]
    assert [e.kind for e in r.entries] == [ListKind.BLOCK, ListKind.BLOCK, ListKind.ALLOW]
    assert all(
        e.user_id == 7 and e.scope is ListScope.USER and e.source is ListSource.CSV
        for e in r.entries
    )
    assert r.entries[2].expires == 1_900_000_000.0 and r.entries[1].expires is None
    bad = {e.line: e.reason for e in r.errors}
    assert sorted(bad) == [4, 6, 7, 8, 9, 10, 11, 12, 14, 15]
    assert "only digits" in bad[4]
    assert "maybe" in bad[6]
    assert "ISO 8601" in bad[7]
    assert "past" in bad[8]
    assert "malformed" in bad[9]
    assert "fields" in bad[10]
    assert "duplicate of line 2" in bad[11]
    assert "dno" in bad[12]
    assert "500" in bad[14]
    assert "country code" in bad[15]
    assert not r.fatal
    assert str(r.errors[0]).startswith("line 4: ")


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ("", "empty file"),
        ("\n\n", "empty file"),
        ("note,kind\n+15551234567,block\n", "'number' column is required"),
        ("number,colour\n+15551234567,red\n", "unknown column 'colour'"),
        ("number,number\n1,2\n", "twice"),
        ("+15551234567,block\n", "unknown column '+15551234567'"),
    ],
)
def test_unusable_header_is_fatal_with_reason(data: str, why: str) -> None:
    r = parse_list_csv(data, scope=ListScope.GLOBAL, user_id=None, now=NOW)
    assert r.fatal and r.entries == ()
    assert why in r.errors[0].reason and r.errors[0].line == 1


def test_bytes_with_bom_crlf_bad_utf8_and_nul() -> None:
    data = (
        b"\xef\xbb\xbfnumber,note\r\n"
        b"+15551234567,caf\xc3\xa9\r\n"
        b"+15551234568,caf\xe9\r\n"  # latin-1, not UTF-8
        b"+15551234569,a\x00b\r\n"
        b"+15551234570,ok\r\n"
    )
    r = parse_list_csv(data, scope=ListScope.GLOBAL, user_id=None, now=NOW)
    assert r.lines == (2, 5) and r.entries[0].note == "café"
    assert [(e.line, e.reason) for e in r.errors] == [
        (3, "not valid UTF-8"),
        (4, "contains a NUL byte"),
    ]


def test_row_limit() -> None:
    rows = "".join(f"+1555000{i:04d}\n" for i in range(10))
    r = parse_list_csv("number\n" + rows, scope=ListScope.GLOBAL, user_id=None, now=NOW, max_rows=5)
    assert len(r.entries) == 5 and r.errors[-1].line == 7 and "more than 5" in r.errors[-1].reason


def test_global_import_accepts_dno() -> None:
    r = parse_list_csv(
        "number,kind\n+18005550100,dno\n", scope=ListScope.GLOBAL, user_id=None, now=NOW
    )
    assert r.errors == () and r.entries[0].kind is ListKind.DNO


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("", None),
        ("  ", None),
        ("2027-01-01", 1798761600.0),
        ("2027-01-01T00:00:00Z", 1798761600.0),
        ("2027-01-01T01:00:00+01:00", 1798761600.0),
        ("2027-01-01 00:00:00", 1798761600.0),
        ("1798761600", 1798761600.0),
    ],
)
def test_expiry_formats(text: str, want: float | None) -> None:
    assert parse_expiry(text) == want


@pytest.mark.parametrize("text", ["tomorrow", "2027-13-01", "-5", "nan", "inf", "1e400"])
def test_bad_expiry(text: str) -> None:
    assert isinstance(parse_expiry(text), Invalid)


def test_export_round_trips_and_defuses_formulas() -> None:
    entries = [
        ListEntry(
            1,
            ListScope.USER,
            3,
            ListKind.BLOCK,
            ListPattern("1555", True),
            "=HYPERLINK(1)",
            ListSource.API,
            NOW - 10,
            1_900_000_000.0,
        ),
        ListEntry(
            2,
            ListScope.USER,
            3,
            ListKind.ALLOW,
            ListPattern("12025550111"),
            'mum, "home"\nline',
            ListSource.CSV,
            NOW - 5,
            None,
        ),
        ListEntry(
            3,
            ListScope.USER,
            3,
            ListKind.ALLOW,
            ListPattern("12025550112"),
            "'quoted",
            ListSource.CSV,
            NOW,
            None,
        ),
    ]
    text = export_list_csv(entries)
    assert "\n'=HYPERLINK" not in text and ",'=HYPERLINK(1)," in text
    back = parse_list_csv(text, scope=ListScope.USER, user_id=3, now=NOW)
    assert back.errors == ()
    assert [(e.kind, e.pattern, e.note, e.expires) for e in back.entries] == [
        (ListKind.BLOCK, ListPattern("1555", True), "=HYPERLINK(1)", 1_900_000_000.0),
        (ListKind.ALLOW, ListPattern("12025550111"), 'mum, "home" line', None),
        (ListKind.ALLOW, ListPattern("12025550112"), "'quoted", None),
    ]


async def test_import_through_the_store_keeps_good_rows(store: Store) -> None:
    r = await store.add_user("alice", "user")
    assert isinstance(r, tuple)
    uid = r[0].id
    data = "number,kind\n+15551234567,block\nbogus,block\n+1666*,allow\n"
    imp = parse_list_csv(data, scope=ListScope.USER, user_id=uid, now=NOW)
    out = await store.add_entries(imp.entries, now=NOW)
    assert all(isinstance(x, ListEntry) for x in out)
    assert [e.line for e in imp.errors] == [3]
    assert store.match(uid, "15551234567", NOW) is not None
    hit = store.match(uid, "16660000000", NOW)
    assert hit is not None and hit.kind is ListKind.ALLOW and hit.entry.source is ListSource.CSV
    exported = export_list_csv(store.lists_for_user(uid))
    assert exported.splitlines()[1].startswith("+15551234567,block,")


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=400) | st.text(max_size=400).map(lambda t: "number,kind,note,expires\n" + t)
)
def test_arbitrary_input_never_crashes(data: bytes | str) -> None:
    r = parse_list_csv(data, scope=ListScope.GLOBAL, user_id=None, now=NOW)
    assert all(e.line >= 1 and e.reason for e in r.errors)
    assert len(r.entries) == len(r.lines)
    for e in r.entries:
        assert e.pattern.digits.isdigit() and 1 <= len(e.pattern.digits) <= 15
