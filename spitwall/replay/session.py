"""What spitwall would have done with each call of a capture: the production pipeline,
fed from packets instead of sockets.

Theory of operation. Messages come in packet-time order. Each *new* INVITE (no To tag;
the first one per Call-ID, so retransmissions and the copy a capture taken on a proxy
holds of the forwarded INVITE are not screened twice) becomes ``InviteFacts`` through the
proxy's own ``proxy.build.invite_facts`` and goes through the production
:class:`~proxy.pipeline.CallScreener`: STIR/SHAKEN verification with the packet time as
the verifier's clock, scoring, policy. What followed in the capture is fed back exactly as
the proxy core would report it (:class:`~proxy.pipeline.PipelineObserver`): the first
final response to the INVITE, a CANCEL, a BYE with the talk time since the 2xx. So the
call patterns (fan-out, answer ratio, short calls, 607s) learn from the capture in order,
and call N is scored with what calls 1 … N-1 taught.

The rest of the live path that changes decisions is rebuilt from the same config
(:mod:`.wiring` lists it): the ``[proxy.trunks]`` table names each INVITE's trunk, the
proxy's rate limiter sees every captured request (a shed INVITE is reported ``shed`` and
never screened), INVITEs from STI-AS signing trunks are outbound calls (signed, not
scored), and challenge pass tokens are checked when the secret file is there.

Nothing touches the deployment's data: the reputation store is a fresh SQLite file in a
temporary directory (optionally a copy of a production store, for its users, lists and
learned numbers), and no attestation log is written.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from attestation.verify import CertificateSource, Verifier
from proxy.build import invite_facts, strip_divert_params
from proxy.pipeline import CallScreener, DivertTargets, PipelineObserver, describe
from proxy.prefixes import PrefixTable, compile_trunk_names
from proxy.ratelimit import RateLimiter, limiter_for
from proxy.ratelimit import Verdict as RateVerdict
from proxy.screen import InviteFacts, Outcome
from proxy.signing import NotSigned, Signed
from proxy.sip import Request, Response, SipParseError
from proxy.transport.base import Peer
from reputation.engine import ScoringEngine
from reputation.store import Store

from ..config import SpitwallConfig
from .capture import Problem
from .streams import SipItem
from .wiring import RecordingSigning, outbound_signing, pass_check

DIVERT_PLACEHOLDER = "sip:challenge@replay.invalid"


@dataclass(slots=True)
class CallReport:
    """One screened call and what happened to it in the capture."""

    index: int
    """Packet of the INVITE."""
    time: float
    call_id: str
    caller: str | None
    callee: str
    source: str
    transport: str
    verstat: str
    attest: str | None
    identity_reason: str | None
    score: float | None
    band: str
    decision: str
    """What the policy chose (``challenge``, ``reject`` …)."""
    action: str
    """What the proxy would have done with this config (a divert with no challenge UA
    configured is forwarded tagged; monitor mode forwards everything)."""
    code: int | None
    reasons: list[dict[str, Any]]
    latency_ms: float
    invites: int = 1
    final_code: int | None = None
    answered_at: float | None = None
    duration: float | None = None
    cancelled: bool = False
    ended_by: str | None = None
    from_tag: str | None = None
    trunk: str | None = None
    """The ``[proxy.trunks]`` entry the source address belongs to."""
    trunk_kind: str | None = None
    """That trunk's ``kind`` (``carrier`` / ``pbx``)."""
    signing_trunk: str | None = None
    """For an outbound call: the ``[attestation.signing_trunks]`` entry it came from."""
    screened: bool = True
    """False for a call the proxy would not have screened (shed by the rate limiter): its
    outcome in the capture is reported but teaches the engine nothing."""

    def to_json(self, reasons: int = 5) -> dict[str, Any]:
        return {
            "type": "call",
            "packet": self.index,
            "time": round(self.time, 6),
            "call_id": self.call_id,
            "caller": self.caller,
            "callee": self.callee,
            "source": self.source,
            "transport": self.transport,
            "trunk": self.trunk,
            "trunk_kind": self.trunk_kind,
            "signing_trunk": self.signing_trunk,
            "verstat": self.verstat,
            "attest": self.attest,
            "identity_reason": self.identity_reason,
            "score": self.score,
            "band": self.band,
            "decision": self.decision,
            "action": self.action,
            "code": self.code,
            "reasons": self.reasons[:reasons],
            "outcome": self.outcome,
            "final_code": self.final_code,
            "duration": None if self.duration is None else round(self.duration, 3),
            "ended_by": self.ended_by,
            "latency_ms": round(self.latency_ms, 3),
        }

    @property
    def outcome(self) -> str:
        """What happened in the capture: answered, cancelled, failed:<code>, or unknown."""
        if self.answered_at is not None:
            return "answered"
        if self.cancelled:
            return "cancelled"
        if self.final_code is not None:
            return f"failed:{self.final_code}"
        return "unknown"


