"""The HTTP API steering real calls (issue 6's end to end): a subscriber changes their
lists and reports calls over HTTP with a bearer token, and the very next SIPp call through
the proxy feels it.

spitwall is composed in-process exactly as ``spitwall serve`` composes it (proxy, pipeline,
reputation store and attestation log on real SQLite files, the API on the shared aiohttp
server on an ephemeral port); calls are signed A with a test STI PKI whose certificates a
local HTTPS x5u server serves, so feedback may count against the caller's number (reports
on weaker identities land on the source only: ``[reputation.store] tn_evidence_min_attest``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from attestation.sign import ShakenClaims, Signer, load_private_key
from spitwall.compose import WORKER_SYNC_INTERVAL, Spitwall
from spitwall.config import load_config
from tests.integration.bed import local_pki, overrides
from tests.integration.test_screening_e2e import ACK_BYE, ACK_NON2XX
from tests.sipp.harness import Sipp, free_port, scenario, sipp_binary

pytestmark = [pytest.mark.sipp, pytest.mark.timeout(120)]

HERE = Path(__file__).resolve().parent
CALLEE = "12155550123"  # alice's number
OTHER = "+12155550124"  # mallory's number
BLOCKED = "+12125550999"
REPORTED = "+12125550777"


@dataclass
class Bed:
    sw: Spitwall
    proxy: str
    http: str
    uas_port: int
    signer: Signer
    tmp: Path
    tokens: dict[str, str]
    client: aiohttp.ClientSession

    async def api(self, method: str, path: str, who: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        async with self.client.request(
            method, f"{self.http}/api/v1{path}", json=body, headers=headers
        ) as r:
            data = await r.json() if r.content_type == "application/json" else await r.read()
            return r.status, data


@pytest.fixture
async def bed(tmp_path: Path) -> AsyncIterator[Bed]:
    sipp_binary()
    manifest, x5u = await local_pki(tmp_path)
    uas_port = free_port()
    cfg = load_config(None, overrides(tmp_path, manifest, uas_port, http="127.0.0.1:0"))
    sw = Spitwall(cfg)
    bound = await sw.start(http=True)
    udp = next(b for b in bound if b.transport == "udp")
    assert sw.store is not None and sw.http_bound is not None
    tokens = {}
    for name, role, tns in (
        ("alice", "user", [f"+{CALLEE}"]),
        ("mallory", "user", [OTHER]),
        ("audrey", "auditor", []),
    ):
        made = await sw.store.add_user(name, role, tns=tns)
        assert isinstance(made, tuple), made
        tokens[name] = made[1]
    key = load_private_key(Path(manifest.leaf_key).read_bytes())
    host, port = sw.http_bound
    client = aiohttp.ClientSession()
    try:
        yield Bed(
            sw,
            f"127.0.0.1:{udp.port}",
            f"http://{host}:{port}",
            uas_port,
            Signer(key, manifest.x5u_url),
            tmp_path,
            tokens,
            client,
        )
    finally:
        await client.close()
        await sw.stop(0.2)
        await x5u.stop()


def _identity(bed: Bed, orig: str) -> str:
    claims = ShakenClaims(
        attest="A",
        orig_tn=orig.lstrip("+"),
        dest_tns=(CALLEE,),
        iat=int(time.time()),
        origid="2f1e4c3a-9a0b-4a4e-8a3c-0d6f1b2c3d4e",
    )
    return bed.signer.identity(claims)


async def _call(bed: Bed, caller: str, code: int) -> str:
    """One signed SIPp call expecting ``code``; returns the INVITE the callee got ('' if none)."""
    after = (ACK_BYE if code == 200 else ACK_NON2XX).replace("@CALLER@", caller)
    uac = scenario(
        "../integration/uac_expect.xml",
        caller=caller,
        code=code,
        identity_header=f"Identity: {_identity(bed, caller)}",
        after=after,
    )
    trace = bed.tmp / f"uas-{caller.strip('+')}-{time.monotonic_ns()}.log"
    uas = None
    if code == 200:
        uas = await Sipp.start(
            HERE / "uas_trace.xml",
            port=bed.uas_port,
            extra=("-trace_msg", "-message_file", str(trace)),
        )
        await asyncio.sleep(0.2)
    res = await (await Sipp.start(uac, port=free_port(), target=bed.proxy, service=CALLEE)).wait(30)
    assert res.ok, res.why
    if uas is None:
        return ""
    got = await uas.wait(30)
    assert got.ok, got.why
    return trace.read_text(errors="replace").split("INVITE sip:", 1)[1].split("\n\n", 1)[0]


async def _newest_call(bed: Bed, who: str, caller: str, want: int = 1) -> dict[str, Any]:
    """The newest history row from ``caller`` once ``want`` of them are there (the call
    record and its outcome are written behind the call, in the store's batch window)."""
    for _ in range(100):
        status, body = await bed.api("GET", "/me/calls", who)
        assert status == 200, body
        rows = [c for c in body["calls"] if c["caller"] == caller]
        if len(rows) >= want and rows[0]["outcome"] is not None:
            return dict(rows[0])
        await asyncio.sleep(0.05)
    raise AssertionError(f"no settled call from {caller} in {who}'s history: {body}")


def _signals(call: dict[str, Any]) -> list[str]:
    return [r["signal"] for r in call["reasons"]]


async def test_block_over_http_then_the_next_call_is_refused_and_explained(bed: Bed) -> None:
    status, entry = await bed.api(
        "POST", "/me/blocklist", "alice", {"number": BLOCKED, "note": "keeps calling"}
    )
    assert status == 201, entry
    # the very next call: refused with 607 Unwanted ([reputation.policy] user_block_code)
    assert await _call(bed, BLOCKED, 607) == ""
    call = await _newest_call(bed, "alice", BLOCKED)
    assert call["action"] == "reject" and call["attest"] == "A", call
    assert call["verstat"] == "TN-Validation-Passed"
    assert "list.user_block" in _signals(call), call
    assert any("block list" in r["detail"] for r in call["reasons"])

    # the auditor finds the decision in the attestation log by the caller's number
    assert bed.sw.audit is not None
    await bed.sw.audit.flush()
    status, page = await bed.api("GET", f"/audit/records?orig=%2B{BLOCKED[1:]}", "audrey")
    assert status == 200, page
    (rec,) = page["records"]
    assert rec["call_id"] == call["call_id"] and rec["action"] == "reject"
    assert rec["code"] == 607 and rec["attest"] == "A"
    status, page = await bed.api(
        "GET", f"/audit/records?orig={BLOCKED[1:]}&action=reject&dest={CALLEE}", "audrey"
    )
    assert status == 200 and [r["call_id"] for r in page["records"]] == [call["call_id"]]

    # nobody else sees or touches it
    status, body = await bed.api("GET", "/me/calls", "mallory")
    assert status == 200 and body["calls"] == []
    for method, path, payload in (
        ("GET", f"/me/calls/{call['id']}", None),
        ("POST", f"/me/calls/{call['id']}/report", {"spam": False}),
        ("DELETE", f"/me/blocklist/{entry['id']}", None),
    ):
        status, _ = await bed.api(method, path, "mallory", payload)
        assert status == 404, (method, path, status)
    status, _ = await bed.api("GET", f"/audit/records?orig={BLOCKED[1:]}", "mallory")
    assert status == 403
    status, _ = await bed.api("GET", "/me/calls", "audrey")
    assert status == 403

    # unblocking is just as immediate: the next call rings
    status, _ = await bed.api("DELETE", f"/me/blocklist/{entry['id']}", "alice")
    assert status == 204
    invite = await _call(bed, BLOCKED, 200)
    assert "verstat=TN-Validation-Passed" in invite


async def test_spam_report_over_http_scores_the_next_call(bed: Bed) -> None:
    await _call(bed, REPORTED, 200)
    first = await _newest_call(bed, "alice", REPORTED)
    assert first["action"].startswith("forward"), first
    assert "feedback.reported_spam" not in _signals(first)

    status, body = await bed.api("POST", f"/me/calls/{first['id']}/report", "alice", {"spam": True})
    assert status == 200 and body["report"] == "spam" and not body["duplicate"], body
    status, _ = await bed.api("POST", f"/me/calls/{first['id']}/report", "mallory", {"spam": True})
    assert status == 404

    await _call(bed, REPORTED, 200)
    second = await _newest_call(bed, "alice", REPORTED, want=2)
    assert second["id"] != first["id"]
    assert "feedback.reported_spam" in _signals(second), second
    reported = next(r for r in second["reasons"] if r["signal"] == "feedback.reported_spam")
    assert reported["weight"] > 0 and "reported as spam" in reported["detail"]
    assert second["score"] > first["score"]
    status, body = await bed.api("GET", f"/me/calls/{first['id']}", "alice")
    assert status == 200 and body["report"] == "spam"


async def test_block_reaches_every_worker_of_spitwall_serve(tmp_path: Path) -> None:
    """``spitwall serve --workers 2``: the API runs in worker 0, calls land on either
    worker (SO_REUSEPORT hashes the caller's address), so a list change must reach both."""
    import subprocess
    import sys

    from tests.sipp.harness import ROOT, ServeProcess

    sipp_binary()
    data_dir = tmp_path / "data"
    out = subprocess.run(
        [
            *(sys.executable, "-m", "spitwall", "users", "add", "alice", "--role", "user"),
            *("--tn", f"+{CALLEE}", "--data-dir", str(data_dir)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    token = out.stdout.strip().splitlines()[-1]
    proxy_port, http_port = free_port(), free_port()
    sp = await ServeProcess.start(
        "--data-dir",
        str(data_dir),
        "--listen",
        f"udp:127.0.0.1:{proxy_port}",
        "--next-hop",
        f"sip:127.0.0.1:{free_port()}",
        "--http",
        f"127.0.0.1:{http_port}",
        "--workers",
        "2",
    )
    try:
        # both workers up: each prints its own ready line
        for _ in range(300):  # slow on a loaded 2-core machine: two full compositions
            if sum(line.startswith("ready") for line in sp.lines) >= 2:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("".join(sp.lines))
        async with (
            aiohttp.ClientSession() as client,
            client.post(
                f"http://127.0.0.1:{http_port}/api/v1/me/blocklist",
                json={"number": BLOCKED},
                headers={"Authorization": f"Bearer {token}"},
            ) as r,
        ):
            assert r.status == 201, await r.text()
        # the other worker reads the store's change feed every WORKER_SYNC_INTERVAL
        await asyncio.sleep(2 * WORKER_SYNC_INTERVAL)
        after = ACK_NON2XX.replace("@CALLER@", BLOCKED)
        uac = scenario(
            "../integration/uac_expect.xml",
            caller=BLOCKED,
            code=607,
            identity_header="",
            after=after,
        )
        # eight callers on eight source ports: both workers get some of them
        target = f"127.0.0.1:{proxy_port}"
        runs = [
            await Sipp.start(uac, port=free_port(), target=target, service=CALLEE, timeout=10)
            for _ in range(8)
        ]
        for run in runs:
            res = await run.wait(30)
            assert res.ok, res.why
    finally:
        assert await sp.stop() == 0


async def test_blocked_number_never_rings_even_when_voicemail_is_off(bed: Bed) -> None:
    """The subscriber sends their worst band to voicemail, but this spitwall runs no
    challenge/voicemail UA: a number they blocked must still not ring (607), although
    other diverted calls fall back to ringing, tagged."""
    status, body = await bed.api(
        "PUT", "/me/settings", "alice", {"band_actions": {"certain": "voicemail"}}
    )
    assert status == 200, body
    status, entry = await bed.api("POST", "/me/blocklist", "alice", {"number": BLOCKED})
    assert status == 201, entry
    assert await _call(bed, BLOCKED, 607) == ""
    call = await _newest_call(bed, "alice", BLOCKED)
    assert call["action"] == "reject" and "list.user_block" in _signals(call), call
