"""HTTP configuration (the ``[http]`` table)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HttpConfig:
    listen: str | None = "127.0.0.1:8080"
    """HOST:PORT of the HTTP API, web page, /metrics and /healthz; empty or absent disables."""
    max_json_bytes: int = 65_536
    """Largest JSON request body (bytes); larger → 413 ``too_large``."""
    max_csv_bytes: int = 8_000_000
    """Largest CSV list import (bytes); larger → 413 ``too_large``."""
    max_csv_rows: int = 100_000
    """Most data rows one CSV import may hold; the rest is reported as an error line."""
    max_greeting_bytes: int = 1_000_000
    """Largest voicemail greeting upload (bytes; 8 kHz 16-bit mono ≈ 16 kB a second)."""
    max_greeting_seconds: float = 60.0
    """Longest voicemail greeting (seconds of audio)."""
    session_ttl: float = 43_200.0
    """Seconds a web session (cookie) lives at most after login."""
    session_idle: float = 3_600.0
    """Seconds of inactivity after which a web session ends."""
    max_sessions: int = 10_000
    """Most live web sessions; the oldest is dropped beyond."""
    cookie_secure: bool = False
    """Mark the session cookie ``Secure`` (set when the page is served over HTTPS, e.g. behind
    a TLS-terminating reverse proxy)."""
    login_max_failures: int = 5
    """Failed logins from one client address (or for one account name) within
    ``login_window`` seconds before further attempts get 429."""
    login_window: float = 300.0
    """Seconds over which failed logins are counted (and the lock-out lasts)."""
    page_size: int = 50
    """Default number of items in one page of calls, voicemails or log records."""
    trust_forwarded_for: bool = False
    """Take the client address for login rate limiting from ``X-Forwarded-For`` (only behind
    a reverse proxy you control)."""

    def __post_init__(self) -> None:
        for name in (
            "max_json_bytes",
            "max_csv_bytes",
            "max_csv_rows",
            "max_greeting_bytes",
            "max_sessions",
            "login_max_failures",
            "page_size",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be at least 1")
        for name in ("session_ttl", "session_idle", "login_window", "max_greeting_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be positive")
        if self.page_size > 1000:
            raise ValueError("page_size: at most 1000")
