"""Challenge/voicemail UA configuration (the ``[challenge]`` table).

Documented key by key here and in config/spitwall.toml. Cross-field checks happen in
``__post_init__`` so a bad file stops the UA at start with the key named. Paths left empty
are derived from the top-level ``data_dir`` by :func:`resolve_paths`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal


@dataclass(frozen=True, slots=True)
class ChallengeConfig:
    enabled: bool = False
    """Start the challenge/voicemail UA process with ``spitwall serve``."""
    listen: str = "127.0.0.1:5070"
    """HOST:PORT (UDP) where the UA receives diverted calls; port 0 picks a free one."""
    divert_sources: tuple[str, ...] = ("127.0.0.1",)
    """Source IP addresses allowed to start calls at the UA (the proxy's); others get 403.
    A divert names the callee the UA bridges to, so nobody else may send one. Empty: any."""
    outbound_proxy: str = "sip:127.0.0.1:5060;lr"
    """SIP URI the bridged (outbound) leg is routed through: the proxy. Empty: send direct."""
    callee_domain: str = "127.0.0.1:5060"
    """Host[:port] of the outbound leg's Request-URI, ``sip:<callee>@<callee_domain>``."""
    secret_file: str = ""
    """File holding the HMAC secret shared with the proxy (pass tokens) and the API (report
    bearer token). Empty: ``<data_dir>/challenge.secret``, created (mode 0600) if missing."""
    pass_ttl: float = 30.0
    """Seconds a pass token stays valid (it is also usable once only)."""
    pass_remember: float = 86400.0
    """Seconds the main process should let the same caller reach the same callee
    unchallenged after a pass (sent in the outcome report as ``remember_until``)."""
    report_url: str = "http://127.0.0.1:8080/api/v1/internal/challenge-outcome"
    """Where outcomes are POSTed as JSON (bearer token, see ``report_token``)."""
    report_token: str = ""
    """Bearer token for ``report_url``. Empty: derived from the shared secret
    (``passtoken.derive(secret, "challenge-report")``)."""
    report_timeout: float = 3.0
    """Seconds one report POST may take."""
    report_retries: int = 3
    """Further attempts after a failed POST (exponential back-off from 0.5 s)."""
    code_min_digits: int = 1
    """Fewest digits of the random challenge code."""
    code_max_digits: int = 3
    """Most digits of the random challenge code."""
    tries: int = 3
    """Attempts (wrong entry or no entry) before the challenge fails."""
    digit_timeout: float = 6.0
    """Seconds to wait for the first digit after the prompt, and between digits."""
    answer_timeout: float = 5.0
    """Seconds from answering until media must be up, else the call is dropped."""
    ring_timeout: float = 30.0
    """Seconds the callee may ring after a pass before the caller gets voicemail/goodbye."""
    voicemail_on_fail: bool = False
    """Offer voicemail after a failed challenge when the divert URI does not say (sw-vm)."""
    workers: int = 4
    """pjsua2 worker processes behind the one listen port (each holds at most
    ``worker_call_slots`` call legs; a bridged challenge holds two)."""
    worker_call_slots: int = 4
    """Call legs one worker may hold: the pjsua2 wheel's compile-time PJSUA_MAX_CALLS."""
    max_calls: int = 40
    """Most concurrent challenge calls (over all workers; also bounded by their slots)."""
    over_limit: Literal["busy", "voicemail"] = "busy"
    """Challenge calls beyond max_calls: "busy" (486) or "voicemail" (record instead)."""
    max_voicemail_calls: int = 20
    """Extra concurrent voicemail-only calls beyond max_calls; beyond those: 486."""
    max_record_seconds: float = 120.0
    """Longest voicemail recording, in seconds."""
    max_record_bytes: int = 4_000_000
    """Largest voicemail WAV (8 kHz 16-bit mono: 16000 bytes a second)."""
    min_message_seconds: float = 1.0
    """Recordings with less speech than this count as "no message" and are deleted."""
    silence_seconds: float = 4.0
    """Continuous silence (after the beep) that ends a recording."""
    silence_level: int = 6
    """pjsua signal level (0-255) at or below which the caller counts as silent."""
    quota_bytes: int = 50_000_000
    """Disk space all of one callee's recordings may take."""
    retention_days: float = 30.0
    """Recordings older than this many days are deleted (0: keep forever)."""
    cleanup_interval: float = 3600.0
    """Seconds between clean-up passes over the voicemail directory."""
    codecs: tuple[str, ...] = ("PCMU/8000", "PCMA/8000")
    """Codecs offered/accepted, in order of preference; all others are disabled."""
    prompts_dir: str = ""
    """Where prompt WAVs live. Empty: ``<data_dir>/prompts`` (generated at first start)."""
    voice: str = "en-us"
    """espeak-ng voice for generated prompts; "tones" for the tone set (no speech)."""
    test_code: str = ""
    """TEST ONLY: a fixed challenge code instead of a random one. Never set in production."""

    def __post_init__(self) -> None:
        host, sep, port = self.listen.rpartition(":")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            raise ValueError(f"listen: expected HOST:PORT, got {self.listen!r}")
        if not 1 <= self.code_min_digits <= self.code_max_digits <= 8:
            raise ValueError("code_min_digits/code_max_digits: need 1 <= min <= max <= 8")
        if self.test_code and not self.test_code.isdigit():
            raise ValueError(f"test_code: digits only, got {self.test_code!r}")
        if self.tries < 1:
            raise ValueError("tries: must be at least 1")
        for name in ("digit_timeout", "answer_timeout", "ring_timeout", "pass_ttl"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be positive")
        if not 1 <= self.workers <= 64:
            raise ValueError("workers: must be 1..64")
        if self.worker_call_slots < 2:
            raise ValueError("worker_call_slots: must be at least 2")
        if self.max_calls < 1 or self.max_voicemail_calls < 0:
            raise ValueError("max_calls/max_voicemail_calls: must be >= 1 / >= 0")
        if self.max_record_seconds <= 0 or self.max_record_bytes < 16000:
            raise ValueError("max_record_seconds/max_record_bytes: too small")
        if not 0 <= self.silence_level <= 255:
            raise ValueError("silence_level: must be 0..255")
        if not self.codecs:
            raise ValueError("codecs: name at least one codec")

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0]

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


@dataclass(frozen=True, slots=True)
class ChallengePaths:
    """The UA's files, resolved against ``data_dir``."""

    secret_file: Path
    prompts_dir: Path
    voicemail_dir: Path
    greetings_dir: Path


def resolve_paths(cfg: ChallengeConfig, data_dir: Path) -> ChallengePaths:
    """Fill the empty path keys with their ``data_dir`` defaults."""
    return ChallengePaths(
        secret_file=Path(cfg.secret_file) if cfg.secret_file else data_dir / "challenge.secret",
        prompts_dir=Path(cfg.prompts_dir) if cfg.prompts_dir else data_dir / "prompts",
        voicemail_dir=data_dir / "voicemail",
        greetings_dir=data_dir / "greetings",
    )
