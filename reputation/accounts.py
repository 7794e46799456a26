"""Accounts through the store: users, their numbers, API tokens, passwords and settings.

A mixin of :class:`reputation.store.Store` (kept apart to keep each module readable): every
change is committed through the store's writer first, then applied to the in-memory
:class:`~reputation.users.UserDirectory` the call path and the API authenticate against.
Validation failures come back as :class:`~reputation.lists.Invalid` values.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from sqlite_utils import Database

from .feedback import LearnedAllowBook
from .lists import Invalid, ListIndex
from .users import (
    Role,
    TokenInfo,
    User,
    UserDirectory,
    UserSettings,
    check_name,
    check_password,
    hash_password,
    hash_token,
    new_token,
    parse_settings,
    parse_tn,
    verify_password,
)

T = TypeVar("T")


class AccountsMixin:
    """User, token, password, number and settings operations of the store."""

    users: UserDirectory
    lists: ListIndex
    learned: LearnedAllowBook

    if TYPE_CHECKING:

        async def write(self, fn: Callable[[Database], T]) -> T: ...

    # ------------------------------------------------------------------ users
    def get_user(self, user_id: int) -> User | None:
        return self.users.get(user_id)

    def user_for_tn(self, digits: str) -> User | None:
        return self.users.user_for_tn(digits)

    def authenticate(self, raw_token: str, now: float | None = None) -> User | None:
        return self.users.authenticate(raw_token, time.time() if now is None else now)

    async def login(self, name: str, password: str) -> User | None:
        """The enabled user with this name and password (scrypt runs off the event loop)."""
        u = self.users.by_name(name) if isinstance(name, str) else None
        stored = None if u is None else self.users.password_hash(u.id)
        if u is None or stored is None or u.disabled or not isinstance(password, str):
            # Spend the same time as a real check so names cannot be probed by timing.
            await asyncio.get_running_loop().run_in_executor(
                None, verify_password, _dummy_hash(), "x"
            )
            return None
        ok = await asyncio.get_running_loop().run_in_executor(
            None, verify_password, stored, password
        )
        return u if ok else None

    async def add_user(
        self,
        name: str,
        role: Role | str = Role.USER,
        *,
        tns: Iterable[str] = (),
        password: str | None = None,
        token_label: str = "initial",
        now: float | None = None,
    ) -> tuple[User, str] | Invalid:
        """Create an account with its numbers and a first API token; return (user, raw token).

        The raw token exists only in this return value; the database holds its SHA-256.
        """
        t = time.time() if now is None else now
        n = check_name(name)
        if isinstance(n, Invalid):
            return n
        if self.users.by_name(n) is not None:
            return Invalid("name", f"{n!r} is already taken")
        try:
            r = Role(role)
        except ValueError:
            return Invalid("role", f"must be one of user, admin, auditor; got {role!r}")
        digits: list[str] = []
        for i, tn in enumerate([tns] if isinstance(tns, str) else tns):
            d = parse_tn(tn, f"tns[{i}]")
            if isinstance(d, Invalid):
                return d
            if (owner := self.users.user_for_tn(d)) is not None:
                return Invalid(f"tns[{i}]", f"+{d} already belongs to user {owner.name!r}")
            if d not in digits:
                digits.append(d)
        pw_hash = None
        if password is not None:
            pw = check_password(password)
            if isinstance(pw, Invalid):
                return pw
            pw_hash = await asyncio.get_running_loop().run_in_executor(None, hash_password, pw)
        raw = new_token()
        th = hash_token(raw)

        def fn(db: Database) -> tuple[int, int]:
            cur = db.execute(
                "INSERT INTO users (name, role, password_hash, created) VALUES (?,?,?,?)",
                [n, r.value, pw_hash, t],
            )
            uid = int(cur.lastrowid or 0)
            for d in digits:
                db.execute(
                    "INSERT INTO user_numbers (tn, user_id, created) VALUES (?,?,?)", [d, uid, t]
                )
            cur = db.execute(
                "INSERT INTO tokens (user_id, token_hash, label, created) VALUES (?,?,?,?)",
                [uid, th, token_label, t],
            )
            return uid, int(cur.lastrowid or 0)

        try:
            uid, tid = await self.write(fn)
        except sqlite3.IntegrityError as exc:
            return Invalid("name", f"conflicts with an existing account or number ({exc})")
        user = User(uid, n, r, tuple(sorted(digits)), t, False, pw_hash is not None)
        self.users.put_user(user, pw_hash)
        self.users.put_token(TokenInfo(tid, uid, token_label, t, None, th))
        return user, raw

    async def create_token(
        self,
        user_id: int,
        label: str = "",
        *,
        expires: float | None = None,
        now: float | None = None,
    ) -> tuple[TokenInfo, str] | Invalid:
        t = time.time() if now is None else now
        if self.users.get(user_id) is None:
            return Invalid("user", f"no user {user_id}")
        if not isinstance(label, str) or len(label) > 100:
            return Invalid("label", "at most 100 characters")
        if expires is not None and not expires > t:
            return Invalid("expires", "must lie in the future")
        raw = new_token()
        th = hash_token(raw)
        tid = await self.write(
            lambda db: int(
                db.execute(
                    "INSERT INTO tokens (user_id, token_hash, label, created, expires)"
                    " VALUES (?,?,?,?,?)",
                    [user_id, th, label, t, expires],
                ).lastrowid
                or 0
            )
        )
        info = TokenInfo(tid, user_id, label, t, expires, th)
        self.users.put_token(info)
        return info, raw

    async def revoke_token(self, user_id: int, token_id: int) -> bool:
        """Delete one of ``user_id``'s tokens; False if it is not theirs or does not exist."""
        if not any(t.id == token_id for t in self.users.tokens_of(user_id)):
            return False
        await self.write(
            lambda db: db.execute(
                "DELETE FROM tokens WHERE id = ? AND user_id = ?", [token_id, user_id]
            )
        )
        self.users.drop_token(token_id)
        return True

    def tokens_of(self, user_id: int) -> list[TokenInfo]:
        return self.users.tokens_of(user_id)

    async def set_password(self, user_id: int, password: str | None) -> User | Invalid:
        u = self.users.get(user_id)
        if u is None:
            return Invalid("user", f"no user {user_id}")
        h = None
        if password is not None:
            pw = check_password(password)
            if isinstance(pw, Invalid):
                return pw
            h = await asyncio.get_running_loop().run_in_executor(None, hash_password, pw)
        await self.write(
            lambda db: db.execute("UPDATE users SET password_hash = ? WHERE id = ?", [h, user_id])
        )
        nu = _replace_user(u, has_password=h is not None)
        self.users.put_user(nu, h)
        return nu

    async def update_user(
        self, user_id: int, *, role: Role | str | None = None, disabled: bool | None = None
    ) -> User | Invalid:
        u = self.users.get(user_id)
        if u is None:
            return Invalid("user", f"no user {user_id}")
        try:
            r = u.role if role is None else Role(role)
        except ValueError:
            return Invalid("role", f"must be one of user, admin, auditor; got {role!r}")
        d = u.disabled if disabled is None else bool(disabled)
        await self.write(
            lambda db: db.execute(
                "UPDATE users SET role = ?, disabled = ? WHERE id = ?", [r.value, int(d), user_id]
            )
        )
        nu = _replace_user(u, role=r, disabled=d)
        self.users.put_user(nu, self.users.password_hash(user_id))
        return nu

    async def delete_user(self, user_id: int) -> bool:
        """Remove an account with its numbers, tokens, settings, lists and voicemails."""
        if self.users.get(user_id) is None:
            return False
        await self.write(lambda db: db.execute("DELETE FROM users WHERE id = ?", [user_id]))
        self.users.drop_user(user_id)
        self.lists.drop_owner(user_id)
        self.learned.forget(user_id)
        return True

    async def add_number(
        self, user_id: int, tn: str, *, now: float | None = None
    ) -> User | Invalid:
        t = time.time() if now is None else now
        u = self.users.get(user_id)
        if u is None:
            return Invalid("user", f"no user {user_id}")
        d = parse_tn(tn)
        if isinstance(d, Invalid):
            return d
        owner = self.users.user_for_tn(d)
        if owner is not None:
            return (
                u if owner.id == user_id else Invalid("tn", f"+{d} already belongs to another user")
            )
        try:
            await self.write(
                lambda db: db.execute(
                    "INSERT INTO user_numbers (tn, user_id, created) VALUES (?,?,?)",
                    [d, user_id, t],
                )
            )
        except sqlite3.IntegrityError:
            return Invalid("tn", f"+{d} already belongs to another user")
        nu = _replace_user(u, tns=tuple(sorted((*u.tns, d))))
        self.users.put_user(nu, self.users.password_hash(user_id))
        return nu

    async def remove_number(self, user_id: int, tn: str) -> User | Invalid:
        u = self.users.get(user_id)
        if u is None:
            return Invalid("user", f"no user {user_id}")
        d = parse_tn(tn)
        if isinstance(d, Invalid):
            return d
        if d not in u.tns:
            return Invalid("tn", f"+{d} is not one of this user's numbers")
        await self.write(
            lambda db: db.execute(
                "DELETE FROM user_numbers WHERE tn = ? AND user_id = ?", [d, user_id]
            )
        )
        nu = _replace_user(u, tns=tuple(x for x in u.tns if x != d))
        self.users.put_user(nu, self.users.password_hash(user_id))
        return nu

    def settings(self, user_id: int) -> UserSettings:
        return self.users.settings(user_id)

    async def update_settings(
        self, user_id: int, patch: Mapping[str, Any], *, now: float | None = None
    ) -> UserSettings | Invalid:
        """Merge a validated JSON patch into the user's settings (null resets a key)."""
        t = time.time() if now is None else now
        if self.users.get(user_id) is None:
            return Invalid("user", f"no user {user_id}")
        s = parse_settings(patch, self.users.settings(user_id))
        if isinstance(s, Invalid):
            return s
        data = json.dumps(s.to_json(), sort_keys=True)
        await self.write(
            lambda db: db.execute(
                "INSERT INTO settings (user_id, data, updated) VALUES (?,?,?)"
                " ON CONFLICT (user_id)"
                " DO UPDATE SET data = excluded.data, updated = excluded.updated",
                [user_id, data, t],
            )
        )
        self.users.put_settings(user_id, s)
        return s


@functools.cache
def _dummy_hash() -> str:
    return hash_password("spitwall-timing-equaliser")


def _replace_user(u: User, **changes: Any) -> User:
    return dataclasses.replace(u, **changes)
