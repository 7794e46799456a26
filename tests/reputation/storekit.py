"""Helpers shared by the store tests: a fresh store on a real SQLite file."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from reputation.config import StoreConfig
from reputation.lists import Invalid, ListKind, ListPattern, ListScope, NewListEntry, parse_pattern
from reputation.store import Store

FAST = StoreConfig(batch_window=0.005)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store.open(tmp_path / "reputation.sqlite3", FAST)
    yield s
    s.close()


def pat(text: str) -> ListPattern:
    p = parse_pattern(text)
    assert not isinstance(p, Invalid), p
    return p


def user_entry(uid: int, kind: ListKind, text: str, **kw: object) -> NewListEntry:
    return NewListEntry(ListScope.USER, uid, kind, pat(text), **kw)  # type: ignore[arg-type]


def global_entry(kind: ListKind, text: str, **kw: object) -> NewListEntry:
    return NewListEntry(ListScope.GLOBAL, None, kind, pat(text), **kw)  # type: ignore[arg-type]


def raw(path: Path) -> sqlite3.Connection:
    """An independent connection, as an auditor with the sqlite3 shell would have."""
    c = sqlite3.connect(path)
    c.row_factory = sqlite3.Row
    return c
