"""Learned allow: numbers each user called or talked to, with how strongly they were
identified at the time, so that a spoofed known number does not slip through.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from sqlite_utils import Database


class IdentityStrength(IntEnum):
    """How much a call's caller identity is vouched for."""

    NONE = 0
    """Unsigned, failed verification or unknown."""
    C = 1
    B = 2
    A = 3


def identity_strength(verstat: str | None, attest: str | None) -> IdentityStrength:
    if verstat != "TN-Validation-Passed":
        return IdentityStrength.NONE
    return {"A": IdentityStrength.A, "B": IdentityStrength.B, "C": IdentityStrength.C}.get(
        (attest or "").upper(), IdentityStrength.NONE
    )


@dataclass(frozen=True, slots=True)
class LearnedNumber:
    user_id: int
    tn: str
    strength: IdentityStrength
    """The strongest identity this number has been seen with by this user (a ratchet)."""
    how: str
    """``outbound`` (the user called it) or ``accepted`` (a long answered call)."""
    learned: float
    last_seen: float
    count: int = 1


class LearnedAllowBook:
    """Numbers each user knows, with the identity strength they were learned at.

    ``knows(user, tn, strength)`` is true only when the new call is at least as strongly
    identified as the number has been before, so once a number has called with full
    attestation, an unattested call "from" it is not let through as known (like HSTS).
    """

    def __init__(self) -> None:
        self._by: dict[tuple[int, str], LearnedNumber] = {}

    def __len__(self) -> int:
        return len(self._by)

    def get(self, user_id: int, tn: str) -> LearnedNumber | None:
        return self._by.get((user_id, tn))

    def knows(self, user_id: int, tn: str, strength: IdentityStrength | int) -> bool:
        n = self._by.get((user_id, tn))
        return n is not None and int(strength) >= int(n.strength)

    def for_user(self, user_id: int) -> list[LearnedNumber]:
        return sorted((n for (u, _), n in self._by.items() if u == user_id), key=lambda n: n.tn)

    def learn(
        self, user_id: int, tn: str, strength: IdentityStrength, how: str, now: float
    ) -> LearnedNumber:
        old = self._by.get((user_id, tn))
        if old is None:
            n = LearnedNumber(user_id, tn, strength, how, now, now, 1)
        else:
            n = LearnedNumber(
                user_id, tn, max(old.strength, strength), old.how, old.learned, now, old.count + 1
            )
        self._by[(user_id, tn)] = n
        return n

    def put(self, n: LearnedNumber) -> None:
        self._by[(n.user_id, n.tn)] = n

    def clear(self) -> None:
        self._by.clear()

    def forget(self, user_id: int, tn: str | None = None) -> None:
        for k in [k for k in self._by if k[0] == user_id and (tn is None or k[1] == tn)]:
            del self._by[k]


def upsert_learned(db: Database, n: LearnedNumber) -> None:
    """Merge with what other processes learned: the strongest strength wins (the ratchet)."""
    db.execute(
        "INSERT INTO learned_allow (user_id, tn, strength, how, learned, last_seen, count) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, tn) DO UPDATE SET "
        "strength = max(strength, excluded.strength),"
        " last_seen = max(last_seen, excluded.last_seen), count = count + 1",
        [n.user_id, n.tn, int(n.strength), n.how, n.learned, n.last_seen, n.count],
    )
