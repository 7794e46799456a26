"""Challenge/voicemail UA configuration (the ``[challenge]`` table)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ChallengeConfig:
    enabled: bool = False
    """Start the challenge/voicemail UA process with ``spitwall serve``."""
