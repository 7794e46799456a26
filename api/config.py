"""HTTP configuration (the ``[http]`` table)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HttpConfig:
    listen: str | None = "127.0.0.1:8080"
    """HOST:PORT of the HTTP API, web page, /metrics and /healthz; empty or absent disables."""
