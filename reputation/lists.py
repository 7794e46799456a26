"""Block, allow and Do-Not-Originate lists: patterns, entries and the in-memory matcher.

Theory of operation
-------------------
A list entry says "calls from numbers matching PATTERN are KIND for OWNER": the owner is
one subscriber (scope ``user``) or everybody (scope ``global``); the kind is ``block``,
``allow`` or ``dno`` (Do-Not-Originate: numbers that never place calls, so a call "from"
one is spoofed; global only); the pattern is an exact E.164 number or a digit prefix
written ``+1555*``. Entries carry provenance (``source``), a note and an optional expiry.

The store keeps the entries in SQLite; the call path asks :class:`ListIndex`, which holds
every entry in memory and never touches disk. The index is one dict of exact numbers and
one dict of prefixes per owner, plus the set of prefix lengths that owner uses, so a lookup
is at most ``2 * (1 + distinct prefix lengths)`` dict probes whatever the list size.

Which entry decides (:meth:`ListIndex.match`), in order:
1. the subscriber's own entries before global ones (a user's allow beats a global block);
2. within one scope the most specific pattern (exact, then the longest prefix), so
   "allow +1555*, block +15551234567" blocks that one number;
3. on the very same pattern: allow, then block, then dno.
Expired entries are skipped at lookup time (``now`` is passed in); :meth:`ListIndex.match_all`
returns every live hit in that order so the scorer can weigh them itself.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

MAX_E164_DIGITS = 15
_VISUAL_SEPARATORS = str.maketrans("", "", " -.()/\t")


@dataclass(frozen=True, slots=True)
class Invalid:
    """A rejected input, as a value: which field and why (safe to show to the user)."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class ListKind(StrEnum):
    BLOCK = "block"
    ALLOW = "allow"
    DNO = "dno"


class ListScope(StrEnum):
    GLOBAL = "global"
    USER = "user"


class ListSource(StrEnum):
    """Where an entry came from (provenance, shown to operators)."""

    API = "api"
    CSV = "csv"
    ADMIN = "admin"
    LEARNED = "learned"
    CONFIG = "config"


_KIND_RANK = {ListKind.ALLOW: 0, ListKind.BLOCK: 1, ListKind.DNO: 2}


@dataclass(frozen=True, slots=True)
class ListPattern:
    """Canonical E.164 digits (no ``+``); ``prefix`` means "every number starting so"."""

    digits: str
    prefix: bool = False

    def __str__(self) -> str:
        return f"+{self.digits}{'*' if self.prefix else ''}"

    def matches(self, number: str) -> bool:
        return number.startswith(self.digits) if self.prefix else number == self.digits


def parse_pattern(
    text: object, *, field: str = "number", allow_prefix: bool = True
) -> ListPattern | Invalid:
    """Read ``+15551234567``, ``15551234567``, ``+1 (555) 123-4567`` or ``+1555*``.

    Numbers must already be international (country code first): a list shared by
    subscribers of several regions cannot guess a national number's country.
    """
    if not isinstance(text, str):
        return Invalid(
            field, f"expected a string like +15551234567 or +1555*, got {type(text).__name__}"
        )
    s = text.strip().translate(_VISUAL_SEPARATORS)
    if not s:
        return Invalid(field, "empty number")
    prefix = s.endswith("*")
    if prefix:
        if not allow_prefix:
            return Invalid(
                field, f"{text!r}: a prefix (*) is not allowed here; give one full number"
            )
        s = s[:-1]
    if s.startswith("+"):
        s = s[1:]
    if not s:
        return Invalid(field, f"{text!r}: a prefix needs at least one digit before '*'")
    if not (s.isascii() and s.isdigit()):
        return Invalid(
            field, f"{text!r}: only digits, an optional leading '+' and a trailing '*' are allowed"
        )
    if s[0] == "0":
        return Invalid(field, f"{text!r}: E.164 numbers start with a country code (1-9), not 0")
    if len(s) > MAX_E164_DIGITS:
        return Invalid(
            field, f"{text!r}: {len(s)} digits; E.164 numbers have at most {MAX_E164_DIGITS}"
        )
    return ListPattern(s, prefix)


@dataclass(frozen=True, slots=True)
class ListEntry:
    id: int
    scope: ListScope
    user_id: int | None
    """Owner for scope ``user``; None for global entries."""
    kind: ListKind
    pattern: ListPattern
    note: str = ""
    source: ListSource = ListSource.API
    created: float = 0.0
    expires: float | None = None
    """UNIX seconds after which the entry no longer matches; None = never."""

    def active(self, now: float) -> bool:
        return self.expires is None or now < self.expires

    def to_json(self) -> dict[str, Any]:
        """The shape the HTTP API returns."""
        return {
            "id": self.id,
            "scope": self.scope.value,
            "user_id": self.user_id,
            "kind": self.kind.value,
            "number": str(self.pattern),
            "prefix": self.pattern.prefix,
            "note": self.note,
            "source": self.source.value,
            "created": self.created,
            "expires": self.expires,
        }


