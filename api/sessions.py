"""Web sessions (cookie → user) and the failed-login limiter, both in memory.

Why in memory: a session is a convenience for the web page, not an account; losing them on
restart only means logging in again, and nothing secret reaches the disk. The cookie holds
32 random bytes; the table is keyed by their SHA-256, so a heap dump does not hand out live
cookies. Each session has its own CSRF token, which the page sends in ``X-CSRF-Token`` on
every state-changing request (the cookie alone never authorises a change).

Clocks are injected (``now`` arguments) so expiry and lock-out are tested without sleeping.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict, deque
from dataclasses import dataclass


def _key(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(slots=True)
class Session:
    user_id: int
    csrf: str
    created: float
    last_seen: float


class Sessions:
    """Live sessions, oldest first (bounded: the oldest goes when full)."""

    def __init__(self, *, ttl: float, idle: float, max_sessions: int) -> None:
        self.ttl = ttl
        self.idle = idle
        self.max_sessions = max_sessions
        self._by_key: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_key)

    def create(self, user_id: int, now: float) -> tuple[str, Session]:
        """A new session; returns the raw cookie value (only here) and the session."""
        raw = secrets.token_urlsafe(32)
        s = Session(user_id, secrets.token_urlsafe(24), now, now)
        self._by_key[_key(raw)] = s
        while len(self._by_key) > self.max_sessions:
            self._by_key.popitem(last=False)
        return raw, s

    def get(self, raw: str, now: float) -> Session | None:
        if not raw or len(raw) > 200:
            return None
        k = _key(raw)
        s = self._by_key.get(k)
        if s is None:
            return None
        if now - s.created >= self.ttl or now - s.last_seen >= self.idle:
            del self._by_key[k]
            return None
        s.last_seen = now
        return s

    def drop(self, raw: str) -> None:
        self._by_key.pop(_key(raw), None)

    def drop_user(self, user_id: int) -> None:
        for k in [k for k, s in self._by_key.items() if s.user_id == user_id]:
            del self._by_key[k]

    @staticmethod
    def csrf_ok(s: Session, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(s.csrf.encode(), (sent or "").encode())


class LoginLimiter:
    """At most ``max_failures`` failed logins per key (client address, account name) in a
    sliding ``window``; further attempts are refused until the oldest failure ages out."""

    MAX_KEYS = 50_000

    def __init__(self, max_failures: int, window: float) -> None:
        self.max_failures = max_failures
        self.window = window
        self._fails: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        q = self._fails.get(key)
        if q is None:
            return None
        while q and now - q[0] >= self.window:
            q.popleft()
        if not q:
            del self._fails[key]
            return None
        return q

    def retry_after(self, keys: list[str], now: float) -> float | None:
        """Seconds until any of ``keys`` may try again, or None if all may try now."""
        wait = 0.0
        for k in keys:
            q = self._recent(k, now)
            if q is not None and len(q) >= self.max_failures:
                wait = max(wait, self.window - (now - q[0]))
        return wait if wait > 0 else None

    def failed(self, keys: list[str], now: float) -> None:
        for k in keys:
            q = self._fails.get(k)
            if q is None:
                q = self._fails[k] = deque(maxlen=self.max_failures)
            q.append(now)
            self._fails.move_to_end(k)
        while len(self._fails) > self.MAX_KEYS:
            self._fails.popitem(last=False)

    def succeeded(self, keys: list[str]) -> None:
        for k in keys:
            self._fails.pop(k, None)
