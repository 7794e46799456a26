"""Pass tokens: signed, bound to caller and callee, short-lived, spendable once."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from challenge.passtoken import (
    HEADER,
    OneTimeCache,
    PassClaims,
    PassError,
    PassVerifier,
    canonical,
    derive,
    load_or_create_secret,
    mint,
    verify,
)

SECRET = b"s3cret-shared-by-ua-and-proxy"
NOW = 1_700_000_000.0


def test_round_trip() -> None:
    tok = mint(SECRET, "+1 (555) 123-0000", "+15557654321", NOW, 30)
    got = verify(SECRET, tok, NOW + 1, caller="15551230000", callee="+1-555-765-4321")
    assert isinstance(got, PassClaims)
    assert (got.caller, got.callee) == ("15551230000", "15557654321")
    assert got.exp - got.iat == 30
    assert HEADER == "X-Spitwall-Pass"
    assert tok.isascii() and " " not in tok


@pytest.mark.parametrize(
    ("token_fn", "now", "kw", "expected"),
    [
        (lambda t: t, NOW + 30, {}, PassError.EXPIRED),
        (lambda t: t, NOW - 60, {}, PassError.NOT_YET_VALID),
        (lambda t: t, NOW, {"caller": "15550000000"}, PassError.WRONG_CALLER),
        (lambda t: t, NOW, {"callee": "15550000000"}, PassError.WRONG_CALLEE),
        (
            lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
            NOW,
            {},
            PassError.BAD_SIGNATURE,
        ),
        (lambda t: "v2" + t[2:], NOW, {}, PassError.MALFORMED),
        (lambda t: t + ".x", NOW, {}, PassError.MALFORMED),
        (lambda t: "", NOW, {}, PassError.MALFORMED),
        (lambda t: "v1..", NOW, {}, PassError.BAD_SIGNATURE),
        (lambda t: "v1.é.x", NOW, {}, PassError.MALFORMED),
        (lambda t: "x" * 5000, NOW, {}, PassError.MALFORMED),
    ],
    ids=[
        "expired",
        "future",
        "caller",
        "callee",
        "signature",
        "version",
        "parts",
        "empty",
        "empty-parts",
        "non-ascii",
        "huge",
    ],
)
def test_refusals(token_fn, now, kw, expected) -> None:  # type: ignore[no-untyped-def]
    tok = token_fn(mint(SECRET, "15551230000", "15557654321", NOW, 30))
    assert verify(SECRET, tok, now, **kw) is expected


def test_other_secret_is_a_bad_signature() -> None:
    tok = mint(SECRET, "1", "2", NOW, 30)
    assert verify(b"other", tok, NOW) is PassError.BAD_SIGNATURE


@pytest.mark.parametrize(
    "claims",
    [
        [],
        {"caller": 1},
        {"caller": "1", "callee": "2", "jti": "j", "iat": "x", "exp": 1},
        {"caller": "1", "callee": "2", "jti": "j", "iat": True, "exp": 1},
    ],
)
def test_validly_signed_garbage_claims_are_malformed(claims: object) -> None:
    import hashlib
    import hmac

    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    sig = (
        base64.urlsafe_b64encode(hmac.new(SECRET, f"v1.{body}".encode(), hashlib.sha256).digest())
        .rstrip(b"=")
        .decode()
    )
    assert verify(SECRET, f"v1.{body}.{sig}", NOW) is PassError.MALFORMED


def test_one_time_use_through_the_verifier() -> None:
    v = PassVerifier(SECRET)
    tok = mint(SECRET, "15551230000", "15557654321", NOW, 30)
    assert isinstance(v.check(tok, "+15551230000", "15557654321", NOW), PassClaims)
    assert v.check(tok, "+15551230000", "15557654321", NOW + 1) is PassError.REPLAYED
    # a refused check does not spend a fresh token
    tok2 = mint(SECRET, "15551230000", "15557654321", NOW, 30)
    assert v.check(tok2, "15550000000", "15557654321", NOW) is PassError.WRONG_CALLER
    assert isinstance(v.check(tok2, "15551230000", "15557654321", NOW), PassClaims)


def test_cache_forgets_expired_ids_and_stays_bounded() -> None:
    cache = OneTimeCache(max_entries=3)
    claims = [PassClaims("1", "2", NOW, NOW + 10 + i, f"j{i}") for i in range(5)]
    for c in claims:
        assert cache.spend(c, NOW)
    assert len(cache) == 3
    assert not cache.spend(claims[4], NOW)
    cache.spend(PassClaims("1", "2", NOW, NOW + 100, "late"), NOW + 50)
    assert len(cache) == 1


def test_canonical() -> None:
    assert canonical("+1 (555) 123-0000") == "15551230000"
    assert canonical("Anonymous") == "anonymous"


@given(st.text(max_size=200))
def test_verify_never_raises(garbage: str) -> None:
    assert isinstance(verify(SECRET, garbage, NOW), PassError)


def test_secret_file_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "challenge.secret"
    a = load_or_create_secret(path)
    assert len(a) == 64
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_or_create_secret(path) == a
    assert derive(a, "challenge-report") != derive(a, "other")
