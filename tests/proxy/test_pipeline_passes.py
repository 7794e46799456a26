"""A caller who passed the challenge reaches the callee with what their call proved.

The bridged leg comes from spitwall's own UA with a one-time pass token and no Identity
header; the callee must still see the original INVITE's verstat, and a token the pass
check refuses must not open the door.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from attestation.model import IdentityInput, Verdict, Verstat
from proxy.pipeline import CallScreener, DivertTargets
from proxy.screen import Divert, Forward, InviteFacts
from reputation.config import ReputationConfig, StoreConfig
from reputation.engine import ScoringEngine
from reputation.store import Store
from spitwall.settings import build

CALLER, CALLEE = "+12156781234", "+12159876543"


class _Verifier:
    """Passes any request with an Identity header; no header → No-TN-Validation."""

    async def verify(self, inp: IdentityInput) -> Verdict:
        if inp.identity_headers:
            return Verdict(verstat=Verstat.PASSED, attest="B", origid="o-1", spc="SPC1")
        return Verdict(verstat=Verstat.NONE, reason="absent")


def _facts(call_id: str, identity: tuple[str, ...], token: str | None) -> InviteFacts:
    return InviteFacts(
        call_id=call_id,
        request_uri=f"sip:{CALLEE}@127.0.0.1",
        from_uri=f"sip:{CALLER}@192.0.2.10",
        to_uri=f"sip:{CALLEE}@127.0.0.1",
        time=time.time(),
        source_ip="192.0.2.10",
        source_port=5060,
        transport="udp",
        caller_user=CALLER,
        callee_user=CALLEE,
        identity=identity,
        pass_token=token,
    )


def _screener(accept: bool) -> CallScreener:
    every_band = {"action_ok": "challenge", "action_suspicious": "challenge"}
    cfg = build(ReputationConfig, {"policy": every_band})
    return CallScreener(
        engine=ScoringEngine(cfg),
        verifier=_Verifier(),  # type: ignore[arg-type]
        targets=DivertTargets(challenge="sip:challenge@127.0.0.1:5070"),
        passes=lambda token, caller, callee, now: accept and token == "good",
    )


async def test_bridged_leg_carries_the_original_verstat() -> None:
    s = _screener(accept=True)
    first = await s.screen(_facts("orig", ("token;info=<https://x/>",), None))
    assert isinstance(first, Divert)
    leg = await s.screen(_facts("leg", (), "good"))
    assert isinstance(leg, Forward)
    assert leg.verstat == Verstat.PASSED.value
    assert ("X-Spitwall-Score", "0;label=challenge-passed") in leg.headers


async def test_refused_token_is_screened_like_any_call() -> None:
    s = _screener(accept=False)
    await s.screen(_facts("orig", ("token;info=<https://x/>",), None))
    leg = await s.screen(dataclasses.replace(_facts("leg", (), "forged")))
    assert isinstance(leg, Divert)


async def test_callee_choice_of_voicemail_after_a_failed_challenge(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "reputation.sqlite3", StoreConfig(batch_window=0.005))
    try:
        made = await store.add_user("bob", tns=[CALLEE])
        assert isinstance(made, tuple), made
        user, _ = made
        s = _screener(accept=False)
        s.store = store
        plain = await s.screen(_facts("c1", (), None))
        assert isinstance(plain, Divert) and "sw-vm" not in plain.target
        for choice in (True, False):
            await store.update_settings(user.id, {"voicemail_on_fail": choice})
            action = await s.screen(_facts(f"c-{choice}", (), None))
            assert isinstance(action, Divert)
            assert action.target.endswith(f";sw-vm={int(choice)}"), action.target
    finally:
        store.close()