@dataclass(slots=True)
class ReplayResult:
    calls: list[CallReport] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    messages: int = 0
    retransmissions: int = 0
    orphans: int = 0
    """Responses, BYEs and CANCELs for calls whose INVITE is not in the capture."""
    shed_requests: int = 0
    """Requests the proxy's rate limiter would have dropped (or answered 503)."""
    unchecked_passes: int = 0
    """INVITEs carrying a challenge pass token that could not be checked (no secret file):
    screened like any call, where the proxy would have let them through."""


def copy_store(src: Path, dst: Path) -> None:
    """A consistent copy of a live store (SQLite online backup), read-only on the source."""
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
    try:
        target = sqlite3.connect(dst)
        try:
            source.backup(target)
        finally:
            target.close()
    finally:
        source.close()


class ReplaySession:
    """The production screener on a private store, driven by captured messages.

    Use as ``async with ReplaySession(cfg, certs) as s: result = await s.run(items)``.
    ``certs=None`` turns verification off (every call ``No-TN-Validation``)."""

    def __init__(
        self,
        cfg: SpitwallConfig,
        certs: CertificateSource | None,
        *,
        seed_store: Path | None = None,
    ) -> None:
        self.cfg = cfg
        self.certs = certs
        self.seed_store = seed_store
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.store: Store | None = None
        self.screener: CallScreener | None = None
        self.observer: PipelineObserver | None = None
        self.result = ReplayResult()
        self._calls: dict[str, CallReport] = {}
        self.trunks: PrefixTable[str] = compile_trunk_names(cfg.proxy.trunks)
        self.limiter: RateLimiter = limiter_for(cfg.proxy)
        self.signing: RecordingSigning | None = None
        self._points: set[str] = set()
        """Addresses screened INVITEs were sent to: the screening point itself. Requests
        they send (forwarded copies in a capture taken on the proxy) are not counted
        against them by the rate limiter: the proxy never receives its own sends."""

    async def __aenter__(self) -> ReplaySession:
        self._tmp = tempfile.TemporaryDirectory(prefix="spitwall-replay-")
        path = Path(self._tmp.name) / "reputation.sqlite3"
        if self.seed_store is not None:
            copy_store(self.seed_store, path)
        store_cfg = replace(self.cfg.reputation.store, path="", check_on_open="none")
        self.store = Store.open(path, store_cfg)
        engine = ScoringEngine(
            self.cfg.reputation,
            lists=self.store.lists,
            book=self.store.book,
            learned=self.store.learned,
        )
        verifier = None
        if self.certs is not None and self.cfg.attestation.enabled:
            verifier = Verifier(self.cfg.attestation, self.certs)
        targets = DivertTargets()
        if self.cfg.challenge.enabled:
            targets = DivertTargets(challenge=DIVERT_PLACEHOLDER, voicemail=DIVERT_PLACEHOLDER)
        self.signing = outbound_signing(self.cfg.attestation)
        passes, _ = pass_check(self.cfg)
        self.screener = CallScreener(
            engine=engine,
            verifier=verifier,
            store=self.store,
            targets=targets,
            passes=passes,
            reason_form=self.cfg.attestation.reason_form,
            signing=self.signing,
        )
        self.observer = PipelineObserver(self.screener)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.store is not None:
            self.store.close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp.name, ignore_errors=True)
            self._tmp = None

    async def run(self, items: Iterable[SipItem | Problem]) -> ReplayResult:
        """Screen every item (already in time order); problems are passed through."""
        for item in items:
            if isinstance(item, Problem):
                self.result.problems.append(item)
                continue
            self.result.messages += 1
            try:
                await self.feed(item)
            except SipParseError as exc:
                self.result.problems.append(
                    Problem(item.index, "sip_parse_error", f"{exc.status} {exc.reason}")
                )
            except Exception as exc:  # bad input is normal input: name it, keep going
                self.result.problems.append(
                    Problem(item.index, "screening_error", f"{type(exc).__name__}: {exc}")
                )
        return self.result

    async def feed(self, item: SipItem) -> None:
        msg = item.message
        if isinstance(msg, Request):
            shed = self._shed(item)
            if msg.method == "INVITE":
                await self._invite(item, msg, shed)
            elif msg.method in ("CANCEL", "BYE") and not shed:
                self._ending(item, msg)
        elif isinstance(msg, Response):
            self._response(item, msg)

    def _shed(self, item: SipItem) -> bool:
        """Whether the proxy's rate limiter would have dropped this request unread."""
        if item.src in self._points:
            return False
        if self.limiter.check(item.src, item.time) is RateVerdict.ALLOW:
            return False
        self.result.shed_requests += 1
        return True

    async def _invite(self, item: SipItem, req: Request, shed: bool) -> None:
        if req.to.tag:
            return  # re-INVITE inside a dialog: not screened by the proxy either
        call_id = req.call_id or ""
        known = self._calls.get(call_id)
        if known is not None and (known.screened or shed):
            known.invites += 1
            self.result.retransmissions += 1
            return
        if known is not None:  # shed before; this copy gets in and is screened
            self.result.calls.remove(known)
        self._points.add(item.dst)
        peer = Peer(item.transport, item.src, item.sport)
        clean = strip_divert_params(req.uri)  # as the core does before screening
        if clean is not req.uri:
            req = req.with_uri(clean)
        facts = invite_facts(req, peer, item.time, self.trunks)
        report = self._shed_report(item, facts) if shed else await self._screen(item, facts)
        if report is None:
            return
        report.from_tag = req.from_.tag
        report.trunk = facts.trunk
        if facts.trunk is not None:
            report.trunk_kind = self.cfg.proxy.trunks[facts.trunk].kind
        self._calls[call_id] = report
        self.result.calls.append(report)

    def _shed_report(self, item: SipItem, facts: InviteFacts) -> CallReport:
        budget = self.limiter.budget(item.src)
        rl = self.cfg.proxy.rate_limit
        who, limit = budget if budget is not None else (item.src, rl.max_requests)
        why = f"{who} over {limit} requests in {rl.window:g} s; not screened"
        return self._report(
            item,
            facts,
            decision="shed",
            action="shed",
            code=503 if rl.action == "503" else None,
            reasons=[{"signal": "proxy.rate_limit", "weight": 0.0, "detail": why}],
            screened=False,
        )

    async def _screen(self, item: SipItem, facts: InviteFacts) -> CallReport | None:
        assert self.screener is not None
        if self.signing is not None:
            self.signing.last = None
        if facts.pass_token and self.screener.passes is None:
            self.result.unchecked_passes += 1
        started = time.perf_counter()
        action = await self.screener.screen(facts)
        latency = (time.perf_counter() - started) * 1000.0
        outbound = self.signing.last if self.signing is not None else None
        if outbound is not None:
            return self._outbound_report(item, facts, outbound, latency)
        screened = self.screener.recent(facts.call_id)
        if screened is None:  # cannot happen with the production screener; stay honest
            self.result.problems.append(Problem(item.index, "not_screened", facts.call_id))
            return None
        d = describe(screened)
        decision = screened.decision
        reasons = d["reasons"]
        if decision is None:  # a challenge pass: forwarded without scoring
            reasons = [{"signal": action.note, "weight": 0.0, "detail": "pass token"}]
        report = self._report(
            item,
            facts,
            decision=(
                (decision.intended or decision.action).value if decision is not None else "forward"
            ),
            action=d["action"],
            code=d["code"],
            reasons=reasons,
            latency_ms=latency,
        )
        report.verstat, report.attest = d["verstat"], d["attest"]
        report.identity_reason, report.score = d["identity_reason"], d["score"]
        report.band = decision.band if decision is not None else ""
        if screened.verdict.reject and decision is not None:
            report.decision = "reject"
        return report

    def _outbound_report(
        self, item: SipItem, facts: InviteFacts, result: Signed | NotSigned, latency: float
    ) -> CallReport:
        """An INVITE from a signing trunk without Identity: signed (or not), never scored."""
        if isinstance(result, Signed):
            action, signal = "signed", "outbound.signed"
            detail = f"signing trunk {result.trunk}, attest {result.attest}"
        else:
            action, signal = "forward_unsigned", f"outbound.{result.reason}"
            detail = f"signing trunk {result.trunk}: {result.detail}"
        report = self._report(
            item,
            facts,
            decision="outbound",
            action=action,
            reasons=[{"signal": signal, "weight": 0.0, "detail": detail}],
            latency_ms=latency,
        )
        report.attest = result.attest if isinstance(result, Signed) else None
        report.signing_trunk = result.trunk
        return report

    @staticmethod
    def _report(
        item: SipItem,
        facts: InviteFacts,
        *,
        decision: str,
        action: str,
        reasons: list[dict[str, Any]],
        code: int | None = None,
        latency_ms: float = 0.0,
        screened: bool = True,
    ) -> CallReport:
        return CallReport(
            index=item.index,
            time=item.time,
            call_id=facts.call_id,
            caller=facts.caller_user,
            callee=facts.callee_user,
            source=Peer(item.transport, item.src, item.sport).hostport,
            transport=item.transport,
            verstat="",
            attest=None,
            identity_reason=None,
            score=None,
            band="",
            decision=decision,
            action=action,
            code=code,
            reasons=reasons,
            latency_ms=latency_ms,
            screened=screened,
        )

    def _ending(self, item: SipItem, req: Request) -> None:
        assert self.observer is not None
        call = self._calls.get(req.call_id or "")
        if call is None:
            self.result.orphans += 1
            return
        if req.method == "CANCEL":
            if not call.cancelled and call.answered_at is None:
                call.cancelled = True
                if call.screened:
                    self.observer.observe(Outcome("cancel", call.call_id, item.time))
            return
        if call.answered_at is None or call.duration is not None:
            return
        call.duration = max(0.0, item.time - call.answered_at)
        call.ended_by = "caller" if req.from_.tag == call.from_tag else "callee"
        if not call.screened:
            return
        self.observer.observe(
            Outcome(
                "bye",
                call.call_id,
                item.time,
                duration=call.duration,
                by="caller" if call.ended_by == "caller" else "callee",
            )
        )

    def _response(self, item: SipItem, resp: Response) -> None:
        assert self.observer is not None
        if resp.cseq.method != "INVITE" or resp.status < 200:
            return
        call = self._calls.get(resp.call_id or "")
        if call is None:
            self.result.orphans += 1
            return
        if call.final_code is not None:
            return
        call.final_code = resp.status
        if 200 <= resp.status < 300:
            call.answered_at = item.time
        if call.screened:
            self.observer.observe(Outcome("final", call.call_id, item.time, code=resp.status))
