"""Attestation configuration (the ``[attestation]`` table)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AttestationConfig:
    enabled: bool = True
    """Verify Identity headers on new INVITEs."""
