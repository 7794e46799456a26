"""Just enough dialog memory to report call outcomes (not to route: Record-Route does that).

A transaction-stateful proxy does not need dialog state to relay BYE or re-INVITE — the
Route set carries them. Reputation, though, learns from *how long* a screened call lasted
and *who hung up*, so for each answered screened INVITE we keep (Call-ID → answer time,
caller's From tag, decision id, facts) until its BYE passes or the entry ages out. The
table is bounded (oldest entries go first), so an attacker answering calls it never hangs
up cannot grow it without limit.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

from .screen import InviteFacts, Outcome


@dataclass(frozen=True, slots=True)
class Answered:
    call_id: str
    answered_at: float
    """Monotonic seconds of the 2xx."""
    caller_tag: str
    decision_id: str | None
    facts: InviteFacts | None
    wall_offset: float


class DialogOutcomes:
    def __init__(self, max_entries: int = 100_000, max_age: float = 4 * 3600.0) -> None:
        self._entries: OrderedDict[str, Answered] = OrderedDict()
        self.max_entries = max_entries
        self.max_age = max_age

    def __len__(self) -> int:
        return len(self._entries)

    def answered(self, entry: Answered) -> None:
        self._entries[entry.call_id] = entry
        self._entries.move_to_end(entry.call_id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        # Age out from the old end (entries are in answer order).
        while self._entries:
            first = next(iter(self._entries.values()))
            if entry.answered_at - first.answered_at <= self.max_age:
                break
            self._entries.popitem(last=False)

    def bye(self, call_id: str, from_tag: str | None, now: float) -> Outcome | None:
        """The Outcome of a BYE in an answered screened call (None if we do not know it)."""
        e = self._entries.pop(call_id, None)
        if e is None:
            return None
        by: Literal["caller", "callee"] = "caller" if from_tag == e.caller_tag else "callee"
        return Outcome(
            "bye",
            call_id,
            now + e.wall_offset,
            duration=max(0.0, now - e.answered_at),
            by=by,
            decision_id=e.decision_id,
            facts=e.facts,
        )
