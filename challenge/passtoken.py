"""One-time, short-lived, HMAC-signed pass tokens (the ``X-Spitwall-Pass`` header).

Why: after a caller passes the challenge, the UA places the outbound leg to the callee
*through the proxy*. The proxy must let exactly that call through without screening it
again, and nobody else may forge such a call. The token binds caller, callee and a short
validity window, is signed with a secret shared by the UA and the proxy, and carries a
random id (``jti``) that the proxy's :class:`OneTimeCache` accepts once.

This module is standard-library only: the proxy verifies tokens but imports nothing from
``challenge``; the composition root hands it a :class:`PassVerifier`.

Wire form (ASCII, fits a SIP header value)::

    v1.<base64url(JSON claims)>.<base64url(HMAC-SHA256(secret, "v1." + claims part))>

Claims: ``{"caller": "15551230000", "callee": "15557654321", "iat": 1700000000,
"exp": 1700000030, "jti": "<32 hex>"}``; numbers in canonical form (:func:`canonical`).
The proxy checks, in order: form, signature, expiry (``iat - 5 <= now < exp``), the
caller/callee binding against the INVITE (From or P-Asserted-Identity user, Request-URI
user), then spends the ``jti``.

Several worker processes each verify tokens, and the UA's bridged leg may reach any of
them: a ``jti`` spent in one must be refused by all. :class:`PassVerifier` therefore takes
an optional shared spender (the composition root hands it ``Store.spend_pass``, which lets
the SQLite file decide atomically) and :meth:`PassVerifier.acheck` awaits it after the
process-local :class:`OneTimeCache` has refused the replays it already knows.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
import logging
import os
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

HEADER = "X-Spitwall-Pass"
"""The SIP header carrying the token on the UA's outbound leg."""

VERSION = "v1"
MAX_TOKEN_LENGTH = 1024
CLOCK_SKEW = 5.0
"""Seconds a token's ``iat`` may lie in the future (UA and proxy clocks)."""

_SEPARATORS = str.maketrans("", "", " -.()/\t")


class PassError(enum.IntEnum):
    """Why a token was refused. Values are stable (logs, metrics)."""

    MALFORMED = 1
    BAD_SIGNATURE = 2
    EXPIRED = 3
    NOT_YET_VALID = 4
    WRONG_CALLER = 5
    WRONG_CALLEE = 6
    REPLAYED = 7
    UNRECORDED = 8
    """The shared record of spent ids could not be written: refused (fail closed)."""


SharedSpend = Callable[[str, float, float], Awaitable[bool]]
"""``(jti, exp, now) → first spender?`` across processes (``reputation.store.Store.spend_pass``)."""

log = logging.getLogger("spitwall.challenge.passtoken")


@dataclass(frozen=True, slots=True)
class PassClaims:
    caller: str
    callee: str
    iat: float
    exp: float
    jti: str


def canonical(number: str) -> str:
    """ATIS-1000074 style: drop visual separators and a leading ``+``. Non-numbers keep case
    folded (``anonymous``) so that they still compare equal to themselves."""
    n = number.strip().translate(_SEPARATORS)
    n = n.removeprefix("+")
    return n if n.isdigit() else n.casefold()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, signing_input: str) -> str:
    return _b64(hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest())


def mint(
    secret: bytes, caller: str, callee: str, now: float, ttl: float, jti: str | None = None
) -> str:
    """A fresh token for ``caller`` → ``callee`` valid ``ttl`` seconds from ``now``."""
    if not secret:
        raise ValueError("empty pass-token secret")
    claims = {
        "caller": canonical(caller),
        "callee": canonical(callee),
        "iat": int(now),
        "exp": int(now + ttl + 0.999),
        "jti": jti or secrets.token_hex(16),
    }
    body = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    signing_input = f"{VERSION}.{body}"
    return f"{signing_input}.{_sign(secret, signing_input)}"


