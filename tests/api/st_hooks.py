"""Schemathesis hooks for tests/api/test_openapi.py (loaded via SCHEMATHESIS_HOOKS): send
generated greeting uploads (``audio/wav``) as raw bytes, like ``application/octet-stream``."""

from __future__ import annotations

import schemathesis

schemathesis.serializer.alias("audio/wav", "application/octet-stream")
