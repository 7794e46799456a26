"""Subscribers, operators and auditors: accounts, their numbers, API tokens, passwords and
per-user settings, with the in-memory directory the call path and the API read.

Why tokens are stored hashed: the database is copied around (backups, auditors), and a
copy must not let anybody act as a user. A token is 32 random bytes; the store keeps its
SHA-256 only (a fast hash is enough for a 256-bit random secret: there is nothing to brute
force). Passwords are low-entropy, so they get ``hashlib.scrypt`` with a per-user salt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from .lists import Invalid, ListPattern, parse_pattern
from .model import ActionKind
from .policy import BANDS


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"
    AUDITOR = "auditor"


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    role: Role
    tns: tuple[str, ...] = ()
    """Canonical E.164 digits of the numbers this user owns."""
    created: float = 0.0
    disabled: bool = False
    has_password: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role.value,
            "tns": [f"+{t}" for t in self.tns],
            "created": self.created,
            "disabled": self.disabled,
        }


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token's metadata (never the token itself, which exists only when created)."""

    id: int
    user_id: int
    label: str
    created: float
    expires: float | None = None
    token_hash: str = field(default="", repr=False)

    def active(self, now: float) -> bool:
        return self.expires is None or now < self.expires


TOKEN_PREFIX = "swt_"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def new_token() -> str:
    """A fresh API token: ``swt_`` + 32 random bytes, URL-safe base64 (43 characters)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


# scrypt parameters: n=2**14, r=8 → 16 MiB and ~50 ms; stored with the hash so they can rise.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
MAX_PASSWORD_CHARS = 1024


def hash_password(password: str, *, n: int = _SCRYPT_N) -> str:
    salt = secrets.token_bytes(16)
    dk = hashlib.scrypt(password.encode(), salt=salt, n=n, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${n}${_SCRYPT_R}${_SCRYPT_P}${b64(salt).decode()}${b64(dk).decode()}"


def verify_password(stored: str, password: str) -> bool:
    """Constant-time check of ``password`` against a :func:`hash_password` string.

    CPU-bound (~50 ms): call it from a worker thread, not the event loop.
    """
    try:
        algo, n_s, r_s, p_s, salt_s, dk_s = stored.split("$")
        if algo != "scrypt" or len(password) > MAX_PASSWORD_CHARS:
            return False
        salt, want = base64.b64decode(salt_s), base64.b64decode(dk_s)
        got = hashlib.scrypt(
            password.encode(), salt=salt, n=int(n_s), r=int(r_s), p=int(p_s), dklen=len(want)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


def check_name(name: object) -> str | Invalid:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        return Invalid("name", "1-64 characters: letters, digits, '.', '_', '@', '-' (not first)")
    return name


def check_role(role: object) -> Role | Invalid:
    try:
        return Role(str(role))
    except ValueError:
        return Invalid("role", f"must be one of user, admin, auditor; got {role!r}")


def check_password(password: object) -> str | Invalid:
    if not isinstance(password, str) or not 8 <= len(password) <= MAX_PASSWORD_CHARS:
        return Invalid("password", f"8 to {MAX_PASSWORD_CHARS} characters")
    return password


def parse_tn(text: object, field: str = "tn") -> str | Invalid:
    """One full E.164 number (no prefixes) → canonical digits."""
    p = parse_pattern(text, field=field, allow_prefix=False)
    return p if isinstance(p, Invalid) else p.digits


# ---------------------------------------------------------------------------- settings


_STRICTNESS = ("lenient", "normal", "strict")
_ANONYMOUS = ("forward", "challenge", "voicemail", "reject")
_REJECT_CODES = (603, 607, 608)
_ACTIONS = tuple(a.value for a in ActionKind)


@dataclass(frozen=True, slots=True)
class UserSettings:
    """A subscriber's choices; None everywhere means "the deployment's default".

    The policy reads these; the API validates what users send with :func:`parse_settings`.
    """

    monitor: bool | None = None
    """True: score and tag only, never divert or reject (per-user monitor mode)."""
    strictness: str | None = None
    """``lenient`` | ``normal`` | ``strict``: shifts the policy's band thresholds."""
    anonymous: str | None = None
    """What to do with anonymous/withheld callers: forward | challenge | voicemail | reject."""
    band_actions: tuple[tuple[str, str], ...] = ()
    """(band, action) overrides; bands are ``policy.BANDS``, actions ActionKind values."""
    reject_code: int | None = None
    """603, 607 or 608 when this user's calls are rejected."""
    learn_allow: bool | None = None
    """Learn numbers this user talks to as known (see feedback.py)."""
    voicemail_on_fail: bool | None = None
    """Offer voicemail to a caller who failed or timed out the challenge (None: the challenge
    UA's ``[challenge] voicemail_on_fail``)."""
    greeting: str | None = None
    """File name of the uploaded voicemail greeting (under the data directory)."""

    def band_action(self, band: str) -> str | None:
        return dict(self.band_actions).get(band)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k in _SETTINGS_KEYS:
            v = getattr(self, k)
            if k == "band_actions":
                if v:
                    out[k] = dict(v)
            elif v is not None:
                out[k] = v
        return out


