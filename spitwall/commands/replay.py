"""`spitwall replay CAPTURE`: what spitwall would have done with the calls in a capture.

Reads SIP over UDP and TCP (reassembled) from a pcap or pcapng file, screens every new
INVITE with the configured verification, scoring and policy (the clock is the packet
time), learns from the responses, CANCELs and BYEs that follow, and prints a report per
call plus a summary. The config's live-path parts apply as in the proxy: each INVITE's
trunk from ``[proxy.trunks]`` (named in the report with its kind), the rate limiter
(``shed`` calls are never screened), STI-AS signing trunks (outbound calls ``signed``, not
scored), monitor mode, and challenge pass tokens when the secret file exists (see
``spitwall.replay.wiring``). Nothing is written to the deployment's data. x5u certificates are not
fetched unless ``--fetch-x5u``: give local copies with ``--cert-dir``.

Exit codes: 0 the whole capture was read; 1 the report covers only what could be read
(problems are listed) or the file is not a capture; 2 a usage or configuration error.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from pathlib import Path
from typing import Any

from ..config import load_config
from ..settings import ConfigError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "replay",
        help="what spitwall would have done with the calls in a pcap/pcapng capture",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("capture", metavar="CAPTURE", help="pcap or pcapng file")
    p.add_argument("--config", metavar="FILE", help="TOML config (default: built-in defaults)")
    p.add_argument("--format", choices=("text", "jsonl"), default="text")
    p.add_argument(
        "--trust-anchors",
        nargs="+",
        action="extend",
        metavar="PEM",
        default=[],
        help="STI-CA trust anchor PEM files, added to attestation.trust_anchors (give"
        " CAPTURE first, or end the list with --)",
    )
    p.add_argument(
        "--cert-dir",
        metavar="DIR",
        help="local x5u chains: <last URL segment> or <sha256(url)>.pem",
    )
    p.add_argument(
        "--fetch-x5u",
        action="store_true",
        help="fetch x5u certificates over HTTPS (off by default)",
    )
    p.add_argument(
        "--store",
        metavar="SQLITE",
        help="start from a copy of this reputation store (users, lists, learned numbers)",
    )
    p.add_argument("-o", "--output", metavar="FILE", help="write the report here (default stdout)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from attestation.certs import CertificateService, load_anchors

    from ..replay import OfflineCertificates, replay_capture, write_jsonl, write_text

    cfg = load_config(args.config)
    capture = Path(args.capture)
    if not capture.exists():
        print(f"spitwall replay: {capture}: no such file", file=sys.stderr)
        return 2
    cert_dir = Path(args.cert_dir) if args.cert_dir else None
    if cert_dir is not None and not cert_dir.is_dir():
        raise ConfigError("--cert-dir", f"{cert_dir} is not a directory")
    seed = Path(args.store) if args.store else None
    if seed is not None and not seed.is_file():
        raise ConfigError("--store", f"{seed} is not a file")
    att = dataclasses.replace(
        cfg.attestation,
        trust_anchors=(*cfg.attestation.trust_anchors, *(Path(p) for p in args.trust_anchors)),
        cert_cache_file=None,
    )
    cfg = dataclasses.replace(cfg, attestation=att)
    try:
        anchors = load_anchors(att.trust_anchors)
    except ValueError as exc:
        raise ConfigError("--trust-anchors", str(exc)) from None

    async def go() -> int:
        certs: Any
        if args.fetch_x5u:
            certs = CertificateService(att, anchors=anchors)
        else:
            certs = OfflineCertificates(anchors, cert_dir, max_chain=att.cert_max_chain)
        try:
            result, summary = await replay_capture(capture, cfg, certs, seed_store=seed)
        finally:
            if args.fetch_x5u:
                await certs.close()
        out = open(args.output, "w") if args.output else sys.stdout  # noqa: SIM115
        try:
            if args.format == "jsonl":
                write_jsonl(out, result, summary)
            else:
                write_text(out, result, summary)
        finally:
            if out is not sys.stdout:
                out.close()
        return 0 if summary.complete else 1

    return asyncio.run(go())
