"""Finding the transaction a message belongs to, and keeping every live one's timers.

Matching (RFC 3261 §17.1.3, §17.2.3) is done on keys the core computes from plain
strings it has already parsed — this module never sees a SIP message:

* a response matches a client transaction by the top Via ``branch`` and the CSeq
  method (``client_key``): the method tells a CANCEL apart from the INVITE it cancels,
  which share a branch;
* a request matches a server transaction by ``branch``, the top Via ``sent-by`` and the
  method, an ACK counting as INVITE (``server_key``); a CANCEL gets its own transaction,
  and the core finds the INVITE it cancels with ``server_key(branch, sent_by, "INVITE")``;
* a request whose branch lacks the RFC 3261 magic cookie ``z9hG4bK``
  (``is_rfc3261_branch``) comes from an RFC 2543 element and is matched on the fields
  of §17.2.3's fallback (``legacy_server_key``).

Timers: the table is the one thing the asyncio side re-arms a timer for.  A heap holds
(deadline, seq, key, transaction) entries; an entry is valid while it is the one
recorded for its transaction in ``_deadline``.  When a transaction's next deadline moves
*earlier* (it tells the table after every input), a new entry is pushed and the old one
goes stale; when it moves later the old entry is kept and, when it comes up, re-pushed at
the real deadline.  Stale entries are skipped on the way out ("lazy invalidation"), and
the heap is rebuilt if they ever outnumber the live ones.  So ``get_timer`` is O(1)
amortised and ``handle_timer`` O(log n) per due transaction, at 50 000 transactions as at 5.
A transaction that reaches Terminated leaves the table by itself.
"""

from __future__ import annotations

import heapq
from itertools import count
from typing import Any, NamedTuple

from proxy.transaction.events import Action
from proxy.transaction.machine import Transaction
from proxy.transaction.timers import IdEnum

_STALE = object()
_new_tuple = tuple.__new__
"""Builds a named tuple without its generated (Python-level) ``__new__``."""

MAGIC_COOKIE = "z9hG4bK"
"""RFC 3261 §8.1.1.7: every branch an RFC 3261 element makes starts with this."""


class ClientKey(NamedTuple):
    """RFC 3261 §17.1.3: top Via branch + CSeq method.

    Keys are named tuples (immutable values like the dataclasses elsewhere) because they
    are hashed on every dict lookup of the core and the table — several per message — and
    a tuple hashes and compares in C; the two key kinds never compare equal (their lengths
    and field types differ)."""

    branch: str
    method: str


class ServerKey(NamedTuple):
    """RFC 3261 §17.2.3: top Via branch + sent-by + method (ACK filed as INVITE)."""

    branch: str
    sent_by: str
    method: str


class LegacyServerKey(NamedTuple):
    """RFC 3261 §17.2.3 fallback for RFC 2543 requests: the precomputed matching fields
    plus the method (ACK filed as INVITE)."""

    fields: tuple[str, ...]
    method: str


Key = ClientKey | ServerKey | LegacyServerKey


def is_rfc3261_branch(branch: str) -> bool:
    """True when ``branch`` carries the magic cookie, so branch matching applies."""
    return branch.startswith(MAGIC_COOKIE)


def client_key(branch: str, method: str) -> ClientKey:
    """Key of the client transaction a response with this top-Via branch and CSeq method
    belongs to (and of the one created for a request sent with them)."""
    return _new_tuple(ClientKey, (branch, method))


def _server_method(method: str) -> str:
    # §17.2.3: "the method of the request matches the one that created the transaction,
    # except for ACK, where the method of the request that created the transaction is
    # INVITE."  Methods are case-sensitive (§7.1), so only ACK is rewritten.
    return "INVITE" if method == "ACK" else method


def server_key(branch: str, sent_by: str, method: str) -> ServerKey:
    """Key of the server transaction for a request with this top Via branch, sent-by
    (``host[:port]`` as written; the host part compares case-insensitively) and method."""
    return _new_tuple(ServerKey, (branch, sent_by.lower(), _server_method(method)))


def legacy_server_key(fields: tuple[str, ...], method: str) -> LegacyServerKey:
    """Key for an RFC 2543 request (no magic cookie), §17.2.3.

    ``fields`` is what the core extracts, canonicalised, in this order: Request-URI,
    From tag, Call-ID, CSeq number, top Via (whole value).  The To tag is left out on
    purpose: an INVITE retransmission repeats the original's, but the ACK carries the tag
    of *our* response; a core that wants the stricter check compares it after lookup.
    """
    return LegacyServerKey(tuple(fields), _server_method(method))