_SETTINGS_KEYS = (
    "monitor",
    "strictness",
    "anonymous",
    "band_actions",
    "reject_code",
    "learn_allow",
    "greeting",
    "voicemail_on_fail",
)


def parse_settings(data: object, base: UserSettings | None = None) -> UserSettings | Invalid:
    """Validate a settings object (a JSON object) and merge it over ``base``.

    A key set to null resets it to the deployment default; an unknown key is an error.
    """
    if not isinstance(data, Mapping):
        return Invalid("settings", "expected a JSON object")
    s = base or UserSettings()
    changes: dict[str, Any] = {}
    for key, v in data.items():
        if key not in _SETTINGS_KEYS:
            return Invalid(
                f"settings.{key}", f"unknown setting (known: {', '.join(_SETTINGS_KEYS)})"
            )
        f = f"settings.{key}"
        if v is None:
            changes[key] = () if key == "band_actions" else None
        elif key in ("monitor", "learn_allow", "voicemail_on_fail"):
            if not isinstance(v, bool):
                return Invalid(f, "expected true or false")
            changes[key] = v
        elif key == "strictness":
            if v not in _STRICTNESS:
                return Invalid(f, f"one of {', '.join(_STRICTNESS)}")
            changes[key] = v
        elif key == "anonymous":
            if v not in _ANONYMOUS:
                return Invalid(f, f"one of {', '.join(_ANONYMOUS)}")
            changes[key] = v
        elif key == "reject_code":
            if isinstance(v, bool) or v not in _REJECT_CODES:
                return Invalid(f, "one of 603, 607, 608")
            changes[key] = v
        elif key == "greeting":
            if (
                not isinstance(v, str)
                or not re.fullmatch(r"[A-Za-z0-9._-]{1,100}", v)
                or v.startswith(".")
            ):
                return Invalid(f, "a plain file name (letters, digits, '.', '_', '-')")
            changes[key] = v
        elif key == "band_actions":
            if not isinstance(v, Mapping) or len(v) > 16:
                return Invalid(f, "an object of at most 16 band → action pairs")
            pairs = []
            for band, action in v.items():
                if band not in BANDS:
                    return Invalid(f"{f}.{band}", f"unknown band (bands: {', '.join(BANDS)})")
                if not isinstance(action, str) or action not in _ACTIONS:
                    return Invalid(f"{f}.{band}", f"action must be one of {', '.join(_ACTIONS)}")
                pairs.append((band, ActionKind(action).value))
            changes[key] = tuple(sorted(pairs))
    return replace(s, **changes)


def settings_from_json(text: str) -> UserSettings:
    """Settings as stored; a row that no longer validates falls back to defaults key by key."""
    try:
        data = json.loads(text)
    except ValueError:
        return UserSettings()
    if not isinstance(data, dict):
        return UserSettings()
    s = UserSettings()
    for k, v in data.items():
        r = parse_settings({k: v}, s)
        if not isinstance(r, Invalid):
            s = r
    return s


# ---------------------------------------------------------------------------- directory


def user_from_row(row: sqlite3.Row | Mapping[str, Any], tns: Iterable[str] = ()) -> User:
    return User(
        id=int(row["id"]),
        name=str(row["name"]),
        role=Role(row["role"]),
        tns=tuple(sorted(tns)),
        created=float(row["created"]),
        disabled=bool(row["disabled"]),
        has_password=row["password_hash"] is not None,
    )


