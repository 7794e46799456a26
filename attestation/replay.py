"""Replay detection for PASSporTs (RFC 8224 §12.1 cut-and-paste attacks).

Freshness bounds how long a stolen Identity header is useful, but within the window an
attacker who saw one signed INVITE can paste its Identity header into calls of his own.
The same PASSporT legitimately shows up more than once only for the same call: forked or
spiralled branches and retransmissions carry the same Call-ID. So the cache remembers, per
signature, the Call-ID it was first seen with, until the PASSporT could no longer pass the
freshness check anyway; the same signature with another Call-ID is a replay.

Pure and clock-free: the caller passes ``now``. Memory is bounded by ``max_entries``
(oldest entries are dropped first; a flood of distinct valid PASSporTs needs valid
signatures, so the bound is about honest traffic volume).
"""

from __future__ import annotations

from collections import OrderedDict


class ReplayCache:
    """Signature → (Call-ID, forget-after time), in insertion order for cheap expiry."""

    __slots__ = ("_entries", "_head", "max_entries")

    def __init__(self, max_entries: int = 200_000) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[bytes, tuple[str, float]] = OrderedDict()
        self._head = float("inf")

    def __len__(self) -> int:
        return len(self._entries)

    def seen_elsewhere(self, signature: bytes, call_id: str, now: float, forget_at: float) -> bool:
        """Record ``signature`` for ``call_id``; True if it was seen with another Call-ID.

        ``forget_at`` is when the PASSporT stops passing freshness (iat + window), after
        which remembering it is pointless. An empty Call-ID is never judged nor recorded.
        """
        if now > self._head:
            self._expire(now)
        if not call_id:
            return False
        entries = self._entries
        entry = entries.get(signature)
        if entry is not None:
            if entry[1] >= now:
                return entry[0] != call_id
            entries.move_to_end(signature)  # an expired entry re-used: to the young end
        entries[signature] = (call_id, forget_at)
        while len(entries) > self.max_entries:
            entries.popitem(last=False)
            self._head = -float("inf")  # recompute on the next call
        if forget_at < self._head:
            self._head = forget_at if len(self._entries) == 1 else -float("inf")
        return False

    def _expire(self, now: float) -> None:
        """Drop entries whose ``forget_at`` is before ``now`` (caller: ``now > _head``)."""
        # Entries are appended roughly in forget_at order (iat ≈ now); stop at the first live
        # one. ``_head`` (the first entry's forget_at) makes the usual nothing-to-do case cheap.
        entries = self._entries
        while entries:
            sig = next(iter(entries))
            forget_at = entries[sig][1]
            if forget_at >= now:
                self._head = forget_at
                return
            del entries[sig]
        self._head = float("inf")