class Admission(IdEnum):
    """Result of ``TransactionTable.add``."""

    ADDED = "added"
    FULL = "full"  # at max_transactions: answer 503 (RFC 3261 §21.5.4) and keep no state
    DUPLICATE = "duplicate"  # a live transaction already has this key: feed that one


class TransactionTable:
    """Live transactions by key, with the earliest timer over all of them."""

    __slots__ = ("_deadline", "_heap", "_next", "_seq", "_txs", "max_transactions")

    def __init__(self, max_transactions: int = 100_000) -> None:
        self.max_transactions = max_transactions
        """Beyond this many live transactions ``add`` answers FULL (the core sends 503)."""
        self._txs: dict[Key, Transaction[Any]] = {}
        self._deadline: dict[Key, float] = {}
        self._heap: list[tuple[float, int, Key, Transaction[Any]]] = []
        self._seq = count()
        self._next: float | object | None = _STALE
        """``get_timer``'s answer until a transaction changes (the runtime asks after
        every input, most of which change nothing here)."""

    def __len__(self) -> int:
        return len(self._txs)

    def __contains__(self, key: object) -> bool:
        return key in self._txs

    @property
    def full(self) -> bool:
        return len(self._txs) >= self.max_transactions

    def get(self, key: Key) -> Transaction[Any] | None:
        return self._txs.get(key)

    def add(self, key: Key, tx: Transaction[Any]) -> Admission:
        """File ``tx`` under ``key``; from now on the table follows its timers and drops it
        when it terminates.  Add a client before or after ``start`` — either works."""
        if key in self._txs:
            return Admission.DUPLICATE
        if self.full:
            return Admission.FULL
        self._txs[key] = tx
        tx.key = key
        tx._attach(self._changed)
        self._changed(tx)
        return Admission.ADDED

    def remove(self, key: Key) -> Transaction[Any] | None:
        """Forget the transaction under ``key`` (its heap entries go stale)."""
        self._next = _STALE
        tx = self._txs.pop(key, None)
        self._deadline.pop(key, None)
        if tx is not None:
            tx._attach(None)
        return tx

    def get_timer(self) -> float | None:
        """The earliest deadline over every live transaction, or None."""
        nxt = self._next
        if nxt is not _STALE:
            return nxt  # type: ignore[return-value]
        self._next = nxt = self._earliest()
        return nxt

    def _earliest(self) -> float | None:
        heap = self._heap
        while heap:
            deadline, _, key, tx = heap[0]
            if self._txs.get(key) is not tx or self._deadline.get(key) != deadline:
                heapq.heappop(heap)  # stale
                continue
            actual = tx.get_timer()
            if actual == deadline:
                return deadline
            # The transaction's timer moved later (or stopped): re-file it.
            heapq.heappop(heap)
            del self._deadline[key]
            self._schedule(key, tx, actual)
        return None

    def handle_timer(self, now: float) -> list[tuple[Transaction[Any], list[Action]]]:
        """Fire every transaction timer due by ``now``; terminated ones leave the table."""
        fired: list[tuple[Transaction[Any], list[Action]]] = []
        self._next = _STALE
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, key, tx = heapq.heappop(heap)
            if self._txs.get(key) is not tx or self._deadline.get(key) != deadline:
                continue  # stale
            del self._deadline[key]
            actual = tx.get_timer()
            if actual is not None and actual <= now:
                actions = tx.handle_timer(now)  # tells _changed, which re-files or drops it
                if actions:
                    fired.append((tx, actions))
            else:
                self._schedule(key, tx, actual)
        self._compact()
        return fired

    # ----------------------------------------------------------------- internals

    def _changed(self, tx: Transaction[Any]) -> None:
        """Hook every filed transaction calls after each input and timer."""
        self._next = _STALE
        key: Key = tx.key  # type: ignore[assignment]  # set by add()
        if self._txs.get(key) is not tx:
            return
        if tx._state is tx._TERMINAL:  # tx.terminated, without the property call
            self.remove(key)
            return
        timers = tx._timers
        if not timers:
            return
        actual = min(timers.values())  # tx.get_timer(), without the call
        current = self._deadline.get(key)
        if current is None or actual < current:
            self._deadline[key] = actual
            heapq.heappush(self._heap, (actual, next(self._seq), key, tx))

    def _schedule(self, key: Key, tx: Transaction[Any], deadline: float | None) -> None:
        if deadline is None:
            return
        self._deadline[key] = deadline
        heapq.heappush(self._heap, (deadline, next(self._seq), key, tx))

    def _compact(self) -> None:
        if len(self._heap) > 2 * len(self._deadline) + 1024:
            self._heap = [(d, next(self._seq), k, self._txs[k]) for k, d in self._deadline.items()]
            heapq.heapify(self._heap)
