"""The STI-AS proxy mode end to end: SIPp caller on a customer trunk → spitwall (composed as
``spitwall serve`` composes it) → SIPp callee, which records what it received.

What an operator would check: an INVITE from a configured trunk without an Identity header
reaches the far end with one, signed with the trunk's attestation level (A for a number the
customer owns, B for another of its numbers, C from a gateway trunk) and origid; that
Identity verifies with a second verifier, ``spitwall verify`` (a subprocess fetching the
x5u over HTTPS like a terminating carrier would), and with a third-party one, secsipidx
(signature, chain to the test root, expiry); the call is logged as a ``signing`` record
and not screened; a call arriving already signed is verified instead of re-signed.

The gateway trunk is 127.0.0.0/8 and the customer 127.0.0.1/32: SIPp sending from
127.0.0.2 proves the most specific prefix decides.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from attestation.audit import AuditReader, SearchFilters
from attestation.passport import b64url_decode, b64url_encode
from attestation.pki import PkiManifest
from attestation.sign import ShakenClaims, Signer, load_private_key
from spitwall.compose import Spitwall
from spitwall.config import load_config
from tests.integration.bed import local_pki, overrides
from tests.sipp.harness import Sipp, free_port, scenario

from .test_screening_e2e import ACK_BYE

HERE = Path(__file__).resolve().parent
CALLEE = "13105550123"
OWNED = "+12155550100"
NOT_OWNED = "+13125550100"
ORIGID = "3c2c5a0e-8c2f-4d51-9b6a-2f1f0b3f6a01"


@dataclass
class Bed:
    sw: Spitwall
    proxy: str
    uas_port: int
    manifest: PkiManifest
    data_dir: Path


@pytest.fixture
async def bed(tmp_path: Path) -> AsyncIterator[Bed]:
    manifest, x5u = await local_pki(tmp_path)
    uas_port = free_port()
    cfg = load_config(
        None,
        overrides(tmp_path, manifest, uas_port)
        | {
            "attestation.signing_key": manifest.leaf_key,
            "attestation.signing_x5u": manifest.x5u_url,
            "attestation.signing_trunks": {
                "acme": {
                    "kind": "customer",
                    "owned_tns": ["1215555*"],
                    "origid": ORIGID,
                    "sources": ["203.0.113.0/24", "127.0.0.1/32"],
                },
                "carrier": {"kind": "gateway", "sources": ["127.0.0.0/8"]},
            },
        },
    )
    sw = Spitwall(cfg)
    bound = await sw.start(http=False)
    udp = next(b for b in bound if b.transport == "udp")
    try:
        yield Bed(sw, f"127.0.0.1:{udp.port}", uas_port, manifest, tmp_path / "data")
    finally:
        await sw.stop(0.2)
        await x5u.stop()


def _uac(caller: str, identity: str | None) -> Path:
    return scenario(
        "../integration/uac_expect.xml",
        caller=caller,
        code=200,
        identity_header=f"Identity: {identity}" if identity else "",
        after=ACK_BYE.replace("@CALLER@", caller),
    )


async def _call(
    bed: Bed, caller: str, *, source: str = "127.0.0.1", identity: str | None = None
) -> dict[str, list[str]]:
    """One SIPp call from ``source``; the headers of the INVITE the callee received."""
    trace = bed.data_dir.parent / f"uas-{caller.strip('+')}-{source}.log"
    uas = await Sipp.start(
        HERE / "uas_trace.xml",
        port=bed.uas_port,
        extra=("-trace_msg", "-message_file", str(trace)),
    )
    await asyncio.sleep(0.2)
    uac = await Sipp.start(
        _uac(caller, identity),
        port=free_port(),
        target=bed.proxy,
        service=CALLEE,
        extra=("-i", source),
    )
    res = await uac.wait(30)
    assert res.ok, res.why
    got = await uas.wait(30)
    assert got.ok, got.why
    return _invite_headers(trace.read_text(errors="replace"))


def _invite_headers(trace: str) -> dict[str, list[str]]:
    start = trace.index("INVITE sip:")
    block = trace[start:].replace("\r\n", "\n").split("\n\n", 1)[0]
    lines = block.split("\n")
    headers: dict[str, list[str]] = {":request-line": [lines[0]]}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return headers


def _claims(identity: str) -> dict[str, Any]:
    payload = b64url_decode(identity.split(";", 1)[0].split(".")[1])
    assert payload is not None
    out: dict[str, Any] = json.loads(payload)
    return out


async def _spitwall_verify(bed: Bed, invite: dict[str, list[str]]) -> dict[str, Any]:
    """``spitwall verify`` in a subprocess, fed the forwarded INVITE's fields (the x5u
    server runs on this loop, so the subprocess must not block it)."""
    ruri = invite[":request-line"][0].split()[1]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "spitwall",
        "verify",
        "--identity",
        invite["identity"][0],
        "--from",
        invite["from"][0],
        "--to",
        invite["to"][0],
        "--request-uri",
        ruri,
        "--trust-anchors",
        bed.manifest.trust_anchors,
        "--x5u-ca-file",
        bed.manifest.tls_cert,
        "--allow-x5u-host",
        "127.0.0.1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    result: dict[str, Any] = json.loads(out)
    assert proc.returncode == (0 if result["valid"] else 1), err.decode()
    return result


def _secsipidx() -> str:
    path = shutil.which("secsipidx")
    if path is None:
        pytest.fail(
            "secsipidx binary not found: install the Debian package 'secsipidx' "
            "(make test installs it via tools/sysdeps.sh)"
        )
    return path


async def _secsipidx_ok(bed: Bed, identity: str) -> bool:
    m = bed.manifest
    proc = await asyncio.create_subprocess_exec(
        _secsipidx(),
        "-check",
        "-identity",
        identity,
        "-p",
        m.leaf_cert,
        "-cert-verify",
        "15",
        "-ca-file",
        m.root_cert,
        "-ca-inter",
        m.intermediate_cert,
        "-expire",
        "60",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    text = out.decode(errors="replace").strip()
    assert proc.returncode == 0 or "not-ok" in text, (proc.returncode, text, err)
    return proc.returncode == 0 and text.endswith("ok") and "not-ok" not in text


@pytest.mark.parametrize(
    ("caller", "source", "attest", "origid"),
    [
        (OWNED, "127.0.0.1", "A", ORIGID),  # customer trunk, a number it owns
        (NOT_OWNED, "127.0.0.1", "B", ORIGID),  # customer trunk, not its number
        (OWNED, "127.0.0.2", "C", None),  # gateway trunk (127/8): a fresh origid per call
    ],
)
async def test_outbound_call_is_signed_and_verifies_elsewhere(
    bed: Bed, caller: str, source: str, attest: str, origid: str | None
) -> None:
    invite = await _call(bed, caller, source=source)
    assert len(invite.get("identity", [])) == 1, invite
    identity = invite["identity"][0]
    assert identity.endswith(f";info=<{bed.manifest.x5u_url}>;alg=ES256;ppt=shaken")
    claims = _claims(identity)
    assert claims["attest"] == attest
    assert claims["orig"] == {"tn": caller.lstrip("+")} and claims["dest"] == {"tn": [CALLEE]}
    assert claims["origid"] == (origid or claims["origid"]) and claims["origid"] != ""
    # leaves the provider: not verified or scored here, so no verstat and no score tag
    assert "verstat=" not in invite["from"][0] and "x-spitwall-score" not in invite

    theirs = await _spitwall_verify(bed, invite)
    assert theirs["valid"], theirs
    assert (theirs["verstat"], theirs["attest"], theirs["spc"]) == (
        "TN-Validation-Passed",
        attest,
        "SWTEST",
    )
    assert theirs["origid"] == claims["origid"]
    assert await _secsipidx_ok(bed, identity), "secsipidx refused our Identity"

    assert bed.sw.audit is not None and bed.sw.store is not None
    await bed.sw.audit.flush()
    reader = AuditReader(bed.data_dir / "attestation.sqlite3")
    rows = (await asyncio.to_thread(reader.search, SearchFilters(kind="signing"))).records
    got = [r.entry() for r in rows]
    assert [(e.action, e.attest, e.orig_tn, e.dest_tn, e.origid) for e in got] == [
        ("signed", attest, caller.lstrip("+"), CALLEE, claims["origid"])
    ], got
    assert got[0].identity_headers == (identity,) and got[0].passport_claims == claims
    assert got[0].details == {"trunk": "carrier" if attest == "C" else "acme"}
    assert got[0].score is None  # not scored as inbound spam


async def test_tampered_identity_is_refused_by_both_verifiers(bed: Bed) -> None:
    invite = await _call(bed, OWNED)
    token, params = invite["identity"][0].split(";", 1)
    head, _, sig = token.split(".")
    claims = _claims(invite["identity"][0])
    claims["attest"] = "A" if claims["attest"] != "A" else "B"
    forged = f"{head}.{b64url_encode(json.dumps(claims).encode())}.{sig};{params}"
    theirs = await _spitwall_verify(bed, {**invite, "identity": [forged]})
    assert not theirs["valid"] and theirs["sip_code"] == 438, theirs
    assert not await _secsipidx_ok(bed, forged)


async def test_already_signed_call_from_a_trunk_is_verified_not_resigned(bed: Bed) -> None:
    signer = Signer(
        load_private_key(Path(bed.manifest.leaf_key).read_bytes()), bed.manifest.x5u_url
    )
    theirs = signer.identity(
        ShakenClaims(OWNED.lstrip("+"), (CALLEE,), "B", ORIGID, int(time.time()))
    )
    invite = await _call(bed, OWNED, identity=theirs)
    assert invite["identity"] == [theirs]
    assert "verstat=TN-Validation-Passed" in invite["from"][0]
    assert bed.sw.audit is not None
    await bed.sw.audit.flush()
    reader = AuditReader(bed.data_dir / "attestation.sqlite3")
    page = await asyncio.to_thread(reader.search, SearchFilters())
    assert [r.entry().kind for r in page.records] == ["decision"]
