"""One attestation-log record: the input value, its columns and its canonical hash.

Theory of operation. An :class:`AuditEntry` is what the screening step hands over (plain
values, normalised on construction so that what is hashed is exactly what was given). The
writer turns it into a *row*: the entry's columns plus ``seq`` (1, 2, 3 … with no gaps),
``prev_hash`` (the previous row's ``hash``; the first row uses :data:`GENESIS_HASH`) and
``hash``.

Canonical encoding (version 1), the one thing an independent verifier must reproduce:

1. Take every column of the row except ``hash`` (see :data:`HASHED_COLUMNS`), with its
   value exactly as stored in SQLite: TEXT as a JSON string, INTEGER as a JSON integer,
   REAL as a JSON number written as the shortest decimal that round-trips the IEEE double
   (Python ``repr``: ``1764350000.25``, ``50.0``, ``1e+16``), NULL as ``null``.
   JSON-valued columns (``identity_headers``, ``passport_header``, ``passport_claims``,
   ``reasons``, ``timing``, ``details``) are stored as canonical JSON *text* and enter the
   record as that text, i.e. as a JSON string.
2. Serialise that object as JSON with keys sorted by code point, no whitespace (``,`` and
   ``:`` separators), non-ASCII characters written as UTF-8 (not ``\\u`` escapes), control
   characters, ``"`` and ``\\`` escaped as JSON requires (``\\n``, ``\\u0000`` …), no NaN or
   infinities, encoded as UTF-8.
3. ``hash = lowercase hex(SHA-256(those bytes))``.

Because ``prev_hash`` is one of the hashed columns, each hash commits to the entire history
before it; because ``seq`` is hashed, moving a row changes its hash. The encoding is
injective: :func:`decode_canonical` recovers the row from the bytes (tested with
hypothesis).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum, StrEnum
from typing import Any

from ..model import Verdict

FORMAT_VERSION = 1
"""Version of the canonical encoding and schema (stored in the ``meta`` table)."""

GENESIS_HASH = "0" * 64
"""``prev_hash`` of record 1: 32 zero bytes, hex."""

JSON_COLUMNS = frozenset(
    {"identity_headers", "passport_header", "passport_claims", "reasons", "timing", "details"}
)
"""Columns holding canonical JSON text."""

COLUMNS: tuple[str, ...] = (
    "seq",
    "time",
    "time_utc",
    "kind",
    "call_id",
    "source",
    "orig_tn",
    "dest_tn",
    "identity_headers",
    "passport_header",
    "passport_claims",
    "x5u",
    "cert_fingerprint",
    "spc",
    "issuer",
    "attest",
    "origid",
    "verstat",
    "reason",
    "sip_code",
    "score",
    "reasons",
    "action",
    "code",
    "elapsed_ms",
    "timing",
    "details",
    "prev_hash",
    "hash",
)
"""Every column of the ``records`` table, in table order."""

HASHED_COLUMNS: tuple[str, ...] = tuple(sorted(c for c in COLUMNS if c != "hash"))
"""The columns the hash covers, in canonical (sorted) key order."""

ENTRY_COLUMNS: tuple[str, ...] = tuple(c for c in COLUMNS if c not in ("seq", "prev_hash", "hash"))
"""The columns an entry determines (everything but the chain fields)."""

_MAX_DEPTH = 32


class RecordKind(StrEnum):
    """What a record is about."""

    VERIFICATION = "verification"
    """A STIR/SHAKEN verification on its own (``spitwall verify``, a verifier-only mode)."""
    DECISION = "decision"
    """A screening decision for one call (normally carrying the verification too)."""
    LOSS = "loss"
    """Written by the log itself: records it could not keep (queue overflow, write failure);
    ``details`` says how many and when."""


JSON = Any
"""A JSON value made of dict[str, JSON], list[JSON], str, int, float, bool and None."""


def _text(value: object) -> str:
    """A string SQLite and UTF-8 can hold: lone surrogates become backslash escapes."""
    s = value if isinstance(value, str) else str(value)
    if s.isascii():
        return s
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return s.encode("utf-8", "backslashreplace").decode("utf-8")
    return s


def _opt_text(value: object) -> str | None:
    return None if value is None else _text(value)


def _real(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"AuditEntry.{name}: expected a number, got {type(value).__name__}")
    f = float(value)
    if not math.isfinite(f):
        raise ValueError(f"AuditEntry.{name}: must be finite, got {f!r}")
    return f + 0.0  # -0.0 → 0.0: SQLite would give 0.0 back and break the hash


def _opt_real(name: str, value: object) -> float | None:
    return None if value is None else _real(name, value)


def _opt_int(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"AuditEntry.{name}: expected an integer, got {type(value).__name__}")
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"AuditEntry.{name}: out of SQLite's integer range")
    return int(value)


def json_value(value: object, depth: int = 0) -> JSON:
    """A plain JSON value for anything a verifier may put in its details.

    Why lenient: details come from untrusted PASSporTs and must never stop a record from
    being written. bytes become unpadded base64url, enums their value, dataclasses dicts,
    non-finite floats the strings ``"nan"``/``"inf"``/``"-inf"``, sets sorted lists, and
    anything else its ``str()``.
    """
    t = type(value)
    if t is str:  # fast paths for the plain JSON a verifier normally produces
        return _text(value)
    if t is int or t is bool or value is None:
        return value
    if t is dict and depth < _MAX_DEPTH:
        return {_text(k): json_value(v, depth + 1) for k, v in value.items()}  # type: ignore[attr-defined]
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, Enum):
        return json_value(value.value, depth + 1)
    if depth >= _MAX_DEPTH:
        return _text(repr(value))
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.urlsafe_b64encode(bytes(value)).rstrip(b"=").decode("ascii")
    if isinstance(value, Mapping):
        return {_text(k): json_value(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v, depth + 1) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((json_value(v, depth + 1) for v in value), key=canonical_json)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: json_value(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value)
        }
    return _text(value)


_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical_json(value: JSON) -> str:
    """Deterministic JSON text: sorted keys, no whitespace, UTF-8 characters kept."""
    return _ENCODER.encode(value)


def _reason(item: object) -> tuple[str, float, str]:
    """A (signal, weight, detail) triple from a tuple or an object with those attributes."""
    if isinstance(item, Sequence) and not isinstance(item, str) and len(item) in (2, 3):
        signal, weight, *rest = item
        detail = rest[0] if rest else ""
    elif hasattr(item, "signal") and hasattr(item, "weight"):
        signal, weight, detail = item.signal, item.weight, getattr(item, "detail", "")
    else:
        raise TypeError(f"AuditEntry.reasons: expected (signal, weight, detail), got {item!r}")
    return (_text(signal), _real("reasons[].weight", weight), _text(detail))


def _opt_mapping(value: Mapping[str, Any] | None) -> dict[str, JSON] | None:
    if value is None:
        return None
    out = json_value(value)
    if not isinstance(out, dict):
        raise TypeError("expected a mapping")
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """What the screening step (or ``spitwall verify``) asks the log to record.

    Plain values only, normalised on construction (strings made UTF-8-safe, sequences made
    tuples, JSON-valued fields copied into plain JSON), so an entry is exactly what will be
    hashed. Treat the dict fields as read-only.
    """

    time: float
    """When the call arrived (or the verification ran), UNIX seconds."""
    kind: str = RecordKind.DECISION.value
    """A :class:`RecordKind` value."""
    call_id: str = ""
    source: str = ""
    """``IP:PORT`` the request came from."""
    orig_tn: str | None = None
    """Caller TN, canonical E.164 digits (from the PASSporT when there is one)."""
    dest_tn: str | None = None
    """Called TN, canonical E.164 digits."""
    identity_headers: tuple[str, ...] = ()
    """Raw Identity header field values, in the order received."""
    passport_header: dict[str, JSON] | None = None
    """Decoded JOSE header of the SHAKEN PASSporT."""
    passport_claims: dict[str, JSON] | None = None
    """Decoded claims of the SHAKEN PASSporT."""
    x5u: str | None = None
    cert_fingerprint: str | None = None
    """SHA-256 of the signing certificate (DER), hex."""
    spc: str | None = None
    issuer: str | None = None
    attest: str | None = None
    origid: str | None = None
    verstat: str | None = None
    reason: str | None = None
    """Verification failure reason (fixed vocabulary); None when valid."""
    sip_code: int | None = None
    """RFC 8224 code of the verification failure."""
    score: float | None = None
    """Reputation score 0..100."""
    reasons: tuple[tuple[str, float, str], ...] = ()
    """Score contributions as (signal, weight, detail)."""
    action: str | None = None
    """forward, forward_tagged, challenge, voicemail or reject."""
    code: int | None = None
    """SIP response code the decision answered with (603/607/608 …), if any."""
    elapsed_ms: float | None = None
    """Screening time, milliseconds."""
    timing: dict[str, JSON] = field(default_factory=dict)
    """Per-phase timings in milliseconds (``verify``, ``x5u_fetch``, ``score`` …)."""
    details: dict[str, JSON] = field(default_factory=dict)
    """Anything else worth auditing (div PASSporTs, certificate details, replay flags)."""

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "time", _real("time", self.time))
        try:
            _utc(self.time)
        except (OverflowError, OSError, ValueError):
            raise ValueError(
                f"AuditEntry.time: {self.time!r} is not a representable time"
            ) from None
        put(self, "kind", _text(self.kind.value if isinstance(self.kind, Enum) else self.kind))
        for name in ("call_id", "source"):
            put(self, name, _text(getattr(self, name)))
        for name in (
            "orig_tn",
            "dest_tn",
            "x5u",
            "cert_fingerprint",
            "spc",
            "issuer",
            "attest",
            "origid",
            "verstat",
            "reason",
            "action",
        ):
            put(self, name, _opt_text(getattr(self, name)))
        if isinstance(self.identity_headers, str):
            raise TypeError("AuditEntry.identity_headers: expected a sequence of strings")
        put(self, "identity_headers", tuple(_text(h) for h in self.identity_headers))
        put(self, "passport_header", _opt_mapping(self.passport_header))
        put(self, "passport_claims", _opt_mapping(self.passport_claims))
        put(self, "sip_code", _opt_int("sip_code", self.sip_code))
        put(self, "code", _opt_int("code", self.code))
        put(self, "score", _opt_real("score", self.score))
        put(self, "elapsed_ms", _opt_real("elapsed_ms", self.elapsed_ms))
        put(self, "reasons", tuple(_reason(r) for r in self.reasons))
        put(self, "timing", _opt_mapping(self.timing) or {})
        put(self, "details", _opt_mapping(self.details) or {})

    @classmethod
    def from_verdict(
        cls,
        verdict: Verdict,
        *,
        time: float,
        call_id: str = "",
        source: str = "",
        identity_headers: Iterable[str] = (),
        orig_tn: str | None = None,
        dest_tn: str | None = None,
        score: float | None = None,
        reasons: Iterable[object] = (),
        action: str | None = None,
        code: int | None = None,
        elapsed_ms: float | None = None,
        kind: str | None = None,
    ) -> AuditEntry:
        """One record from a verification :class:`Verdict` plus the decision's plain values.

        ``verdict.details`` keys ``header`` and ``claims`` (the SHAKEN PASSporT's, also
        accepted as ``passport_header``/``passport_claims``) go to their own columns, its
        ``elapsed_ms`` becomes ``timing["verify"]`` (with any ``timing_ms`` mapping), the
        rest lands in ``details``. ``kind`` defaults to
        ``decision`` when an action is given, else ``verification``. ``orig_tn`` and
        ``dest_tn`` default to the verdict's (the PASSporT's ``orig`` and first ``dest``).
        """
        extra = dict(verdict.details)
        header = extra.pop("header", None) or extra.pop("passport_header", None)
        claims = extra.pop("claims", None) or extra.pop("passport_claims", None)
        timing_in = extra.pop("timing_ms", None)
        timing = dict(timing_in) if isinstance(timing_in, Mapping) else {}
        verify_ms = extra.pop("elapsed_ms", None)
        if isinstance(verify_ms, int | float) and not isinstance(verify_ms, bool):
            timing.setdefault("verify", verify_ms)
        if verdict.diverted:
            extra.setdefault("diverted", True)
        if verdict.sip_text:
            extra.setdefault("sip_text", verdict.sip_text)
        if kind is None:
            kind = RecordKind.DECISION.value if action is not None else "verification"
        return cls(
            time=time,
            kind=kind,
            call_id=call_id,
            source=source,
            orig_tn=orig_tn if orig_tn is not None else verdict.orig_tn,
            dest_tn=dest_tn if dest_tn is not None else (verdict.dest_tns or (None,))[0],
            identity_headers=tuple(identity_headers),
            passport_header=dict(header) if isinstance(header, Mapping) else None,
            passport_claims=dict(claims) if isinstance(claims, Mapping) else None,
            x5u=verdict.x5u,
            cert_fingerprint=verdict.cert_fingerprint,
            spc=verdict.spc,
            issuer=verdict.issuer,
            attest=verdict.attest,
            origid=verdict.origid,
            verstat=verdict.verstat.value,
            reason=verdict.reason,
            sip_code=verdict.sip_code,
            score=score,
            reasons=tuple(reasons),  # type: ignore[arg-type]  # normalised in __post_init__
            action=action.value if isinstance(action, Enum) else action,
            code=code,
            elapsed_ms=elapsed_ms,
            timing=timing,
            details=extra,
        )


def _utc(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_columns(entry: AuditEntry) -> dict[str, Any]:
    """The stored value of every :data:`ENTRY_COLUMNS` column for ``entry``."""
    return {
        "time": entry.time,
        "time_utc": _utc(entry.time),
        "kind": entry.kind,
        "call_id": entry.call_id,
        "source": entry.source,
        "orig_tn": entry.orig_tn,
        "dest_tn": entry.dest_tn,
        "identity_headers": canonical_json(list(entry.identity_headers)),
        "passport_header": _opt_json(entry.passport_header),
        "passport_claims": _opt_json(entry.passport_claims),
        "x5u": entry.x5u,
        "cert_fingerprint": entry.cert_fingerprint,
        "spc": entry.spc,
        "issuer": entry.issuer,
        "attest": entry.attest,
        "origid": entry.origid,
        "verstat": entry.verstat,
        "reason": entry.reason,
        "sip_code": entry.sip_code,
        "score": entry.score,
        "reasons": canonical_json([list(r) for r in entry.reasons]),
        "action": entry.action,
        "code": entry.code,
        "elapsed_ms": entry.elapsed_ms,
        "timing": canonical_json(entry.timing),
        "details": canonical_json(entry.details),
    }


def _opt_json(value: JSON | None) -> str | None:
    return None if value is None else canonical_json(value)


def canonical_bytes(row: Mapping[str, Any]) -> bytes:
    """The canonical encoding of a row (every :data:`HASHED_COLUMNS` key, ``hash`` ignored)."""
    return canonical_json({k: row[k] for k in HASHED_COLUMNS}).encode("utf-8")


def record_hash(row: Mapping[str, Any]) -> str:
    """``hex(SHA-256(canonical_bytes(row)))``."""
    return hashlib.sha256(canonical_bytes(row)).hexdigest()


def seal(columns: Mapping[str, Any], seq: int, prev_hash: str) -> dict[str, Any]:
    """The complete row for entry ``columns`` at position ``seq`` after ``prev_hash``."""
    row = dict(columns)
    row["seq"] = seq
    row["prev_hash"] = prev_hash
    row["hash"] = record_hash(row)
    return row


def decode_canonical(data: bytes) -> dict[str, Any]:
    """The row a canonical encoding came from (its left inverse, so the encoding is injective)."""
    value = json.loads(data.decode("utf-8"))
    if not isinstance(value, dict) or set(value) != set(HASHED_COLUMNS):
        raise ValueError("not a canonical attestation record")
    return value


def entry_from_row(row: Mapping[str, Any]) -> AuditEntry:
    """The entry a stored row was made from (JSON columns parsed back)."""

    def parse(name: str) -> Any:
        text = row[name]
        return None if text is None else json.loads(text)

    return AuditEntry(
        time=row["time"],
        kind=row["kind"],
        call_id=row["call_id"],
        source=row["source"],
        orig_tn=row["orig_tn"],
        dest_tn=row["dest_tn"],
        identity_headers=tuple(parse("identity_headers") or ()),
        passport_header=parse("passport_header"),
        passport_claims=parse("passport_claims"),
        x5u=row["x5u"],
        cert_fingerprint=row["cert_fingerprint"],
        spc=row["spc"],
        issuer=row["issuer"],
        attest=row["attest"],
        origid=row["origid"],
        verstat=row["verstat"],
        reason=row["reason"],
        sip_code=row["sip_code"],
        score=row["score"],
        reasons=tuple(tuple(r) for r in parse("reasons") or ()),
        action=row["action"],
        code=row["code"],
        elapsed_ms=row["elapsed_ms"],
        timing=parse("timing") or {},
        details=parse("details") or {},
    )
