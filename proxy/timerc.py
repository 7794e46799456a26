"""The proxy's own deadlines: Timer C (RFC 3261 §16.6 item 11) and the wait after a CANCEL.

The transaction machines keep their own timers (``proxy.transaction``); these two belong
to the proxy because they span both sides of a call: Timer C (> 3 minutes, reset by each
provisional response, §16.7 item 2) CANCELs a ringing branch, and 64*T1 after our CANCEL
without a final response the caller gets 408.

Why ids in the heap: a Timer C entry lives 3 minutes, and keeping every answered call's
context (and its messages) alive that long would cost memory and GC time. Entries are
never removed from the heap; an entry is stale when its context is gone, already
answered, or now carries another deadline, and stale entries are skipped lazily.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from itertools import count

from .context import CallContext


class TimerC:
    """A heap of ``(deadline, seq, context id)`` with the contexts that still wait."""

    __slots__ = ("_heap", "_seq", "_timed")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str]] = []
        self._timed: dict[str, CallContext] = {}
        self._seq = count()

    def push(self, deadline: float, ctx: CallContext) -> None:
        """Arm ``deadline`` (the caller has stored it in ``ctx.timer_c`` or
        ``ctx.cancel_deadline``; any other value later makes this entry stale)."""
        self._timed[ctx.id] = ctx
        heapq.heappush(self._heap, (deadline, next(self._seq), ctx.id))

    def forget(self, ctx: CallContext) -> None:
        """The call got its final response: its entries are stale from now on."""
        self._timed.pop(ctx.id, None)

    def next_deadline(self) -> float | None:
        """The earliest live deadline (stale entries on top are dropped on the way). The
        runtime asks after every datagram, so the validity check is inlined here."""
        heap, timed = self._heap, self._timed
        while heap:
            deadline, _, cid = heap[0]
            ctx = timed.get(cid)
            if (
                ctx is not None
                and not ctx.final_sent
                and (deadline == ctx.timer_c or deadline == ctx.cancel_deadline)
            ):
                return deadline
            heapq.heappop(heap)
        return None

    def due(self, now: float) -> Iterator[tuple[CallContext, float]]:
        """Each live ``(context, deadline)`` at or before ``now``, earliest first; entries
        pushed while iterating are seen too."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            if self._valid(entry):
                yield self._timed[entry[2]], entry[0]

    def _valid(self, entry: tuple[float, int, str]) -> bool:
        deadline, _, cid = entry
        ctx = self._timed.get(cid)
        return (
            ctx is not None
            and not ctx.final_sent
            and deadline in (ctx.timer_c, ctx.cancel_deadline)
        )
