"""Lists: pattern parsing, the in-memory matcher against a brute-force oracle, and the store
keeping memory and disk in step (a change is seen by the very next lookup)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reputation.lists import (
    Invalid,
    ListEntry,
    ListIndex,
    ListKind,
    ListPattern,
    ListScope,
    ListSource,
    NewListEntry,
    parse_pattern,
)
from reputation.store import Store

from .storekit import FAST, global_entry, pat, store, user_entry

__all__ = ["store"]


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("+15551234567", ListPattern("15551234567")),
        ("15551234567", ListPattern("15551234567")),
        (" +1 (555) 123-4567 ", ListPattern("15551234567")),
        ("+1.555.123.4567", ListPattern("15551234567")),
        ("+1555*", ListPattern("1555", True)),
        ("1555*", ListPattern("1555", True)),
        ("+4*", ListPattern("4", True)),
    ],
)
def test_parse_pattern_accepts(text: str, want: ListPattern) -> None:
    assert parse_pattern(text) == want


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("*", "at least one digit"),
        ("+*", "at least one digit"),
        ("+1555a", "only digits"),
        ("+1*555", "only digits"),
        ("++1555", "only digits"),
        ("0555123456", "country code"),
        ("+1234567890123456", "at most 15"),
        ("+١٢٣", "only digits"),  # Arabic-Indic digits are not E.164
        (15551234567, "expected a string"),
    ],
)
def test_parse_pattern_rejects_with_reason(text: object, why: str) -> None:
    r = parse_pattern(text)
    assert isinstance(r, Invalid) and why in r.message


def test_prefix_refused_where_a_number_is_needed() -> None:
    r = parse_pattern("+1555*", allow_prefix=False)
    assert isinstance(r, Invalid) and "prefix" in r.message


def E(
    i: int,
    uid: int | None,
    kind: ListKind,
    digits: str,
    prefix: bool = False,
    expires: float | None = None,
) -> ListEntry:
    scope = ListScope.GLOBAL if uid is None else ListScope.USER
    return ListEntry(i, scope, uid, kind, ListPattern(digits, prefix), expires=expires)


def test_precedence_table() -> None:
    idx = ListIndex(
        [
            E(1, None, ListKind.BLOCK, "1555", True),
            E(2, None, ListKind.ALLOW, "15551234567"),
            E(3, 7, ListKind.ALLOW, "1555", True),
            E(4, 7, ListKind.BLOCK, "1555123", True),
            E(5, None, ListKind.DNO, "18005550100"),
            E(6, None, ListKind.ALLOW, "18005550100"),
        ]
    )
    now = 0.0

    def hit(uid: int | None, n: str) -> int | None:
        h = idx.match(uid, n, now)
        return None if h is None else h.entry.id

    assert hit(None, "15550000000") == 1  # global prefix block
    assert hit(None, "15551234567") == 2  # exact global allow beats the shorter block prefix
    assert hit(7, "15550000000") == 3  # the user's allow beats the global block
    assert hit(7, "15551234567") == 4  # the user's longer block prefix beats their allow prefix
    assert hit(8, "15551234567") == 2  # another user does not see user 7's entries
    assert hit(None, "18005550100") == 6  # same pattern: allow before block before dno
    assert [h.entry.id for h in idx.match_all(7, "15551234567", now)] == [4, 3, 2, 1]
    assert hit(None, "4420") is None


def test_expiry_honoured_at_lookup_time() -> None:
    idx = ListIndex(
        [
            E(1, 3, ListKind.BLOCK, "1555", True, expires=100.0),
            E(2, None, ListKind.BLOCK, "155", True),
        ]
    )
    assert idx.match(3, "15551", 99.9).entry.id == 1  # type: ignore[union-attr]
    h = idx.match(3, "15551", 100.0)
    assert h is not None and h.entry.id == 2  # the expired entry falls through to the next one
    assert idx.expired(100.0) == [1]


def test_add_replace_remove_keep_lengths_in_step() -> None:
    idx = ListIndex()
    idx.add(E(1, None, ListKind.BLOCK, "1555", True))
    idx.add(E(1, None, ListKind.BLOCK, "1666", True))  # same id: replaced
    assert len(idx) == 1 and idx.match(None, "15550", 0) is None and idx.match(None, "16660", 0)
    idx.remove(1)
    assert len(idx) == 0 and idx.match(None, "16660", 0) is None
    assert idx.remove(1) is None
    assert idx.entries(None) == []


# ------------------------------------------------------------------------- oracle

_DIGITS = st.text(alphabet="123", min_size=1, max_size=5)


@st.composite
def entries_and_queries(
    draw: st.DrawFn,
) -> tuple[list[ListEntry], list[tuple[int | None, str, float]]]:
    n = draw(st.integers(0, 40))
    entries = []
    seen = set()
    for i in range(1, n + 1):
        uid = draw(st.sampled_from([None, 1, 2]))
        kind = draw(
            st.sampled_from(
                [ListKind.BLOCK, ListKind.ALLOW] + ([ListKind.DNO] if uid is None else [])
            )
        )
        digits = draw(_DIGITS)
        prefix = draw(st.booleans())
        key = (uid, kind, digits, prefix)
        if key in seen:  # the database keeps one entry per owner/kind/pattern
            continue
        seen.add(key)
        expires = draw(st.one_of(st.none(), st.sampled_from([5.0, 10.0])))
        entries.append(E(i, uid, kind, digits, prefix, expires))
    queries = draw(
        st.lists(
            st.tuples(
                st.sampled_from([None, 1, 2, 3]), _DIGITS, st.sampled_from([0.0, 5.0, 7.5, 10.0])
            ),
            min_size=1,
            max_size=20,
        )
    )
    return entries, queries


_RANK = {ListKind.ALLOW: 0, ListKind.BLOCK: 1, ListKind.DNO: 2}


def oracle(entries: list[ListEntry], uid: int | None, number: str, now: float) -> list[int]:
    """Every live matching entry, in the documented decision order, by brute force."""
    live = [
        e
        for e in entries
        if (e.user_id is None or e.user_id == uid)
        and (e.expires is None or now < e.expires)
        and (
            number.startswith(e.pattern.digits) if e.pattern.prefix else number == e.pattern.digits
        )
    ]
    live.sort(
        key=lambda e: (
            e.user_id is None,  # the user's own first
            e.pattern.prefix,  # exact before prefix
            -len(e.pattern.digits),  # longer prefix first
            _RANK[e.kind],
        )
    )
    return [e.id for e in live]


@settings(max_examples=300, deadline=None)
@given(entries_and_queries())
def test_index_agrees_with_brute_force(
    case: tuple[list[ListEntry], list[tuple[int | None, str, float]]],
) -> None:
    entries, queries = case
    idx = ListIndex(entries)
    for uid, number, now in queries:
        want = oracle(entries, uid, number, now)
        got = [h.entry.id for h in idx.match_all(uid, number, now)]
        assert got == want
        first = idx.match(uid, number, now)
        assert (None if first is None else first.entry.id) == (want[0] if want else None)
    # removing half keeps it exact
    for e in entries[::2]:
        idx.remove(e.id)
    rest = entries[1::2]
    for uid, number, now in queries:
        assert [h.entry.id for h in idx.match_all(uid, number, now)] == oracle(
            rest, uid, number, now
        )


# ------------------------------------------------------------------------- through the store


async def test_list_change_is_seen_by_the_next_lookup_and_survives_restart(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    s = Store.open(path, FAST)
    r = await s.add_user("u1", "user", tns=["+15550000001"])
    assert isinstance(r, tuple)
    u = r[0]
    assert s.match(u.id, "12025550111", 0) is None
    e = await s.add_entry(user_entry(u.id, ListKind.BLOCK, "+12025550111", note="robo"))
    assert isinstance(e, ListEntry)
    hit = s.match(u.id, "12025550111", 0)
    assert hit is not None and hit.kind is ListKind.BLOCK and hit.entry.note == "robo"
    s.close()
    s = Store.open(path, FAST)
    try:
        assert s.match(u.id, "12025550111", 0) is not None
        assert await s.delete_entry(e.id, user_id=u.id) == e
        assert s.match(u.id, "12025550111", 0) is None
    finally:
        s.close()
    s = Store.open(path, FAST)
    assert s.match(u.id, "12025550111", 0) is None
    s.close()


async def test_user_isolation(store: Store) -> None:
    a = await store.add_user("alice", "user")
    b = await store.add_user("bob", "user")
    assert isinstance(a, tuple) and isinstance(b, tuple)
    alice, bob = a[0], b[0]
    ea = await store.add_entry(user_entry(alice.id, ListKind.BLOCK, "+1555*"))
    eb = await store.add_entry(user_entry(bob.id, ListKind.ALLOW, "+1666*"))
    await store.add_entry(global_entry(ListKind.BLOCK, "+1777*"))
    assert isinstance(ea, ListEntry) and isinstance(eb, ListEntry)
    assert [e.id for e in store.lists_for_user(alice.id)] == [ea.id]
    assert [e.id for e in store.lists_for_user(bob.id)] == [eb.id]
    assert all(e.user_id is None for e in store.global_lists())
    # bob cannot delete alice's entry, nor a global one, by id
    assert await store.delete_entry(ea.id, user_id=bob.id) is None
    assert await store.delete_entry(store.global_lists()[0].id, user_id=bob.id) is None
    assert store.lists.get(ea.id) is not None
    assert store.match(bob.id, "15551234567", 0) is None


async def test_same_pattern_again_updates_instead_of_duplicating(store: Store) -> None:
    r = await store.add_user("alice", "user")
    assert isinstance(r, tuple)
    uid = r[0].id
    e1 = await store.add_entry(user_entry(uid, ListKind.BLOCK, "+1555*", note="a"))
    e2 = await store.add_entry(user_entry(uid, ListKind.BLOCK, "1555*", note="b", expires=50.0))
    e3 = await store.add_entry(user_entry(uid, ListKind.ALLOW, "+1555*"))
    assert isinstance(e1, ListEntry) and isinstance(e2, ListEntry) and isinstance(e3, ListEntry)
    assert e1.id == e2.id != e3.id
    assert e2.note == "b" and e2.expires == 50.0
    assert len(store.lists_for_user(uid)) == 2


async def test_structural_rules_are_values(store: Store) -> None:
    r = await store.add_user("alice", "user")
    assert isinstance(r, tuple)
    uid = r[0].id
    p = ListPattern("1555", True)
    bad = [
        NewListEntry(ListScope.USER, uid, ListKind.DNO, p),
        NewListEntry(ListScope.GLOBAL, uid, ListKind.BLOCK, p),
        NewListEntry(ListScope.USER, None, ListKind.BLOCK, p),
        NewListEntry(ListScope.USER, 999, ListKind.BLOCK, p),
        NewListEntry(ListScope.USER, uid, ListKind.BLOCK, p, note="x" * 501),
    ]
    good = NewListEntry(ListScope.USER, uid, ListKind.BLOCK, p, source=ListSource.CSV)
    out = await store.add_entries([*bad, good])
    assert all(isinstance(x, Invalid) for x in out[:-1])
    assert isinstance(out[-1], ListEntry) and out[-1].source is ListSource.CSV


async def test_purge_expired(store: Store) -> None:
    await store.add_entry(global_entry(ListKind.BLOCK, "+1555*", expires=10.0))
    await store.add_entry(global_entry(ListKind.BLOCK, "+1666*"))
    assert await store.purge_expired(now=11.0) == 1
    assert [str(e.pattern) for e in store.global_lists()] == ["+1666*"]
    n = await store.read(lambda db: db.execute("SELECT count(*) FROM list_entries").fetchone()[0])
    assert n == 1


async def test_deleting_a_user_drops_their_entries(store: Store) -> None:
    r = await store.add_user("alice", "user")
    assert isinstance(r, tuple)
    uid = r[0].id
    await store.add_entry(user_entry(uid, ListKind.BLOCK, "+1555*"))
    assert await store.delete_user(uid)
    assert store.lists_for_user(uid) == [] and len(store.lists) == 0
    assert (
        await store.read(lambda db: db.execute("SELECT count(*) FROM list_entries").fetchone()[0])
        == 0
    )


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=30) | st.from_regex(r"\+?[0-9 ()\-.]{0,20}\*?", fullmatch=True))
def test_parse_pattern_never_crashes(text: str) -> None:
    r = parse_pattern(text)
    if not isinstance(r, Invalid):
        assert r.digits.isascii() and r.digits.isdigit() and r.digits[0] != "0"
        assert parse_pattern(str(r)) == r


async def test_big_imports_are_written_in_slices(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import reputation.store as store_module

    monkeypatch.setattr(store_module, "IMPORT_SLICE", 3)
    before, _ = store.writer_stats
    news = [global_entry(ListKind.BLOCK, f"+1555000{i:04d}") for i in range(10)]
    out = await store.add_entries(
        [*news, NewListEntry(ListScope.USER, None, ListKind.BLOCK, pat("+1*"))]
    )
    assert [isinstance(x, ListEntry) for x in out] == [True] * 10 + [False]
    assert len({x.id for x in out if isinstance(x, ListEntry)}) == 10 == len(store.global_lists())
    after, _ = store.writer_stats
    assert after - before >= 4
