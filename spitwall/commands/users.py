"""`spitwall users add|list`: accounts of the HTTP API (subscribers, operators, auditors).

``add`` creates an account with its numbers and prints its first API token once, alone on
the last line of the output (so scripts can take ``tail -n 1``); the store keeps only the
token's SHA-256. ``--password-stdin`` also sets a web-login password read from standard
input. The reputation file is ``[reputation.store] path`` of ``--config``, else
``<data_dir>/reputation.sqlite3``. A running ``spitwall serve`` reads accounts at start: use
``POST /api/v1/admin/users`` to add one to a live server.

Exit codes: 0 done, 2 invalid input (the field is named) or an unusable database.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from reputation.lists import Invalid
from reputation.store import Store, StoreError, store_path

from ..config import load_config


def register(sub: Any) -> None:
    p = sub.add_parser("users", help="manage API accounts", description=__doc__.splitlines()[0])
    usub = p.add_subparsers(dest="users_command", metavar="ACTION", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--config", metavar="FILE", help="TOML config (default: built-in)")
        q.add_argument("--data-dir", metavar="DIR", help="override data_dir of the config")

    a = usub.add_parser("add", help="create an account and print its API token")
    a.add_argument("name")
    a.add_argument("--role", required=True, choices=("user", "admin", "auditor"))
    a.add_argument(
        "--tn", action="append", default=[], metavar="+E164", help="a number it owns (repeat)"
    )
    a.add_argument(
        "--password-stdin", action="store_true", help="read a web-login password from stdin"
    )
    a.add_argument("--label", default="initial", help="label of the first token")
    common(a)
    a.set_defaults(func=run_add)

    ls = usub.add_parser("list", help="list accounts")
    common(ls)
    ls.set_defaults(func=run_list)


def _open(args: argparse.Namespace) -> Store | None:
    overrides = {"data_dir": args.data_dir} if args.data_dir else None
    cfg = load_config(args.config, overrides)
    path = store_path(Path(cfg.data_dir), cfg.reputation.store)
    try:
        return Store.open(path, cfg.reputation.store)
    except StoreError as exc:
        print(f"spitwall users: {exc}", file=sys.stderr)
        return None


def run_add(args: argparse.Namespace) -> int:
    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    store = _open(args)
    if store is None:
        return 2

    async def add() -> Any:
        return await store.add_user(
            args.name, args.role, tns=args.tn, password=password, token_label=args.label
        )

    try:
        result = asyncio.run(add())
    finally:
        store.close()
    if isinstance(result, Invalid):
        print(f"spitwall users: {result}", file=sys.stderr)
        return 2
    user, token = result
    numbers = ", ".join(f"+{t}" for t in user.tns) or "none"
    print(f"created {user.role.value} {user.name!r} (id {user.id}; numbers: {numbers})")
    print("API token (shown only now; the server keeps its hash):")
    print(token, flush=True)
    return 0


def run_list(args: argparse.Namespace) -> int:
    store = _open(args)
    if store is None:
        return 2
    try:
        for u in store.users.all():
            numbers = ",".join(f"+{t}" for t in u.tns) or "-"
            state = " disabled" if u.disabled else ""
            print(f"{u.id}\t{u.name}\t{u.role.value}\t{numbers}{state}")
    finally:
        store.close()
    return 0
