"""Accounts, numbers, tokens, passwords and settings through the store."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reputation.lists import Invalid
from reputation.store import Store
from reputation.users import (
    Role,
    UserSettings,
    hash_password,
    hash_token,
    parse_settings,
    settings_from_json,
    verify_password,
)

from .storekit import FAST, store

__all__ = ["store"]


async def test_add_user_returns_token_once_and_authenticates(store: Store) -> None:
    r = await store.add_user("alice", "user", tns=["+15551230001", "+15551230002"])
    assert isinstance(r, tuple)
    alice, token = r
    assert token.startswith("swt_") and len(token) >= 40
    assert store.authenticate(token) == alice
    assert store.authenticate(token + "x") is None
    assert store.authenticate("Bearer " + token) is None
    assert store.authenticate("") is None
    assert store.user_for_tn("15551230002") == alice
    assert store.tokens_of(alice.id)[0].token_hash == hash_token(token)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "-x"}, "name"),
        ({"name": "a b"}, "name"),
        ({"name": "x" * 65}, "name"),
        ({"name": "ok", "role": "root"}, "role"),
        ({"name": "ok", "tns": ["+1555*"]}, "tns[0]"),
        ({"name": "ok", "tns": ["+15551230001", "nope"]}, "tns[1]"),
        ({"name": "ok", "password": "short"}, "password"),
    ],
)
async def test_bad_accounts_are_values(store: Store, kwargs: dict[str, object], field: str) -> None:
    r = await store.add_user(**kwargs)  # type: ignore[arg-type]
    assert isinstance(r, Invalid) and r.field == field
    assert len(store.users) == 0


async def test_names_and_numbers_are_unique(store: Store) -> None:
    assert isinstance(await store.add_user("alice", "user", tns=["+15551230001"]), tuple)
    r = await store.add_user("alice", "admin")
    assert isinstance(r, Invalid) and "taken" in r.message
    r = await store.add_user("bob", "user", tns=["+15551230001"])
    assert isinstance(r, Invalid) and "alice" in r.message


async def test_numbers_added_and_removed(store: Store) -> None:
    r = await store.add_user("alice", "user")
    assert isinstance(r, tuple)
    uid = r[0].id
    u = await store.add_number(uid, "+1 555 123 0009")
    assert not isinstance(u, Invalid) and u.tns == ("15551230009",)
    assert store.user_for_tn("15551230009") == u
    r2 = await store.add_user("bob", "user")
    assert isinstance(r2, tuple)
    clash = await store.add_number(r2[0].id, "+15551230009")
    assert isinstance(clash, Invalid)
    u = await store.remove_number(uid, "+15551230009")
    assert not isinstance(u, Invalid) and u.tns == ()
    assert store.user_for_tn("15551230009") is None


async def test_tokens_revoked_expire_and_follow_disabled_users(store: Store) -> None:
    r = await store.add_user("alice", "user")
    assert isinstance(r, tuple)
    alice, t0 = r
    r2 = await store.create_token(alice.id, "short-lived", expires=1000.0, now=10.0)
    assert isinstance(r2, tuple)
    info, t1 = r2
    assert store.authenticate(t1, now=999.0) == alice
    assert store.authenticate(t1, now=1000.0) is None
    b = await store.add_user("bob", "user")
    assert isinstance(b, tuple)
    assert not await store.revoke_token(b[0].id, info.id)  # not bob's token
    assert await store.revoke_token(alice.id, info.id)
    assert store.authenticate(t1, now=0.0) is None
    u = await store.update_user(alice.id, disabled=True)
    assert not isinstance(u, Invalid) and u.disabled
    assert store.authenticate(t0) is None
    u = await store.update_user(alice.id, disabled=False, role="auditor")
    assert not isinstance(u, Invalid) and u.role is Role.AUDITOR
    assert store.authenticate(t0) == u


async def test_revocation_and_roles_survive_restart(tmp_path: Path) -> None:
    s = Store.open(tmp_path / "r.sqlite3", FAST)
    r = await s.add_user("alice", "user")
    assert isinstance(r, tuple)
    alice, t0 = r
    r2 = await s.create_token(alice.id)
    assert isinstance(r2, tuple)
    await s.revoke_token(alice.id, r2[0].id)
    await s.update_user(alice.id, role="admin")
    s.close()
    s = Store.open(tmp_path / "r.sqlite3", FAST)
    try:
        assert s.authenticate(r2[1]) is None
        u = s.authenticate(t0)
        assert u is not None and u.role is Role.ADMIN
    finally:
        s.close()


async def test_login_with_password(store: Store) -> None:
    r = await store.add_user("alice", "user", password="correct horse battery")
    assert isinstance(r, tuple)
    assert await store.login("alice", "correct horse battery") == r[0]
    assert await store.login("alice", "wrong horse battery") is None
    assert await store.login("nobody", "correct horse battery") is None
    u = await store.set_password(r[0].id, None)
    assert not isinstance(u, Invalid) and not u.has_password
    assert await store.login("alice", "correct horse battery") is None


def test_password_hash_format() -> None:
    h = hash_password("pässwörd-long", n=2**10)
    assert h.startswith("scrypt$1024$8$1$") and "pässwörd" not in h
    assert verify_password(h, "pässwörd-long")
    assert not verify_password(h, "pässwörd-lonG")
    assert not verify_password("garbage", "x") and not verify_password("scrypt$x$y$z$a$b", "x")


async def test_delete_user_cascades(store: Store) -> None:
    r = await store.add_user("alice", "user", tns=["+15551230001"])
    assert isinstance(r, tuple)
    alice, token = r
    await store.update_settings(alice.id, {"monitor": True})
    assert await store.delete_user(alice.id)
    assert store.authenticate(token) is None and store.user_for_tn("15551230001") is None
    assert store.settings(alice.id) == UserSettings()
    for table in ("users", "user_numbers", "tokens", "settings"):
        n = await store.read(
            lambda db, t=table: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        )
        assert n == 0, table
    assert not await store.delete_user(alice.id)


# ------------------------------------------------------------------------- settings


def test_settings_validation() -> None:
    s = parse_settings(
        {"monitor": True, "strictness": "strict", "anonymous": "challenge", "reject_code": 607,
         "band_actions": {"likely": "voicemail", "spam": "reject"}, "learn_allow": False,
         "greeting": "greeting-1.wav"}
    )  # fmt: skip
    assert isinstance(s, UserSettings)
    assert s.band_action("spam") == "reject" and s.reject_code == 607
    assert settings_from_json(__import__("json").dumps(s.to_json())) == s
    for bad, field in [
        ({"nope": 1}, "settings.nope"),
        ({"monitor": "yes"}, "settings.monitor"),
        ({"strictness": "paranoid"}, "settings.strictness"),
        ({"reject_code": 486}, "settings.reject_code"),
        ({"reject_code": True}, "settings.reject_code"),
        ({"band_actions": {"Likely": "reject"}}, "settings.band_actions.Likely"),
        ({"band_actions": {"medium": "reject"}}, "settings.band_actions.medium"),
        ({"band_actions": {"likely": "explode"}}, "settings.band_actions.likely"),
        ({"greeting": "../../etc/passwd"}, "settings.greeting"),
        ({"greeting": ".hidden"}, "settings.greeting"),
    ]:
        r = parse_settings(bad)
        assert isinstance(r, Invalid) and r.field == field, (bad, r)
    assert isinstance(parse_settings([1, 2]), Invalid)


async def test_settings_patch_merges_and_null_resets(store: Store) -> None:
    r = await store.add_user("alice", "user")
    assert isinstance(r, tuple)
    uid = r[0].id
    s = await store.update_settings(uid, {"strictness": "strict", "monitor": True})
    assert isinstance(s, UserSettings)
    s = await store.update_settings(uid, {"monitor": None, "anonymous": "voicemail"})
    assert isinstance(s, UserSettings)
    assert (s.strictness, s.monitor, s.anonymous) == ("strict", None, "voicemail")
    bad = await store.update_settings(uid, {"strictness": 3})
    assert isinstance(bad, Invalid)
    assert store.settings(uid) == s
    assert isinstance(await store.update_settings(9999, {}), Invalid)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
_KEYS = st.sampled_from(
    [
        "monitor",
        "strictness",
        "anonymous",
        "band_actions",
        "reject_code",
        "learn_allow",
        "greeting",
        "x",
    ]
)


@settings(max_examples=300, deadline=None)
@given(_JSON | st.dictionaries(_KEYS, _JSON, max_size=4))
def test_arbitrary_settings_never_crash(data: object) -> None:
    r = parse_settings(data)
    assert isinstance(r, UserSettings | Invalid)
    if isinstance(r, UserSettings):
        assert parse_settings(r.to_json()) == r


async def test_single_tn_string_and_token_expiry_in_the_past(store: Store) -> None:
    r = await store.add_user("alice", "user", tns="+15551230001")  # type: ignore[arg-type]
    assert isinstance(r, tuple) and r[0].tns == ("15551230001",)
    bad = await store.create_token(r[0].id, "old", expires=5.0, now=10.0)
    assert isinstance(bad, Invalid) and bad.field == "expires"