@dataclass(frozen=True, slots=True)
class NewListEntry:
    """An entry before it has an id: what the API and CSV import hand to the store."""

    scope: ListScope
    user_id: int | None
    kind: ListKind
    pattern: ListPattern
    note: str = ""
    source: ListSource = ListSource.API
    expires: float | None = None


MAX_NOTE_CHARS = 500


def check_new_entry(e: NewListEntry) -> Invalid | None:
    """Structural rules the database also enforces, checked early for a clear message."""
    if e.scope is ListScope.GLOBAL and e.user_id is not None:
        return Invalid("scope", "a global entry has no user")
    if e.scope is ListScope.USER and e.user_id is None:
        return Invalid("scope", "a user entry needs a user")
    if e.kind is ListKind.DNO and e.scope is not ListScope.GLOBAL:
        return Invalid("kind", "the Do-Not-Originate list is global only")
    if len(e.note) > MAX_NOTE_CHARS:
        return Invalid("note", f"at most {MAX_NOTE_CHARS} characters")
    return None


def entry_from_row(row: Mapping[str, Any] | sqlite3.Row) -> ListEntry:
    return ListEntry(
        id=int(row["id"]),
        scope=ListScope(row["scope"]),
        user_id=None if row["user_id"] is None else int(row["user_id"]),
        kind=ListKind(row["kind"]),
        pattern=ListPattern(str(row["pattern"]), bool(row["is_prefix"])),
        note=str(row["note"] or ""),
        source=ListSource(row["source"]),
        created=float(row["created"]),
        expires=None if row["expires"] is None else float(row["expires"]),
    )


ENTRY_COLUMNS = "id, scope, user_id, kind, pattern, is_prefix, note, source, created, expires"
"""The columns :func:`entries_from_tuples` reads, in order."""
_SCOPES = {s.value: s for s in ListScope}
_KINDS = {k.value: k for k in ListKind}
_SOURCES = {s.value: s for s in ListSource}


def entries_from_tuples(rows: Iterable[tuple[Any, ...]]) -> Iterator[ListEntry]:
    """Fast path for loading a million rows at start (``SELECT {ENTRY_COLUMNS}``, plain tuples)."""
    new = object.__new__
    setattr_ = object.__setattr__
    patterns: dict[tuple[str, int], ListPattern] = {}
    for i, scope, uid, kind, pattern, is_prefix, note, source, created, expires in rows:
        # Built field by field: a frozen dataclass __init__ costs several times more, and at
        # start-up with a million entries that is seconds.
        e = new(ListEntry)
        p = patterns.get((pattern, is_prefix)) if is_prefix else None
        if p is None:
            p = ListPattern(pattern, bool(is_prefix))
            if is_prefix:
                patterns[(pattern, is_prefix)] = p
        setattr_(e, "id", i)
        setattr_(e, "scope", _SCOPES[scope])
        setattr_(e, "user_id", uid)
        setattr_(e, "kind", _KINDS[kind])
        setattr_(e, "pattern", p)
        setattr_(e, "note", note or "")
        setattr_(e, "source", _SOURCES[source])
        setattr_(e, "created", float(created))
        setattr_(e, "expires", None if expires is None else float(expires))
        yield e


@dataclass(frozen=True, slots=True)
class ListHit:
    """The entry that matched a number, and whether the owner was the subscriber."""

    entry: ListEntry

    @property
    def kind(self) -> ListKind:
        return self.entry.kind

    @property
    def scope(self) -> ListScope:
        return self.entry.scope

    @property
    def exact(self) -> bool:
        return not self.entry.pattern.prefix


class _OwnerIndex:
    """One owner's entries: exact numbers and prefixes, each pattern → up to 3 entries."""

    __slots__ = ("exact", "length_counts", "lengths", "prefix")

    def __init__(self) -> None:
        self.exact: dict[str, list[ListEntry]] = {}
        self.prefix: dict[str, list[ListEntry]] = {}
        self.length_counts: dict[int, int] = {}
        self.lengths: tuple[int, ...] = ()
        """Prefix lengths in use, longest first."""

    def add(self, e: ListEntry) -> None:
        d = self.prefix if e.pattern.prefix else self.exact
        bucket = d.get(e.pattern.digits)
        if bucket is None:
            d[e.pattern.digits] = [e]
        else:
            bucket.append(e)
            bucket.sort(key=lambda x: _KIND_RANK[x.kind])
        if e.pattern.prefix:
            n = len(e.pattern.digits)
            self.length_counts[n] = self.length_counts.get(n, 0) + 1
            if self.length_counts[n] == 1:
                self.lengths = tuple(sorted(self.length_counts, reverse=True))

    def remove(self, e: ListEntry) -> None:
        d = self.prefix if e.pattern.prefix else self.exact
        bucket = d.get(e.pattern.digits, [])
        bucket[:] = [x for x in bucket if x.id != e.id]
        if not bucket:
            d.pop(e.pattern.digits, None)
        if e.pattern.prefix:
            n = len(e.pattern.digits)
            self.length_counts[n] -= 1
            if self.length_counts[n] == 0:
                del self.length_counts[n]
                self.lengths = tuple(sorted(self.length_counts, reverse=True))

    def first(self, number: str, now: float) -> ListEntry | None:
        """The first of :meth:`hits` (written out: this is the call path's hot loop)."""
        bucket = self.exact.get(number)
        if bucket:
            for e in bucket:
                if e.expires is None or now < e.expires:
                    return e
        if self.lengths:
            n = len(number)
            prefix = self.prefix
            for length in self.lengths:
                if length <= n:
                    bucket = prefix.get(number[:length])
                    if bucket:
                        for e in bucket:
                            if e.expires is None or now < e.expires:
                                return e
        return None

    def empty(self) -> bool:
        return not self.exact and not self.prefix

    def hits(self, number: str, now: float) -> Iterator[ListEntry]:
        """Live entries matching ``number``, most specific first, allow < block < dno."""
        bucket = self.exact.get(number)
        if bucket:
            for e in bucket:
                if e.expires is None or now < e.expires:
                    yield e
        n = len(number)
        for length in self.lengths:
            if length > n:
                continue
            bucket = self.prefix.get(number[:length])
            if bucket:
                for e in bucket:
                    if e.expires is None or now < e.expires:
                        yield e


