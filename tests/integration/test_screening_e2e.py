"""A call's whole path through the real parts: SIPp caller → spitwall (composed as
``spitwall serve`` composes it) → SIPp callee, with STIR/SHAKEN certificates served by a
local HTTPS x5u server, the reputation store and the attestation log on real SQLite files.

What a user would check: a signed call reaches the callee with ``verstat`` and the score
tag; a call from a number the subscriber blocked never rings and the caller gets the
subscriber's treatment; a forged PASSporT is rejected with RFC 8224's 438 when the policy
says reject; every call lands in the subscriber's history and in the attestation log, whose
chain verifies with ``spitwall audit verify`` — until a byte of the file is edited.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from attestation.sign import ShakenClaims, Signer, load_private_key
from reputation.lists import ListKind, parse_pattern
from reputation.store import user_list_entry
from spitwall.compose import Spitwall
from spitwall.config import load_config
from tests.integration.bed import local_pki, overrides
from tests.sipp.harness import Sipp, free_port, scenario

HERE = Path(__file__).resolve().parent
CALLEE = "12155550123"
FRIEND = "+12155550100"
BLOCKED = "+12155550999"

ACK_BYE = """
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: <sip:@CALLER@@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: <sip:@CALLER@@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
"""

ACK_NON2XX = """
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=z9hG4bK-[pid]-[call_number]-inv
      From: <sip:@CALLER@@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <timewait milliseconds="100"/>
"""


@dataclass
class Bed:
    sw: Spitwall
    proxy: str
    uas_port: int
    signer: Signer
    data_dir: Path
    user_id: int


def _uac(caller: str, code: int, identity: str | None) -> Path:
    after = (ACK_BYE if code == 200 else ACK_NON2XX).replace("@CALLER@", caller)
    return scenario(
        "../integration/uac_expect.xml",
        caller=caller,
        code=code,
        identity_header=f"Identity: {identity}" if identity else "",
        after=after,
    )


@pytest.fixture
async def bed(tmp_path: Path) -> AsyncIterator[Bed]:
    manifest, x5u = await local_pki(tmp_path)
    uas_port = free_port()
    o = overrides(tmp_path, manifest, uas_port)
    cfg = load_config(None, o | {"attestation.on_failure.invalid_identity": "reject"})
    sw = Spitwall(cfg)
    bound = await sw.start(http=False)
    udp = next(b for b in bound if b.transport == "udp")
    assert sw.store is not None
    made = await sw.store.add_user("bob", "user", tns=[f"+{CALLEE}"])
    assert isinstance(made, tuple), made
    user, _token = made
    pattern = parse_pattern(BLOCKED)
    added = await sw.store.add_entry(user_list_entry(user.id, ListKind.BLOCK, pattern))
    assert not hasattr(added, "problem"), added
    key = load_private_key(Path(manifest.leaf_key).read_bytes())
    try:
        yield Bed(
            sw,
            f"127.0.0.1:{udp.port}",
            uas_port,
            Signer(key, manifest.x5u_url),
            tmp_path / "data",
            user.id,
        )
    finally:
        await sw.stop(0.2)
        await x5u.stop()


def _identity(bed: Bed, orig: str, attest: str = "A") -> str:
    claims = ShakenClaims(
        attest=attest,
        orig_tn=orig.lstrip("+"),
        dest_tns=(CALLEE,),
        iat=int(time.time()),
        origid="4437c7eb-8f7a-4f0e-a863-f53a0e60251a",
    )
    return bed.signer.identity(claims)


async def _call(bed: Bed, caller: str, code: int, identity: str | None) -> str:
    """One SIPp call; returns what the callee received ('' when it never rang)."""
    trace = bed.data_dir.parent / f"uas-{caller.strip('+')}-{code}.log"
    uas = None
    if code == 200:
        uas = await Sipp.start(
            HERE / "uas_trace.xml",
            port=bed.uas_port,
            calls=1,
            extra=("-trace_msg", "-message_file", str(trace)),
        )
        await asyncio.sleep(0.2)
    uac = await Sipp.start(
        _uac(caller, code, identity), port=free_port(), target=bed.proxy, service=CALLEE
    )
    res = await uac.wait(30)
    assert res.ok, res.why
    if uas is not None:
        got = await uas.wait(30)
        assert got.ok, got.why
        return trace.read_text(errors="replace")
    return ""


async def test_signed_call_reaches_callee_with_verstat(bed: Bed) -> None:
    seen = await _call(bed, FRIEND, 200, _identity(bed, FRIEND))
    invite = seen.split("INVITE sip:", 1)[1].split("\n\n", 1)[0]
    assert "verstat=TN-Validation-Passed" in invite
    assert "X-Spitwall-Score:" in invite or "x-spitwall-score:" in invite.lower()


async def test_unsigned_call_is_tagged_no_validation(bed: Bed) -> None:
    seen = await _call(bed, "+12155550177", 200, None)
    invite = seen.split("INVITE sip:", 1)[1].split("\n\n", 1)[0]
    assert "verstat=No-TN-Validation" in invite


async def test_blocked_number_never_rings(bed: Bed) -> None:
    await _call(bed, BLOCKED, 607, _identity(bed, BLOCKED))
    assert bed.sw.screener is not None
    assert bed.sw.store is not None
    await asyncio.sleep(0.2)  # the call record is written behind the call (batch window)
    rows = await bed.sw.store.calls_for_user(bed.user_id)
    assert [(r.caller, r.action) for r in rows] == [(BLOCKED, "reject")], rows
    explained = rows[0].reasons
    assert explained and explained[0].signal.startswith("list."), explained


async def test_forged_passport_rejected_438(bed: Bed) -> None:
    good = _identity(bed, FRIEND)
    token, params = good.split(";", 1)
    head, payload, sig = token.split(".")
    forged_sig = ("A" if sig[0] != "A" else "B") + sig[1:]
    await _call(bed, FRIEND, 438, f"{head}.{payload}.{forged_sig};{params}")


async def test_audit_log_records_calls_and_detects_edits(bed: Bed) -> None:
    await _call(bed, FRIEND, 200, _identity(bed, FRIEND))
    await _call(bed, BLOCKED, 607, None)
    assert bed.sw.audit is not None
    await bed.sw.audit.flush()
    db = bed.data_dir / "attestation.sqlite3"
    ok = subprocess.run(
        [sys.executable, "-m", "spitwall", "audit", "verify", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    await bed.sw.stop(0.1)
    raw = bytearray(db.read_bytes())
    needle = raw.find(b"TN-Validation-Passed")
    assert needle > 0
    raw[needle] ^= 0x01
    db.write_bytes(bytes(raw))
    bad = subprocess.run(
        [sys.executable, "-m", "spitwall", "audit", "verify", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1, bad.stdout + bad.stderr
