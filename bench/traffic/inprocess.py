"""The fast evaluator: the model's calls through the production ``CallScreener`` in one
process, on virtual time.

Theory of operation. One event queue ordered by virtual time holds the calls' INVITEs,
the subscribers' outbound calls, and every follow-up a screened call produces. Each INVITE
is built as the proxy would build it (``InviteFacts``, with the originating carrier's real
Identity header), screened by ``CallScreener`` with a real ``Verifier`` (x5u fetched once
per carrier over HTTPS from 127.0.0.1, then cached), a real ``ScoringEngine`` and a real
SQLite ``Store`` holding one user per subscriber. What the far ends do then depends on the
decision, exactly as the proxy core and the challenge UA would report it:

==================  ===========================================================================
decision            outcomes fed back (virtual time)
==================  ===========================================================================
forward / tagged    the callee's behaviour: 200 then BYE after the talk time, 607, or the
                    caller's CANCEL (one-ring diallers after 1-3 s, others when nobody answers)
challenge           the IVR answers (200); humans pass (challenge_passed, then talk) or hang
                    up; robocalls hang up (challenge_hangup); wanted bots time out
voicemail           the IVR answers; a message is left (voicemail_left) or not
reject              nothing: the caller got our final response
==================  ===========================================================================

Final responses, CANCELs and BYEs go through ``PipelineObserver`` (as the proxy core
reports them); challenge and voicemail results through ``Store.record_outcome`` (as the
HTTP API does for the challenge UA). Virtual time makes three days of traffic take
seconds; decision latency is measured in real time around each ``screen`` call.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import itertools
import logging
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from attestation.certs import CertificateService
from attestation.verify import Verifier
from proxy.config import TrunkConfig
from proxy.pipeline import CallScreener, DivertTargets, PipelineObserver, describe
from proxy.prefixes import PrefixTable, compile_trunk_names
from proxy.screen import InviteFacts, Outcome
from reputation.config import ReputationConfig, StoreConfig
from reputation.feedback import OutcomeKind
from reputation.lists import (
    Invalid,
    ListKind,
    ListScope,
    ListSource,
    NewListEntry,
    parse_pattern,
)
from reputation.store import Store

from .carriers import CarrierPki, start_pki
from .metrics import CallResult
from .model import CallSpec, Traffic

IVR = "sip:challenge@127.0.0.1:5070"
Event = Callable[[], Awaitable[None] | None]


def invite_facts(
    spec: CallSpec, identity: str | None, trunks: PrefixTable[str] | None = None
) -> InviteFacts:
    """What the proxy core extracts from this call's INVITE (``proxy.build.invite_facts``):
    the trunk comes from the ``[proxy.trunks]`` table, looked up as the proxy does."""
    ruri = f"sip:+{spec.callee}@spitwall.invalid;user=phone"
    return InviteFacts(
        call_id=spec.call_id,
        request_uri=ruri,
        from_uri=f"sip:+{spec.caller}@{spec.carrier}.example.net;user=phone",
        to_uri=ruri,
        time=spec.time,
        source_ip=spec.source_ip,
        source_port=5060,
        transport="udp",
        identity=(identity,) if identity else (),
        caller_user=f"+{spec.caller}",
        callee_user=f"+{spec.callee}",
        trunk=trunks.lookup(spec.source_ip) if trunks else None,
    )


def decision_of(screener: CallScreener, call_id: str) -> tuple[str, str, float, tuple[str, ...]]:
    """(policy decision, proxy action, score, top positive reasons) of a screened call."""
    item = screener.recent(call_id)
    assert item is not None
    d = describe(item)
    dec = item.decision
    if item.verdict.reject:
        decision = "reject"
    elif dec is None:
        decision = "forward"
    else:
        decision = (dec.intended or dec.action).value
    reasons = tuple(r["signal"] for r in d["reasons"] if r["weight"] > 0)[:3]
    return decision, d["action"], float(d["score"] or 0.0), reasons


class InProcessRun:
    """One scenario through one fresh spitwall pipeline."""

    def __init__(
        self,
        traffic: Traffic,
        workdir: Path,
        reputation: ReputationConfig | None = None,
        trunks: Mapping[str, TrunkConfig] | None = None,
    ) -> None:
        self.traffic = traffic
        self.trunks = compile_trunk_names(trunks or {})
        self.workdir = workdir
        self.reputation = reputation or ReputationConfig()
        self.queue: list[tuple[float, int, Event]] = []
        self._order = itertools.count()
        self.results: list[CallResult] = []
        self.user_ids: dict[int, int] = {}
        self.pki: CarrierPki | None = None
        self.store: Store | None = None
        self.screener: CallScreener | None = None
        self.observer: PipelineObserver | None = None
        self.certs: CertificateService | None = None

    def at(self, t: float, fn: Event) -> None:
        heapq.heappush(self.queue, (t, next(self._order), fn))

    async def setup(self) -> None:
        tr = self.traffic
        start = tr.scenario.start
        self.pki = start_pki(tr.carriers, self.workdir / "pki", now=start - 3600)
        store_cfg = dataclasses.replace(self.reputation.store, batch_window=0.2, path="")
        self.store = Store.open(self.workdir / "reputation.sqlite3", store_cfg)
        for i, tn in enumerate(tr.subscribers):
            made = await self.store.add_user(f"sub{i}", tns=[f"+{tn}"], now=start - 86400)
            assert not hasattr(made, "field"), made
            user, _ = made  # type: ignore[misc]
            self.user_ids[i] = user.id
        if tr.global_allow:
            entries = []
            for n in tr.global_allow:
                pat = parse_pattern(f"+{n}")
                assert not isinstance(pat, Invalid), pat
                entries.append(
                    NewListEntry(
                        ListScope.GLOBAL,
                        None,
                        ListKind.ALLOW,
                        pat,
                        note="alert sender",
                        source=ListSource.ADMIN,
                    )
                )
            await self.store.add_entries(entries, now=start - 86400)
        att = self.pki.attestation()
        self.certs = CertificateService(att)
        from reputation.engine import ScoringEngine

        engine = ScoringEngine(
            self.reputation,
            lists=self.store.lists,
            book=self.store.book,
            learned=self.store.learned,
        )
        self.screener = CallScreener(
            engine=engine,
            verifier=Verifier(att, self.certs),
            store=self.store,
            targets=DivertTargets(challenge=IVR, voicemail=IVR),
        )
        self.observer = PipelineObserver(self.screener)

    async def close(self) -> None:
        if self.certs is not None:
            await self.certs.close()
        if self.store is not None:
            await self.store.aclose()
        if self.pki is not None:
            self.pki.close()

    async def run(self) -> list[CallResult]:
        logging.getLogger("spitwall.pipeline").setLevel(logging.WARNING)
        await self.setup()
        try:
            tr = self.traffic
            if tr.scenario.outbound_learning:
                for o in tr.outbound:
                    self.at(o.time, self._outbound(o.subscriber, o.tn, o.time))
            for spec in tr.calls:
                self.at(spec.time, self._invite(spec))
            while self.queue:
                _, _, fn = heapq.heappop(self.queue)
                r = fn()
                if r is not None:
                    await r
        finally:
            await self.close()
        return self.results

    # -- events ----------------------------------------------------------------------------

    def _outbound(self, sub: int, tn: str, t: float) -> Event:
        def fn() -> None:
            assert self.store is not None
            self.store.feedback.learn_outbound(self.user_ids[sub], tn, t)

        return fn

    def _invite(self, spec: CallSpec) -> Event:
        async def fn() -> None:
            assert self.screener is not None and self.pki is not None
            facts = invite_facts(spec, self.pki.identity(spec), self.trunks)
            started = time.perf_counter()
            await self.screener.screen(facts)
            ms = (time.perf_counter() - started) * 1000.0
            decision, action, score, reasons = decision_of(self.screener, spec.call_id)
            item = self.screener.recent(spec.call_id)
            explain: tuple[tuple[str, float, bool, str], ...] = ()
            if item is not None and item.decision is not None:
                explain = tuple(
                    (r.signal, round(r.weight, 3), r.infra, r.detail)
                    for r in item.decision.score.reasons
                )
            self.results.append(
                CallResult(
                    id=spec.id,
                    kind=spec.kind,
                    decision=decision,
                    score=score,
                    latency_ms=ms,
                    campaign=spec.campaign,
                    seq=spec.seq,
                    cli_policy=spec.cli_policy,
                    level=spec.level,
                    action=action,
                    reasons=reasons,
                    explain=explain,
                )
            )
            self._follow_up(spec, action)

        return fn

    def _observe(self, kind: str, call_id: str, t: float, **kw: object) -> Event:
        def fn() -> None:
            assert self.observer is not None
            self.observer.observe(Outcome(kind, call_id, t, **kw))  # type: ignore[arg-type]

        return fn

    def _report(self, call_id: str, kind: OutcomeKind, t: float) -> Event:
        async def fn() -> None:
            assert self.store is not None
            await self.store.record_outcome(call_id, kind, None, now=t)

        return fn

    def _follow_up(self, spec: CallSpec, action: str) -> None:
        """Schedule what happens after the decision (see the module docstring)."""
        b, t, cid = spec.behaviour, spec.time, spec.call_id
        if action == "reject":
            return
        if action in ("challenge", "voicemail"):
            self.at(t + 1, self._observe("final", cid, t + 1, code=200))
            if action == "challenge":
                if spec.kind == "human" and b.passes_challenge:
                    self.at(t + 9, self._report(cid, OutcomeKind.CHALLENGE_PASSED, t + 9))
                    end, how = t + 9 + (b.talk if b.answer else 20.0), None
                elif spec.kind == "wanted":
                    end, how = t + 16, OutcomeKind.CHALLENGE_TIMEOUT
                else:
                    end = t + 1 + (2.0 + (spec.id % 30) / 10.0 if spec.kind == "robocall" else 5.0)
                    how = OutcomeKind.CHALLENGE_HANGUP
            else:
                leaves = spec.kind != "robocall" and b.leaves_voicemail
                end = t + (31.0 if leaves else 4.0)
                how = OutcomeKind.VOICEMAIL_LEFT if leaves else OutcomeKind.VOICEMAIL_NONE
            if how is not None:
                self.at(end, self._report(cid, how, end))
            self.at(end, self._observe("bye", cid, end, duration=end - t - 1, by="caller"))
            return
        if b.one_ring:
            self.at(t + b.ring, self._observe("cancel", cid, t + b.ring))
            self.at(t + b.ring + 0.05, self._observe("final", cid, t + b.ring + 0.05, code=487))
        elif b.unwanted_607:
            self.at(t + 4, self._observe("final", cid, t + 4, code=607))
        elif b.answer:
            ans, end = t + b.ring, t + b.ring + b.talk
            self.at(ans, self._observe("final", cid, ans, code=200))
            by = "callee" if spec.kind == "robocall" else "caller"
            self.at(end, self._observe("bye", cid, end, duration=b.talk, by=by))
        else:
            self.at(t + b.ring, self._observe("cancel", cid, t + b.ring))
            self.at(t + b.ring + 0.05, self._observe("final", cid, t + b.ring + 0.05, code=487))


async def evaluate(
    traffic: Traffic,
    reputation: ReputationConfig | None = None,
    workdir: Path | None = None,
    trunks: Mapping[str, TrunkConfig] | None = None,
) -> list[CallResult]:
    """Screen ``traffic`` in-process; a temporary directory is used when none is given.
    ``trunks`` is the ``[proxy.trunks]`` table (name → sources), matched as the proxy does."""
    if workdir is not None:
        return await InProcessRun(traffic, workdir, reputation, trunks).run()
    with tempfile.TemporaryDirectory(prefix="spitwall-traffic-") as d:
        return await InProcessRun(traffic, Path(d), reputation, trunks).run()


def run(
    traffic: Traffic,
    reputation: ReputationConfig | None = None,
    trunks: Mapping[str, TrunkConfig] | None = None,
) -> list[CallResult]:
    return asyncio.run(evaluate(traffic, reputation, trunks=trunks))


__all__ = ["InProcessRun", "StoreConfig", "decision_of", "evaluate", "invite_facts", "run"]
