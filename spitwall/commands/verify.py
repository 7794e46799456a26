"""`spitwall verify`: verify STIR/SHAKEN Identity header value(s) for one call, print JSON.

The same verifier the proxy runs (attestation.verify.Verifier over the real certificate
service: x5u fetched over HTTPS, chain validated against --trust-anchors only, CRLs), so an
auditor can replay a logged call. Output is exactly one JSON object:
``{"valid", "verstat", "attest", "origid", "spc", "reason", "sip_code", "sip_text"}``.
Exit codes: 0 valid, 1 not valid, 2 usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from attestation.certs.service import CertificateService
from attestation.config import AttestationConfig
from attestation.model import IdentityInput, Verdict
from attestation.verify import Verifier


def register(sub: Any) -> None:
    p = sub.add_parser(
        "verify",
        help="verify STIR/SHAKEN Identity header(s) for one call; prints one JSON object",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--identity",
        action="append",
        required=True,
        metavar="VALUE",
        help="an Identity header value (repeat for several: SHAKEN, div, ...)",
    )
    p.add_argument("--from", dest="from_uri", required=True, metavar="URI|TN")
    p.add_argument("--to", dest="to_uri", required=True, metavar="URI|TN")
    p.add_argument("--pai", metavar="URI", help="P-Asserted-Identity (orig binds to it if given)")
    p.add_argument("--request-uri", metavar="URI", help="Request-URI (default: --to)")
    p.add_argument("--call-id", default="spitwall-verify", help="Call-ID (replay detection)")
    p.add_argument(
        "--now", type=float, metavar="UNIX_SECONDS", help="clock for iat and cert validity"
    )
    p.add_argument("--trust-anchors", type=Path, required=True, action="append", metavar="PEM")
    p.add_argument("--crl", type=Path, action="append", default=[], metavar="FILE")
    p.add_argument("--x5u-ca-file", type=Path, metavar="PEM", help="CA for the x5u server's TLS")
    p.add_argument(
        "--allow-x5u-host",
        action="append",
        default=[],
        metavar="HOST",
        help="exempt HOST from the private-address guard and port rule (tests, labs)",
    )
    p.add_argument("--country-code", default=None, help="for national numbers (default: 1)")
    p.add_argument(
        "--no-crl-fetch", action="store_true", help="do not fetch CRL distribution points"
    )
    p.set_defaults(func=run)


def _usage(msg: str) -> int:
    print(f"spitwall verify: {msg}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    for path in [*args.trust_anchors, *args.crl] + ([args.x5u_ca_file] if args.x5u_ca_file else []):
        if not path.is_file():
            return _usage(f"file not found: {path}")
    cfg = replace(
        AttestationConfig(),
        trust_anchors=tuple(args.trust_anchors),
        crl_files=tuple(args.crl),
        crl_fetch=not args.no_crl_fetch,
        x5u_ca_file=args.x5u_ca_file,
        x5u_allow_hosts=tuple(args.allow_x5u_host),
        cert_cache_file=None,
    )
    if args.country_code is not None:
        if not args.country_code.isdigit():
            return _usage("--country-code must be digits")
        cfg = replace(cfg, country_code=args.country_code)
    now = args.now if args.now is not None else time.time()
    inp = IdentityInput(
        identity_headers=tuple(args.identity),
        from_uri=args.from_uri,
        to_uri=args.to_uri,
        request_uri=args.request_uri or args.to_uri,
        pai_uri=args.pai,
        call_id=args.call_id,
        now=now,
    )
    try:
        verdict = asyncio.run(_verify(cfg, inp))
    except ValueError as exc:  # unreadable trust anchors / CRL files
        return _usage(str(exc))
    print(json.dumps(summary(verdict)))
    return 0 if verdict.valid else 1


async def _verify(cfg: AttestationConfig, inp: IdentityInput) -> Verdict:
    certs = CertificateService(cfg)
    try:
        return await Verifier(cfg, certs).verify(inp)
    finally:
        await certs.close()


def summary(v: Verdict) -> dict[str, Any]:
    """The documented JSON shape (stable: auditors' scripts and the tests read it)."""
    return {
        "valid": v.valid,
        "verstat": v.verstat.value,
        "attest": v.attest if v.valid else None,
        "origid": v.origid if v.valid else None,
        "spc": v.spc if v.valid else None,
        "reason": v.reason,
        "sip_code": v.sip_code,
        "sip_text": v.sip_text,
    }