def token_from_row(r: Any) -> TokenInfo:
    return TokenInfo(
        int(r["id"]),
        int(r["user_id"]),
        str(r["label"]),
        float(r["created"]),
        None if r["expires"] is None else float(r["expires"]),
        str(r["token_hash"]),
    )


class UserDirectory:
    """All accounts in memory: by id, by name, by owned TN, by token hash.

    Mutated only by the store after the change is durable.
    """

    def __init__(self) -> None:
        self._by_id: dict[int, User] = {}
        self._by_name: dict[str, int] = {}
        self._by_tn: dict[str, int] = {}
        self._tokens: dict[str, TokenInfo] = {}
        self._passwords: dict[int, str] = {}
        self._settings: dict[int, UserSettings] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    # reads ------------------------------------------------------------------
    def get(self, user_id: int) -> User | None:
        return self._by_id.get(user_id)

    def by_name(self, name: str) -> User | None:
        i = self._by_name.get(name)
        return None if i is None else self._by_id[i]

    def user_for_tn(self, digits: str) -> User | None:
        i = self._by_tn.get(digits)
        return None if i is None else self._by_id.get(i)

    def all(self) -> list[User]:
        return sorted(self._by_id.values(), key=lambda u: u.id)

    def settings(self, user_id: int) -> UserSettings:
        return self._settings.get(user_id, UserSettings())

    def password_hash(self, user_id: int) -> str | None:
        return self._passwords.get(user_id)

    def tokens_of(self, user_id: int) -> list[TokenInfo]:
        return sorted(
            (t for t in self._tokens.values() if t.user_id == user_id), key=lambda t: t.id
        )

    def authenticate(self, raw_token: str, now: float) -> User | None:
        """The enabled user holding this live token, or None."""
        if (
            not isinstance(raw_token, str)
            or not raw_token.startswith(TOKEN_PREFIX)
            or len(raw_token) > 200
        ):
            return None
        h = hash_token(raw_token)
        t = self._tokens.get(h)
        # The dict probe is keyed by a hash of a 256-bit secret; compare_digest makes the
        # final equality constant-time as well.
        if t is None or not hmac.compare_digest(t.token_hash, h) or not t.active(now):
            return None
        u = self._by_id.get(t.user_id)
        return None if u is None or u.disabled else u

    # writes (store only) ----------------------------------------------------
    def clear(self) -> None:
        for d in (self._by_id, self._by_name, self._by_tn, self._tokens, self._passwords):
            d.clear()
        self._settings.clear()

    def put_user(self, u: User, password_hash: str | None) -> None:
        old = self._by_id.get(u.id)
        if old is not None:
            self._by_name.pop(old.name, None)
            for tn in old.tns:
                self._by_tn.pop(tn, None)
        self._by_id[u.id] = u
        self._by_name[u.name] = u.id
        for tn in u.tns:
            self._by_tn[tn] = u.id
        if password_hash is None:
            self._passwords.pop(u.id, None)
        else:
            self._passwords[u.id] = password_hash

    def drop_user(self, user_id: int) -> None:
        u = self._by_id.pop(user_id, None)
        if u is None:
            return
        self._by_name.pop(u.name, None)
        for tn in u.tns:
            self._by_tn.pop(tn, None)
        self._passwords.pop(user_id, None)
        self._settings.pop(user_id, None)
        for h in [h for h, t in self._tokens.items() if t.user_id == user_id]:
            del self._tokens[h]

    def put_token(self, t: TokenInfo) -> None:
        self._tokens[t.token_hash] = t

    def drop_token(self, token_id: int) -> TokenInfo | None:
        for h, t in self._tokens.items():
            if t.id == token_id:
                del self._tokens[h]
                return t
        return None

    def put_settings(self, user_id: int, s: UserSettings) -> None:
        self._settings[user_id] = s


__all__ = [
    "Invalid",
    "ListPattern",
    "Role",
    "TokenInfo",
    "User",
    "UserDirectory",
    "UserSettings",
    "check_name",
    "check_password",
    "check_role",
    "hash_password",
    "hash_token",
    "new_token",
    "parse_settings",
    "parse_tn",
    "settings_from_json",
    "token_from_row",
    "verify_password",
]
