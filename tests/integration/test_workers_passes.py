"""``spitwall serve --workers 2``: the workers honour one set of challenge passes.

A pass reported to the API (worker 0) lets the caller through whichever worker the kernel
hands the next call to, and a pass token opens one call only, whichever worker sees it
first. SIPp sends every call from a socket of its own (``-t un``) so the calls spread over
both workers (checked with each worker's own INVITE counter); the SIPp callee records
what the proxy forwarded, with the ``X-Spitwall-Score`` label that says why.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import time
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from challenge.passtoken import mint
from challenge.runner import report_token
from spitwall.compose import challenge_secret_path
from spitwall.config import load_config
from tests.integration.test_screening_e2e import ACK_BYE
from tests.integration.test_workers_metrics import per_worker, two_workers, wait_ready
from tests.sipp.harness import ServeProcess, Sipp, free_port, scenario

HERE = Path(__file__).resolve().parent
CALLEE = "12155550123"
CALLS = 16


@dataclass
class Bed:
    serve: ServeProcess
    proxy: str
    http: tuple[str, int]
    uas_port: int
    data: Path
    secret: bytes


@pytest.fixture
async def bed(tmp_path: Path) -> AsyncIterator[Bed]:
    port, http_port, uas_port = free_port(), free_port(socket.SOCK_STREAM), free_port()
    data = tmp_path / "data"
    # nothing is turned away here: a caller's 16 calls a second must all ring the callee
    conf = tmp_path / "spitwall.toml"
    conf.write_text(
        "[reputation.policy]\n"
        + "".join(f'action_{band} = "forward_tagged"\n' for band in ("likely", "spam", "certain"))
    )
    sp = await ServeProcess.start(
        "--config",
        str(conf),
        *two_workers(port, f"127.0.0.1:{http_port}", data),
        "--next-hop",
        f"sip:127.0.0.1:{uas_port}",
        timeout=60.0,
    )
    try:
        await wait_ready(sp, 2, timeout=60.0)
        secret_file = challenge_secret_path(load_config(None, {"data_dir": str(data)}))
        yield Bed(
            sp,
            f"127.0.0.1:{port}",
            ("127.0.0.1", http_port),
            uas_port,
            data,
            secret_file.read_text().strip().encode(),
        )
    finally:
        assert await sp.stop() == 0, "".join(sp.lines[-40:])


def _report_pass(bed: Bed, caller: str, until: float) -> dict[str, object]:
    """What the challenge UA posts after a caller keyed the right digit."""
    token = report_token(load_config(None, {}).challenge, bed.secret)
    body = {
        "version": 1,
        "event_id": secrets.token_hex(8),
        "kind": "challenge",
        "outcome": "passed",
        "caller": caller,
        "callee": f"+{CALLEE}",
        "call_id": "diverted-" + secrets.token_hex(4),
        "time": time.time(),
        "remember_until": until,
    }
    req = urllib.request.Request(
        f"http://{bed.http[0]}:{bed.http[1]}/api/v1/internal/challenge-outcome",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as r:
        return dict(json.loads(r.read()))


async def _calls(bed: Bed, caller: str, header: str = "") -> list[str]:
    """CALLS calls from ``caller``, one socket each; the score header of each INVITE the
    callee received."""
    trace = bed.data.parent / f"uas-{secrets.token_hex(4)}.log"
    uas = await Sipp.start(
        HERE / "uas_trace.xml",
        port=bed.uas_port,
        calls=CALLS,
        extra=("-trace_msg", "-message_file", str(trace)),
    )
    await asyncio.sleep(0.2)  # SIPp binds its port
    uac_scenario = scenario(
        "../integration/uac_expect.xml",
        caller=caller,
        code=200,
        identity_header=header,
        after=ACK_BYE.replace("@CALLER@", caller),
    )
    uac = await Sipp.start(
        uac_scenario,
        port=free_port(),
        target=bed.proxy,
        service=CALLEE,
        calls=CALLS,
        rate=50,
        transport="un",
        extra=("-max_socket", "100"),
    )
    res = await uac.wait(60)
    assert res.ok, res.why
    got = await uas.wait(30)
    assert got.ok, got.why
    invites = trace.read_text(errors="replace").split("INVITE sip:")[1:]
    assert len(invites) == CALLS
    return [_score_header(invite) for invite in invites]


def _score_header(message: str) -> str:
    for line in message.splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() == "x-spitwall-score":
            return value.strip()
    return ""


def _both_workers_screened(bed: Bed) -> None:
    """The calls were spread: each worker's own INVITE counter moved."""
    counts = per_worker(bed.data / "metrics", "INVITE")
    assert len(counts) == 2 and all(n > 0 for n in counts.values()), counts


async def test_a_pass_reported_to_worker_0_is_honoured_by_every_worker(bed: Bed) -> None:
    caller = "+12155550142"
    assert _report_pass(bed, caller, time.time() + 600)["status"] in ("recorded", "unknown_call")
    await asyncio.sleep(2.0)  # other workers follow the change feed every 0.2 s (loaded box)
    labels = await _calls(bed, caller)
    assert labels == ["0;label=challenge-remembered"] * CALLS, labels
    _both_workers_screened(bed)
    # someone else calling the same callee is screened as usual
    others = await _calls(bed, "+12155550143")
    assert "0;label=challenge-remembered" not in others, others


async def test_a_pass_token_opens_one_call_across_workers(bed: Bed) -> None:
    caller = "+12155550144"
    token = mint(bed.secret, caller, CALLEE, time.time(), 30.0)
    labels = await _calls(bed, caller, header=f"X-Spitwall-Pass: {token}")
    assert labels.count("0;label=challenge-passed") == 1, labels
    _both_workers_screened(bed)


async def test_housekeeping_prunes_the_shared_file(tmp_path: Path) -> None:
    """Worker 0's hourly ``Store.maintain`` (here without the hour) drops spent ids and
    change-feed rows nobody needs any more."""
    from reputation.config import StoreConfig
    from reputation.store import FEED_RETENTION, Store
    from spitwall.compose import _maintenance

    store = Store.open(tmp_path / "r.sqlite3", StoreConfig(batch_window=0.005))
    try:
        now = time.time()
        assert await store.spend_pass("old", now - 3600, now - 7200)
        await store.write(
            lambda db: db.execute(
                "UPDATE changes SET time = ? WHERE tbl = 'spent_passes'",
                [now - FEED_RETENTION - 10],
            )
        )

        def rows(db: Any) -> tuple[int, int]:
            spent = db.execute("SELECT count(*) FROM spent_passes").fetchone()[0]
            changes = db.execute("SELECT count(*) FROM changes").fetchone()[0]
            return int(spent), int(changes)

        assert await store.read(rows) == (1, 1)
        task = asyncio.create_task(_maintenance(store, 0.0))
        try:
            for _ in range(200):
                if await store.read(rows) == (0, 0):
                    break
                await asyncio.sleep(0)
            assert await store.read(rows) == (0, 0)
        finally:
            task.cancel()
    finally:
        store.close()


def test_processes_starting_together_share_one_secret(tmp_path: Path) -> None:
    """The pass-token secret appears whole or not at all: a worker that read it between
    another's create and write saw an empty file and failed to start."""
    import multiprocessing

    from challenge.passtoken import load_or_create_secret

    for n in range(5):
        path = tmp_path / f"challenge-{n}.secret"
        with multiprocessing.get_context("fork").Pool(8) as pool:
            got = pool.map(load_or_create_secret, [path] * 32)
        assert len(set(got)) == 1 and len(got[0]) == 64, got
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
