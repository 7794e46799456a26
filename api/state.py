"""What every handler needs, held once on the API application under a typed ``AppKey``."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from attestation.audit import AuditReader
from reputation.config import ReputationConfig
from reputation.store import Store

from .config import HttpConfig
from .sessions import LoginLimiter, Sessions

ChallengePass = Callable[[str, str, float], None]
"""``(caller digits, callee digits, remember_until)`` after a caller passed a challenge."""


@dataclass
class ApiState:
    store: Store
    config: HttpConfig
    data_dir: Path
    audit: AuditReader | None = None
    audit_keys: Sequence[Any] = ()
    """Ed25519 public keys the checkpoints of the attestation log are checked against."""
    reputation: ReputationConfig | None = None
    challenge_token: str | None = None
    registry: Any = None
    """prometheus_client CollectorRegistry whose samples /admin/stats reports."""
    on_challenge_pass: ChallengePass | None = None
    clock: Callable[[], float] = time.time
    seen_events: OrderedDict[str, None] = field(default_factory=OrderedDict)
    """``event_id`` of challenge reports already applied (a retry is not counted twice)."""
    sessions: Sessions = field(init=False)
    limiter: LoginLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.sessions = Sessions(
            ttl=self.config.session_ttl,
            idle=self.config.session_idle,
            max_sessions=self.config.max_sessions,
        )
        self.limiter = LoginLimiter(self.config.login_max_failures, self.config.login_window)

    @property
    def voicemail_dir(self) -> Path:
        return self.data_dir / "voicemail"

    @property
    def greetings_dir(self) -> Path:
        return self.data_dir / "greetings"


STATE = web.AppKey("spitwall_api", ApiState)


def state(request: web.Request) -> ApiState:
    return request.config_dict[STATE]
