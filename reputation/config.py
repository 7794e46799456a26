"""Reputation configuration (the ``[reputation]`` table)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ReputationConfig:
    default_region: str = "US"
    """ISO region used to read national numbers (phonenumbers region code)."""
