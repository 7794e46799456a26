"""The whole configuration: one frozen dataclass per package, assembled here."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from api.config import HttpConfig
from attestation.config import AttestationConfig
from challenge.config import ChallengeConfig
from proxy.config import ProxyConfig
from reputation.config import ReputationConfig

from .settings import build, load_toml


@dataclass(frozen=True, slots=True)
class LogConfig:
    level: Literal["debug", "info", "warning", "error"] = "info"
    """Minimum level written."""
    format: Literal["text", "json"] = "text"
    """``json`` writes one JSON object a line (with the Call-ID where there is one)."""


@dataclass(frozen=True, slots=True)
class SpitwallConfig:
    data_dir: Path = Path("var")
    """Where the SQLite files, recordings and generated test PKI live."""
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    attestation: AttestationConfig = field(default_factory=AttestationConfig)
    reputation: ReputationConfig = field(default_factory=ReputationConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    challenge: ChallengeConfig = field(default_factory=ChallengeConfig)
    log: LogConfig = field(default_factory=LogConfig)


def load_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> SpitwallConfig:
    """Load ``path`` (or the defaults when None), then apply dotted-key ``overrides``."""
    data: dict[str, Any] = load_toml(path) if path is not None else {}
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return build(SpitwallConfig, data)
