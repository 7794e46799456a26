"""The read-only lookups the scorer needs, as Protocols.

Why separate: the scorer must not depend on how the store keeps lists and counters, only on
what it can ask. The store's objects satisfy these structurally (``lists.ListIndex``,
``feedback.ReputationBook``, ``feedback.LearnedAllowBook``); tests pass small doubles. All
of them answer from memory: nothing here may touch disk on the call path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class ListEntryView(Protocol):
    @property
    def pattern(self) -> object: ...
    @property
    def source(self) -> object: ...


class ListHitView(Protocol):
    """One live list entry matching a number (``lists.ListHit`` satisfies this)."""

    @property
    def kind(self) -> str: ...
    @property
    def scope(self) -> str: ...
    @property
    def entry(self) -> ListEntryView: ...


class ListLookup(Protocol):
    """``lists.ListIndex``: every live hit, the deciding one first (user before global)."""

    def match_all(self, user_id: int | None, number: str, now: float) -> Sequence[ListHitView]: ...


class CountersView(Protocol):
    """Time-decayed feedback counts for one key (``feedback.ReputationCounters``)."""

    @property
    def unwanted_607(self) -> float: ...
    @property
    def reports_spam(self) -> float: ...
    @property
    def reports_not_spam(self) -> float: ...
    @property
    def challenge_failed(self) -> float: ...
    @property
    def challenge_passed(self) -> float: ...
    @property
    def voicemail_left(self) -> float: ...
    @property
    def first_seen(self) -> float | None: ...


class ReputationLookup(Protocol):
    """``feedback.ReputationBook``: counters per key, ``kind`` in tn / ip / origid / spc."""

    def get(self, kind: str, key: str, now: float) -> CountersView: ...


class LearnedView(Protocol):
    @property
    def strength(self) -> int:
        """Identity strength the number was learned at (see :func:`strength_of`)."""
        ...


class LearnedLookup(Protocol):
    """``feedback.LearnedAllowBook``: numbers a user called or accepted (learned allow)."""

    def get(self, user_id: int, tn: str) -> LearnedView | None: ...