def verify(
    secret: bytes,
    token: str,
    now: float,
    *,
    caller: str | None = None,
    callee: str | None = None,
) -> PassClaims | PassError:
    """Check form, signature and time (and the numbers, when given). Does not spend the
    token: that is :class:`OneTimeCache`'s job (or :class:`PassVerifier`, which does both)."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        return PassError.MALFORMED
    parts = token.strip().split(".")
    if len(parts) != 3 or parts[0] != VERSION:
        return PassError.MALFORMED
    signing_input = f"{parts[0]}.{parts[1]}"
    try:
        expected = _sign(secret, signing_input)
    except UnicodeEncodeError:
        return PassError.MALFORMED
    if not hmac.compare_digest(expected, parts[2]):
        return PassError.BAD_SIGNATURE
    try:
        raw = json.loads(_unb64(parts[1]))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return PassError.MALFORMED
    if not isinstance(raw, dict):
        return PassError.MALFORMED
    c_caller, c_callee, iat, exp, jti = (
        raw.get(k) for k in ("caller", "callee", "iat", "exp", "jti")
    )
    if not (isinstance(c_caller, str) and isinstance(c_callee, str) and isinstance(jti, str)):
        return PassError.MALFORMED
    if not all(isinstance(t, int | float) and not isinstance(t, bool) for t in (iat, exp)):
        return PassError.MALFORMED
    claims = PassClaims(c_caller, c_callee, float(iat), float(exp), jti)  # type: ignore[arg-type]
    if now >= claims.exp:
        return PassError.EXPIRED
    if claims.iat > now + CLOCK_SKEW:
        return PassError.NOT_YET_VALID
    if caller is not None and canonical(caller) != claims.caller:
        return PassError.WRONG_CALLER
    if callee is not None and canonical(callee) != claims.callee:
        return PassError.WRONG_CALLEE
    return claims


class OneTimeCache:
    """Remembers spent token ids until they expire, so each token opens one call only.

    Bounded: when ``max_entries`` is reached the oldest entries go first (they are the
    closest to expiry anyway; tokens live seconds)."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._max = max_entries

    def __len__(self) -> int:
        return len(self._seen)

    def spend(self, claims: PassClaims, now: float) -> bool:
        """True the first time a (still valid) token id is spent, False afterwards."""
        self._expire(now)
        if claims.jti in self._seen:
            return False
        self._seen[claims.jti] = claims.exp
        while len(self._seen) > self._max:
            self._seen.popitem(last=False)
        return True

    def _expire(self, now: float) -> None:
        while self._seen:
            jti, exp = next(iter(self._seen.items()))
            if exp > now:
                break
            del self._seen[jti]


class PassVerifier:
    """What the proxy gets from the composition root: verify and spend in one call."""

    header = HEADER

    def __init__(
        self,
        secret: bytes,
        cache: OneTimeCache | None = None,
        shared: SharedSpend | None = None,
    ) -> None:
        self._secret = secret
        self._cache = cache if cache is not None else OneTimeCache()
        self._shared = shared

    def check(
        self, token: str, caller: str | None, callee: str | None, now: float
    ) -> PassClaims | PassError:
        """Verify and spend in this process only (one process, or tests): the shared
        spender, if any, is not asked — use :meth:`acheck` where workers share tokens."""
        result = verify(self._secret, token, now, caller=caller, callee=callee)
        if isinstance(result, PassError):
            return result
        if not self._cache.spend(result, now):
            return PassError.REPLAYED
        return result

    async def acheck(
        self, token: str, caller: str | None, callee: str | None, now: float
    ) -> PassClaims | PassError:
        """:meth:`check`, then the shared spender: accepted once across all processes."""
        result = self.check(token, caller, callee, now)
        if isinstance(result, PassError) or self._shared is None:
            return result
        try:
            first = await self._shared(result.jti, result.exp, now)
        except Exception:  # no record of the spend, no call through: say so, refuse
            log.exception("pass token refused: its spend could not be recorded")
            return PassError.UNRECORDED
        return result if first else PassError.REPLAYED


def derive(secret: bytes, label: str) -> str:
    """A hex sub-key of the shared secret for another purpose (e.g. the report token)."""
    return hmac.new(secret, label.encode(), hashlib.sha256).hexdigest()


def load_or_create_secret(path: Path) -> bytes:
    """Read the shared secret (hex or raw text in the file), creating 32 random bytes with
    mode 0600 on first start. Every process (proxy workers, the UA) calls this with the
    same path, perhaps at the same moment: the file appears complete or not at all (written
    under another name, then hard-linked into place, which fails if another process won)."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = secrets.token_hex(32)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(text + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.link(tmp, path)
        except FileExistsError:  # another process won the race: use its secret
            text = path.read_text(encoding="ascii").strip()
        finally:
            tmp.unlink(missing_ok=True)
    if not text:
        raise ValueError(f"{path}: empty secret file")
    return text.encode("ascii")
