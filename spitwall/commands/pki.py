"""`spitwall pki init DIR --spc SPC` and `spitwall pki serve DIR`: a local test STI PKI.

``init`` writes a root, intermediate, SHAKEN SP certificate (TNAuthList with the SPC) and
its key, the x5u chain, a CRL, a TLS certificate for the local x5u server and
``manifest.json`` naming them all. ``serve`` publishes the directory over HTTPS on
127.0.0.1 so that ``x5u_url`` from the manifest resolves (configure ``x5u_allow_hosts =
["127.0.0.1"]`` and ``x5u_ca_file`` = the manifest's ``tls_cert`` to let the verifier in).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from attestation.pki import PkiManifest, init_pki


def register(sub: Any) -> None:
    p = sub.add_parser("pki", help="create and serve a local test STI PKI")
    psub = p.add_subparsers(dest="pki_command", metavar="ACTION", required=True)

    i = psub.add_parser("init", help="create a test STI-CA, SP certificate, key and CRL in DIR")
    i.add_argument("dir", type=Path, help="output directory (created)")
    i.add_argument("--spc", required=True, help="Service Provider Code for the TNAuthList")
    i.add_argument("--tn", action="append", default=[], help="also authorise this TN (repeatable)")
    i.add_argument(
        "--base-url",
        default="https://127.0.0.1:8443",
        help="where DIR will be served (x5u and CRL URLs are built from it)",
    )
    i.add_argument("--force", action="store_true", help="overwrite an existing PKI in DIR")
    i.set_defaults(func=run_init)

    s = psub.add_parser("serve", help="serve DIR (from `pki init`) over HTTPS for x5u/CRL")
    s.add_argument("dir", type=Path)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=None, help="default: the manifest's base URL port")
    s.set_defaults(func=run_serve)


def run_init(args: argparse.Namespace) -> int:
    d: Path = args.dir
    if (d / "manifest.json").exists() and not args.force:
        print(f"spitwall pki: {d} already holds a PKI (use --force to replace)", file=sys.stderr)
        return 2
    if not args.base_url.startswith("https://"):
        print("spitwall pki: --base-url must be an https:// URL", file=sys.stderr)
        return 2
    bad = [t for t in args.tn if not (1 <= len(t) <= 15 and set(t) <= set("0123456789#*"))]
    if bad or not args.spc.isascii() or not args.spc:
        print(f"spitwall pki: invalid --spc/--tn value(s): {bad or [args.spc]}", file=sys.stderr)
        return 2
    m = init_pki(d, args.spc, now=time.time(), tns=args.tn, base_url=args.base_url)
    print(m.to_json(), end="")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    from attestation.certs.server import serve_pki

    try:
        m = PkiManifest.load(args.dir)
    except (OSError, ValueError, TypeError) as exc:
        print(f"spitwall pki: {args.dir}: no usable manifest.json ({exc})", file=sys.stderr)
        return 2

    async def main() -> None:
        server = await serve_pki(args.dir, host=args.host, port=args.port)
        print(f"serving {args.dir} at {server.base_url} (x5u {m.x5u_url})", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop()

    try:
        asyncio.run(main())
    except OSError as exc:
        print(f"spitwall pki serve: {exc}", file=sys.stderr)
        return 2
    return 0
