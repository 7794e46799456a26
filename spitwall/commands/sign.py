"""`spitwall sign`: sign a SHAKEN PASSporT and print the Identity header value.

Prints ``<jwt>;info=<x5u>;alg=ES256;ppt=shaken`` (RFC 8224 §4, RFC 8588). TNs may be given
canonical (``12155551212``) or with ``+`` and visual separators; they are signed canonical.
Exit codes: 0 printed, 2 usage error (bad key, TN, attest or URL).
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from attestation.sign import ShakenClaims, Signer, SigningError, load_private_key
from attestation.tn import canonicalize


def register(sub: Any) -> None:
    p = sub.add_parser(
        "sign",
        help="sign a SHAKEN PASSporT; prints the Identity header value",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--key", type=Path, required=True, metavar="PEM", help="EC P-256 private key")
    p.add_argument("--x5u", required=True, metavar="URL", help="https URL of the cert chain")
    p.add_argument("--orig", required=True, metavar="TN")
    p.add_argument("--dest", required=True, action="append", metavar="TN")
    p.add_argument("--attest", required=True, choices=("A", "B", "C"))
    p.add_argument("--origid", metavar="UUID", help="default: a fresh UUID")
    p.add_argument("--iat", type=int, metavar="SECONDS", help="default: now")
    p.set_defaults(func=run)


def _usage(msg: str) -> int:
    print(f"spitwall sign: {msg}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    try:
        key = load_private_key(args.key.read_bytes())
    except OSError as exc:
        return _usage(f"cannot read {args.key}: {exc.strerror or exc}")
    except SigningError as exc:
        return _usage(f"{args.key}: {exc}")
    orig = canonicalize(args.orig, None)
    dests = [canonicalize(d, None) for d in args.dest]
    if orig is None:
        return _usage(f"--orig {args.orig!r} is not a telephone number")
    if any(d is None for d in dests):
        return _usage("--dest must be telephone numbers")
    origid = args.origid or str(uuid.uuid4())
    try:
        uuid.UUID(origid)
    except ValueError:
        return _usage(f"--origid {origid!r} is not a UUID")
    iat = args.iat if args.iat is not None else int(time.time())
    try:
        signer = Signer(key, args.x5u)
        claims = ShakenClaims(orig, tuple(d for d in dests if d), args.attest, origid, iat)
        print(signer.identity(claims))
    except SigningError as exc:
        return _usage(str(exc))
    return 0