_GLOBAL = 0  # owner key of global entries; user ids are SQLite rowids, always >= 1


class ListIndex:
    """Every list entry in memory, matched without touching disk.

    Mutated only by the store (on the event-loop thread, after the change is durable), so
    a change made through the store API is seen by the very next :meth:`match`.
    """

    def __init__(self, entries: Iterable[ListEntry] = ()) -> None:
        self._owners: dict[int, _OwnerIndex] = {}
        self._by_id: dict[int, ListEntry] = {}
        for e in entries:
            self.add(e)

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, entry_id: int) -> ListEntry | None:
        return self._by_id.get(entry_id)

    def add(self, e: ListEntry) -> None:
        """Insert ``e``, replacing any entry with the same id."""
        if e.id in self._by_id:
            self.remove(e.id)
        owner = _GLOBAL if e.user_id is None else e.user_id
        idx = self._owners.get(owner)
        if idx is None:
            idx = self._owners[owner] = _OwnerIndex()
        idx.add(e)
        self._by_id[e.id] = e

    def remove(self, entry_id: int) -> ListEntry | None:
        e = self._by_id.pop(entry_id, None)
        if e is None:
            return None
        owner = _GLOBAL if e.user_id is None else e.user_id
        idx = self._owners[owner]
        idx.remove(e)
        if idx.empty():
            del self._owners[owner]
        return e

    def match(self, user_id: int | None, number: str, now: float) -> ListHit | None:
        """The deciding live entry for a call from ``number`` to ``user_id`` (None: global only)."""
        owners = self._owners
        if user_id is not None:
            idx = owners.get(user_id)
            if idx is not None and (e := idx.first(number, now)) is not None:
                return ListHit(e)
        idx = owners.get(_GLOBAL)
        if idx is not None and (e := idx.first(number, now)) is not None:
            return ListHit(e)
        return None

    def match_all(self, user_id: int | None, number: str, now: float) -> tuple[ListHit, ...]:
        """Every live entry matching, in decision order (the first is :meth:`match`'s)."""
        out: list[ListHit] = []
        if user_id is not None and (idx := self._owners.get(user_id)) is not None:
            out.extend(ListHit(e) for e in idx.hits(number, now))
        if (idx := self._owners.get(_GLOBAL)) is not None:
            out.extend(ListHit(e) for e in idx.hits(number, now))
        return tuple(out)

    def entries(
        self,
        user_id: int | None,
        kind: ListKind | None = None,
        *,
        include_expired: bool = True,
        now: float = 0.0,
    ) -> list[ListEntry]:
        """One owner's entries (``user_id`` None = the global lists), oldest first.

        Never mixes owners: a subscriber's listing cannot show anybody else's entries.
        """
        idx = self._owners.get(_GLOBAL if user_id is None else user_id)
        if idx is None:
            return []
        out = [
            e
            for bucket in (*idx.exact.values(), *idx.prefix.values())
            for e in bucket
            if (kind is None or e.kind is kind) and (include_expired or e.active(now))
        ]
        out.sort(key=lambda e: e.id)
        return out

    def expired(self, now: float) -> list[int]:
        """Ids of entries whose expiry has passed (for the periodic purge)."""
        return [i for i, e in self._by_id.items() if not e.active(now)]

    def clear(self) -> None:
        self._owners.clear()
        self._by_id.clear()

    def drop_owner(self, user_id: int) -> None:
        """Forget a deleted user's entries (the database cascades the rows)."""
        idx = self._owners.pop(user_id, None)
        if idx is None:
            return
        for bucket in (*idx.exact.values(), *idx.prefix.values()):
            for e in bucket:
                self._by_id.pop(e.id, None)
