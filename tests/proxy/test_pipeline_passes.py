"""A caller who passed the challenge reaches the callee with what their call proved.

The bridged leg comes from spitwall's own UA with a one-time pass token and no Identity
header; the callee must still see the original INVITE's verstat, and a token the pass
check refuses must not open the door.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

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


# -- several workers: passes and spent token ids shared through one SQLite file ------------
#
# Each worker process has its own Store (own writer thread, own memory) on the same file
# and its own CallScreener. Two of each on one file, in one loop, are the same arrangement.

SECRET = b"k" * 32
FAST = StoreConfig(batch_window=0.005)


def _worker(store: Store) -> CallScreener:
    """What the composition root builds per worker: a screener whose pass check spends the
    token's id in the shared store (compose._PassCheck)."""
    from challenge.passtoken import PassVerifier
    from spitwall.compose import _PassCheck

    s = _screener(accept=False)
    s.store = store
    s.passes = _PassCheck(PassVerifier(SECRET, shared=store.spend_pass))
    return s


@dataclass
class Pair:
    """Two workers' stores on one file, and their screeners."""

    a: Store
    b: Store
    wa: CallScreener
    wb: CallScreener
    path: Path


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    path = tmp_path / "reputation.sqlite3"
    a, b = Store.open(path, FAST), Store.open(path, FAST)
    try:
        yield Pair(a, b, _worker(a), _worker(b), path)
    finally:
        a.close()
        b.close()


def _token(now: float, jti: str | None = None) -> str:
    from challenge.passtoken import mint

    return mint(SECRET, CALLER, CALLEE, now, 30.0, jti=jti)


def _label(action: object) -> str | None:
    if not isinstance(action, Forward):
        return None
    return dict(action.headers).get("X-Spitwall-Score")


async def test_a_pass_remembered_by_one_worker_is_honoured_by_another(pair: Pair) -> None:
    a, b, wa, wb = pair.a, pair.b, pair.wa, pair.wb
    # worker A hears the UA's report (the API lives there)
    wa.remember_pass(CALLER, CALLEE, time.time() + 3600)
    assert _label(await wa.screen(_facts("a1", (), None))) == "0;label=challenge-remembered"
    # worker B reads memory only on the call path: not yet seen ...
    assert isinstance(await wb.screen(_facts("b1", (), None)), Divert)
    await a.write(_nothing)  # queued after the pass: A's pass is committed now
    assert await b.sync() >= 1  # ... until its change-feed sync (follow() runs it)
    assert _label(await wb.screen(_facts("b2", (), None))) == "0;label=challenge-remembered"
    # another pair is not covered; an expired pass is not honoured
    assert not wb.passes_remembered("15550000000", CALLEE.lstrip("+"), time.time())
    wa.remember_pass("+15550000000", CALLEE, time.time() - 1)
    await a.write(_nothing)
    await b.sync()
    assert not wb.passes_remembered("15550000000", CALLEE.lstrip("+"), time.time())
    # a worker started later (or restarted) loads the pass from the file
    c = Store.open(pair.path, FAST)
    try:
        assert c.pass_remembered(CALLER.lstrip("+"), CALLEE.lstrip("+"), time.time())
    finally:
        c.close()


async def test_a_token_spent_in_one_worker_is_refused_by_another(pair: Pair) -> None:
    await pair.wa.screen(_facts("orig", ("token;info=<https://x/>",), None))  # diverted
    token = _token(time.time())
    leg = await pair.wa.screen(_facts("leg-a", (), token))
    assert _label(leg) == "0;label=challenge-passed"
    # no sync in between: the file refuses the second spend
    assert isinstance(await pair.wb.screen(_facts("leg-b", (), token)), Divert)
    await pair.b.sync()  # after a sync B knows it from memory
    jti = _claims(token).jti
    assert pair.b.passes.is_spent(jti)
    assert not await pair.b.spend_pass(jti, time.time() + 30)


async def test_the_same_token_at_two_workers_at_once_opens_one_call(pair: Pair) -> None:
    for n in range(20):
        token = _token(time.time())
        got = await asyncio.gather(
            pair.wa.screen(_facts(f"a{n}", (), token)), pair.wb.screen(_facts(f"b{n}", (), token))
        )
        passed = [x for x in got if _label(x) == "0;label=challenge-passed"]
        assert len(passed) == 1, got


async def test_a_token_whose_spend_cannot_be_recorded_is_refused(tmp_path: Path) -> None:
    from challenge.passtoken import PassError, PassVerifier

    store = Store.open(tmp_path / "reputation.sqlite3", FAST)
    store.close()  # the writer is gone: the spend cannot be recorded anywhere
    v = PassVerifier(SECRET, shared=store.spend_pass)
    assert await v.acheck(_token(time.time()), CALLER, CALLEE, time.time()) is (
        PassError.UNRECORDED
    )


async def test_maintain_forgets_passes_and_ids_that_no_longer_matter(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "reputation.sqlite3", FAST)
    try:
        now = time.time()
        await asyncio.wrap_future(store.remember_pass("1", "2", now - 3600, now=now - 7200))
        assert await store.spend_pass("old", now - 3600, now - 7200)
        assert await store.spend_pass("new", now + 30, now)
        await store.maintain(now)
        assert await store.read(_count("spent_passes")) == 1
        assert await store.read(_count("challenge_passes")) == 0
        assert store.passes.is_spent("new") and not store.passes.is_spent("old")
    finally:
        store.close()


def _nothing(db: Any) -> None:
    return None


def _count(table: str) -> Callable[[Any], int]:
    return lambda db: int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def _claims(token: str) -> Any:
    from challenge.passtoken import verify

    return verify(SECRET, token, time.time())


async def test_the_bridged_leg_at_another_worker_carries_the_original_verstat(
    pair: Pair,
) -> None:
    # the caller's signed INVITE reaches worker A and is diverted to the challenge UA
    orig = await pair.wa.screen(_facts("orig", ("token;info=<https://x/>",), None))
    assert isinstance(orig, Divert)
    await pair.a.write(_nothing)
    await pair.b.sync()
    # the UA's bridged leg (no Identity, a pass token) reaches worker B
    leg = await pair.wb.screen(_facts("leg", (), _token(time.time())))
    assert isinstance(leg, Forward) and _label(leg) == "0;label=challenge-passed"
    assert leg.verstat == Verstat.PASSED.value
