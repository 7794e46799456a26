"""The UA's front door: one public UDP port relaying to several pjsua2 worker processes.

Why: the pjsua2 wheel is built with a compile-time limit of 4 calls per process
(``PJSUA_MAX_CALLS``), and a passed challenge holds two legs. Capacity therefore comes
from processes; the proxy still diverts to one address (``[challenge] listen``).

Theory of operation (sans-IO :class:`Relay`, an asyncio adapter around it):

- A request from outside with a Call-ID the relay has seen goes to the same worker
  (INVITE retransmissions, CANCEL, ACK for a non-2xx answer). A new INVITE goes to the
  worker reporting the most free call slots (ties: round robin); the relay counts the
  assignment (2 slots for a challenge, which may be bridged; 1 for voicemail) against that
  worker until its next report. Other new requests (OPTIONS)
  go to the least-loaded worker too.
- A SIP message from a worker's address goes back to the peer that sent the Call-ID
  (responses routed by ``rport`` come back through us). Everything after the INVITE --
  ACK for 2xx, BYE, INFO, re-INVITE -- travels between the peer and the worker's own
  Contact address directly, so the relay holds no dialog state.
- Workers report ``SWLOAD <free slots>`` datagrams to the relay every 200 ms.

- A new request from a source outside ``allowed_sources`` (``[challenge]
  divert_sources``: the proxy) is answered 403 here and never reaches a worker: only the
  proxy may divert, because a divert names the callee the UA will bridge to.

Entries expire after ``idle_timeout`` seconds without a packet.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

log = logging.getLogger("spitwall.challenge.front")

Addr = tuple[str, int]
STATUS_PREFIX = b"SWLOAD "
_CALL_ID = re.compile(rb"^(?:call-id|i)[ \t]*:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)


def call_id_of(data: bytes) -> bytes | None:
    head = data.split(b"\r\n\r\n", 1)[0]
    m = _CALL_ID.search(head)
    return m.group(1) if m else None


def is_request(data: bytes, method: bytes | None = None) -> bool:
    first = data.split(b"\r\n", 1)[0]
    if first.startswith(b"SIP/2.0 ") or b" SIP/2.0" not in first:
        return False
    return method is None or first.startswith(method + b" ")


_COPY = re.compile(
    rb"^(?:via|v|from|f|to|t|call-id|i|cseq)[ \t]*:.*$", re.IGNORECASE | re.MULTILINE
)


def forbidden(request: bytes) -> bytes:
    """A 403 for a request from a source that may not divert calls to the UA (RFC 3261
    §8.2.6: Via, From, To, Call-ID and CSeq copied; a To tag added)."""
    head = request.split(b"\r\n\r\n", 1)[0]
    lines = [m.group(0).rstrip(b"\r") for m in _COPY.finditer(head)]
    out = [b"SIP/2.0 403 Forbidden (not a trusted divert source)"]
    for line in lines:
        name = line.split(b":", 1)[0].strip().lower()
        if name in (b"to", b"t") and b";tag=" not in line.lower():
            line += b";tag=swfront"
        out.append(line)
    out += [b"Content-Length: 0", b"", b""]
    return b"\r\n".join(out)


@dataclass(slots=True)
class _Entry:
    worker: int
    peer: Addr
    seen: float


@dataclass(slots=True)
class _Worker:
    addr: Addr
    free: int
    reported_at: float = -1e9


class Relay:
    """Decides where every datagram goes. ``datagram()`` returns ``[(bytes, addr)]``."""

    def __init__(
        self,
        workers: list[Addr],
        *,
        slots: int = 4,
        idle_timeout: float = 300.0,
        allowed_sources: frozenset[str] | None = None,
    ):
        self.workers = [_Worker(a, slots) for a in workers]
        self.allowed = allowed_sources
        self._by_addr = {w.addr: i for i, w in enumerate(self.workers)}
        self.calls: dict[bytes, _Entry] = {}
        self.idle_timeout = idle_timeout
        self._rr = 0
        self._next_expiry = 0.0
        self.dropped = 0
        self.refused = 0

    def set_worker(self, index: int, addr: Addr) -> None:
        """A restarted worker came back on a new address."""
        old = self.workers[index].addr
        self._by_addr.pop(old, None)
        self.workers[index].addr = addr
        self._by_addr[addr] = index

    def datagram(self, data: bytes, src: Addr, now: float) -> list[tuple[bytes, Addr]]:
        if now >= self._next_expiry:
            self._expire(now)
        index = self._by_addr.get(src)
        if index is not None:
            return self._from_worker(index, data, now)
        if not data.strip():
            return []  # keep-alive
        cid = call_id_of(data)
        if cid is None:
            self.dropped += 1
            return []
        entry = self.calls.get(cid)
        if entry is None:
            if not is_request(data):
                self.dropped += 1
                return []
            if self.allowed is not None and src[0] not in self.allowed:
                self.refused += 1
                if is_request(data, b"ACK"):
                    return []
                return [(forbidden(data), src)]
            first = data.split(b"\r\n", 1)[0]
            need = 1 if b"sw-mode=voicemail" in first or not is_request(data, b"INVITE") else 2
            entry = _Entry(self._pick(need), src, now)
            self.calls[cid] = entry
        else:
            entry.peer = src
            entry.seen = now
        return [(data, self.workers[entry.worker].addr)]

    def _from_worker(self, index: int, data: bytes, now: float) -> list[tuple[bytes, Addr]]:
        if data.startswith(STATUS_PREFIX):
            try:
                free = int(data[len(STATUS_PREFIX) :].strip())
            except ValueError:
                return []
            w = self.workers[index]
            w.free, w.reported_at = free, now
            return []
        cid = call_id_of(data)
        entry = self.calls.get(cid) if cid is not None else None
        if entry is None:
            self.dropped += 1
            return []
        entry.seen = now
        return [(data, entry.peer)]

    def _pick(self, need: int) -> int:
        n = len(self.workers)
        best, best_free = 0, -1
        for k in range(n):
            i = (self._rr + k) % n
            if self.workers[i].free > best_free:
                best, best_free = i, self.workers[i].free
        self._rr = (best + 1) % n
        self.workers[best].free -= need  # until the worker's next report
        return best

    def _expire(self, now: float) -> None:
        self._next_expiry = now + 5.0
        cutoff = now - self.idle_timeout
        for cid in [c for c, e in self.calls.items() if e.seen < cutoff]:
            del self.calls[cid]
