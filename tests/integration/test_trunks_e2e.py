"""``[proxy.trunks]`` through the real proxy: SIPp caller on 127.0.0.1 → ``spitwall serve``
(composed as it composes itself) → SIPp callee. The caller's address is configured as a
carrier trunk, so the call's facts name the trunk, the call record keeps it, and the
scoring engine does not count the carrier's address as a caller (no volume key)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from spitwall.compose import Spitwall
from spitwall.config import load_config
from tests.integration.test_screening_e2e import CALLEE, HERE, _uac
from tests.sipp.harness import Sipp, free_port


@pytest.fixture
async def sw(tmp_path: Path) -> AsyncIterator[tuple[Spitwall, str, int, int]]:
    uas_port = free_port()
    cfg = load_config(
        None,
        {
            "data_dir": str(tmp_path / "data"),
            "proxy.listen": ["udp:127.0.0.1:0"],
            "proxy.default_next_hop": f"sip:127.0.0.1:{uas_port}",
            "proxy.timers.t1": 0.1,
            "proxy.timers.t2": 0.4,
            "proxy.timers.t4": 0.5,
            "proxy.trunks": {"upstream": {"sources": ["127.0.0.0/8"], "kind": "carrier"}},
            "http.listen": "",
        },
    )
    app = Spitwall(cfg)
    bound = await app.start(http=False)
    udp = next(b for b in bound if b.transport == "udp")
    assert app.store is not None
    made = await app.store.add_user("bob", "user", tns=[f"+{CALLEE}"])
    assert isinstance(made, tuple), made
    try:
        yield app, f"127.0.0.1:{udp.port}", uas_port, made[0].id
    finally:
        await app.stop(0.2)


async def test_call_from_trunk_address_names_the_trunk(
    sw: tuple[Spitwall, str, int, int], tmp_path: Path
) -> None:
    app, proxy, uas_port, user_id = sw
    uas = await Sipp.start(HERE / "uas_trace.xml", port=uas_port, calls=1)
    await asyncio.sleep(0.2)
    uac = await Sipp.start(
        _uac("+13125557788", 200, None), port=free_port(), target=proxy, service=CALLEE
    )
    assert (res := await uac.wait(30)).ok, res.why
    assert (got := await uas.wait(30)).ok, got.why
    assert app.screener is not None and app.store is not None
    screened = list(app.screener._recent.values())
    assert len(screened) == 1
    facts = screened[0].facts
    assert facts.trunk == "upstream" and facts.source_ip == "127.0.0.1"
    caller, _ = app.screener.engine.numbers(facts)
    assert app.screener.engine.keys_for(facts, caller).source_ip == ""
    assert app.screener.engine.keys_for(facts, caller).caller == "13125557788"
    await asyncio.sleep(0.2)  # the call record is written behind the call (batch window)
    rows = await app.store.calls_for_user(user_id)
    assert [(r.caller, r.trunk) for r in rows] == [("+13125557788", "upstream")], rows
