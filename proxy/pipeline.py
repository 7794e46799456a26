"""The call pipeline: verify → score → decide → record, behind the proxy's Screener seam.

Theory of operation. The proxy core calls :meth:`CallScreener.screen` once for each new
dialog-creating INVITE (``proxy.screen`` explains the seam). This module turns the plain
:class:`~proxy.screen.InviteFacts` into the attestation package's ``IdentityInput`` and the
reputation package's ``CallFacts``, runs the STIR/SHAKEN verifier, the scoring engine and
the policy, and maps the resulting ``Decision`` to a proxy ``Action``:

======================  =====================================================================
decision                action
======================  =====================================================================
verification fails and  ``Reject`` with the RFC 8224 code (403/428/433/436/437/438) and a
its class is "reject"   ``Reason`` header — configured per failure class
forward / tagged        ``Forward`` with ``verstat`` on the PAI/From URI, the score tag header
                        and, after a failed verification, ``Reason`` (continue-with-reason)
challenge / voicemail   ``Divert`` to the challenge UA with ``sw-mode`` set; when no UA is
                        configured the call is forwarded tagged instead (never drop a call
                        that might be wanted because a component is off) — unless the
                        callee blocked the number: then ``user_block_code`` (607)
reject                  ``Reject`` with 603/607/608, ``Reason`` and for 608 ``Call-Info``
======================  =====================================================================

An INVITE from a configured customer trunk that carries no Identity header is an outbound
call: :mod:`proxy.signing` signs it (STI-AS) and it is forwarded with the Identity header
added, recorded in the attestation log as a ``signing`` record and neither verified nor
scored (it leaves the provider; it is not inbound spam).

A call that carries a valid one-time pass token (minted by the challenge UA after the caller
passed) is forwarded without a second screening, and for ``challenge.pass_remember``
seconds afterwards the same caller reaches the same callee unchallenged. With a store both
facts are shared by every worker process: a remembered pass is written to the store (other
workers read it from memory after their next change-feed sync), and the pass check may
await the store's once-only spend of the token's id (``PassCheck`` may be async). Every screened
call is then recorded twice, off the event loop: in the reputation store (the subscriber's
call history and the counters that feed the next call's score) and in the tamper-evident
attestation log (verification and decision in one record). Outcomes reported by the core
(:class:`PipelineObserver`) feed both the engine's call patterns and the store's feedback.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

from attestation.audit import AuditEntry, AuditLog, RecordKind
from attestation.model import Verdict, Verstat
from attestation.verify import Verifier, reason_header
from reputation.engine import ScoringEngine
from reputation.model import ActionKind, CallFacts, Decision, Score
from reputation.policy import REASON_PHRASES, tag_header
from reputation.store import Store

from .screen import Action, Divert, Forward, InviteFacts, Outcome, Reject
from .signing import NotSigned, OutboundSigning, Signed

log = logging.getLogger("spitwall.pipeline")

DIVERT_MODE_PARAM = "sw-mode"
"""Request-URI parameter telling the challenge UA what to do: ``challenge`` or ``voicemail``."""
DIVERT_REMEMBER = 900.0
"""Seconds a diverted call's verstat waits for the bridged leg a pass brings (the IVR and
the caller take well under this; a later pass's leg gets the leg's own verstat)."""


class PassCheck(Protocol):
    """Checks (and spends) a challenge pass token; may be a coroutine function, for a
    check that spends the token in a store shared by several worker processes."""

    def __call__(
        self, token: str, caller: str, callee: str, now: float
    ) -> bool | Awaitable[bool]: ...


@dataclass(frozen=True, slots=True)
class DivertTargets:
    """Where challenge and voicemail calls go; None when that UA is not running."""

    challenge: str | None = None
    voicemail: str | None = None


@dataclass(frozen=True, slots=True)
class Screened:
    """One screening result, kept for the outcome observer and for tests."""

    facts: CallFacts
    verdict: Verdict
    decision: Decision | None
    action: Action
    user_id: int | None
    decision_id: str


class CallScreener:
    """The production :class:`~proxy.screen.Screener`: verification, scoring and policy."""

    def __init__(
        self,
        *,
        engine: ScoringEngine,
        verifier: Verifier | None = None,
        store: Store | None = None,
        audit: AuditLog | None = None,
        targets: DivertTargets | None = None,
        passes: PassCheck | None = None,
        reason_form: str = "sip",
        clock: Callable[[], float] = time.time,
        remember: int = 50_000,
        signing: OutboundSigning | None = None,
    ) -> None:
        self.engine = engine
        self.signing = signing
        self.verifier = verifier
        self.store = store
        self.audit = audit
        self.targets = targets or DivertTargets()
        self.passes = passes
        self.reason_form = "stir" if reason_form == "stir" else "sip"
        self.clock = clock
        self._recent: dict[str, Screened] = {}
        self._passes: dict[tuple[str, str], float] = {}
        self._diverted_verstat: dict[tuple[str, str], tuple[str, float]] = {}
        """Without a store: (caller, callee) → (verstat, until), as the store keeps it."""
        self._remember = remember

    # -- the screening step ----------------------------------------------------------------

    async def screen(self, facts: InviteFacts) -> Action:
        started = time.perf_counter()
        decision_id = secrets.token_hex(8)
        if self.signing is not None:
            outbound = self.signing.outbound(facts)
            if outbound is not None:
                return self._outbound(facts, outbound, started, decision_id)
        if self.verifier is not None:
            verdict = await self.verifier.verify(facts.identity_input())
        else:
            verdict = Verdict(verstat=Verstat.NONE, reason="verification_disabled")
        verified_ms = (time.perf_counter() - started) * 1000.0
        call = dataclasses.replace(
            facts.call_facts(),
            verstat=verdict.verstat.value,
            attest=verdict.attest,
            origid=verdict.origid,
            spc=verdict.spc,
            identity_reason=verdict.reason,
        )
        caller, callee = self.engine.numbers(call)
        user = self.store.user_for_tn(callee.digits) if self.store and callee.digits else None
        user_id = user.id if user is not None else None
        settings = self.store.users.settings(user_id) if self.store and user_id else None

        decision: Decision | None = None
        passed = await self._passed_challenge(facts, call)
        if passed or self.passes_remembered(caller.digits, callee.digits, call.time):
            label = "challenge-passed" if passed else "challenge-remembered"
            # The bridged leg comes from our own UA and carries no Identity: the callee
            # should see what the caller's original INVITE proved, not No-TN-Validation.
            verstat = verdict.verstat.value
            if passed and verdict.verstat is Verstat.NONE:
                verstat = self._diverted(caller.digits, callee.digits, call.time) or verstat
            action: Action = Forward(
                verstat=verstat,
                headers=(("X-Spitwall-Score", f"0;label={label}"),),
                decision_id=decision_id,
                note=label,
            )
            score = Score(0.0, override=label.replace("-", "_"))
        else:
            decision = self.engine.screen(call, settings, call.time, user_id=user_id)
            score = decision.score
            action = self._act(verdict, decision, decision_id, caller.digits, callee.digits)
            vm = settings.voicemail_on_fail if settings is not None else None
            if vm is not None and isinstance(action, Divert) and "=challenge;" in action.target:
                # the callee's choice travels in the divert (challenge/__init__.py: sw-vm)
                action = dataclasses.replace(action, target=f"{action.target};sw-vm={int(vm)}")
            if isinstance(action, Divert) and caller.digits and callee.digits:
                verstat = verdict.verstat.value
                self._remember_divert(caller.digits, callee.digits, verstat, call.time)
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        kind = _action_name(action, decision)
        if self.store is not None:
            # the store wants what was carried out: a monitored call was forwarded
            done = "forward" if kind == "forward_monitor" else kind
            self.store.feedback.record_call(call, user_id=user_id, score=score, action=done)
        if self.audit is not None:
            self._audit(facts, call, verdict, score, kind, action, verified_ms, elapsed_ms)
        self._keep(Screened(call, verdict, decision, action, user_id, decision_id))
        log.info(
            "screened call",
            extra={
                "call_id": call.call_id,
                "caller": call.caller,
                "callee": call.callee,
                "verstat": verdict.verstat.value,
                "attest": verdict.attest,
                "score": round(score.value, 1),
                "action": kind,
                "reasons": [f"{r.signal}:{r.weight:+.2f}" for r in score.reasons[:5]],
                "ms": round(elapsed_ms, 2),
            },
        )
        return action

    def _outbound(
        self, facts: InviteFacts, result: Signed | NotSigned, started: float, decision_id: str
    ) -> Action:
        """An outbound call from a customer trunk: signed (or not), logged, not scored."""
        assert self.signing is not None
        action = result.forward(decision_id)
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        if self.audit is not None:
            try:
                self.audit.append(self.signing.audit_entry(facts, result, elapsed_ms))
            except Exception:  # the call path must survive a bad record
                log.exception("could not build the audit record", extra={"call_id": facts.call_id})
        self._learn_outbound(result, facts.time)
        signed = isinstance(result, Signed)
        log.log(
            logging.INFO if signed else logging.WARNING,
            "signed outbound call" if signed else "outbound call left unsigned",
            extra={
                "call_id": facts.call_id,
                "trunk": result.trunk,
                "caller": result.orig_tn,
                "callee": result.dest_tn,
                "attest": result.attest if isinstance(result, Signed) else None,
                "reason": None if isinstance(result, Signed) else result.detail,
                "ms": round(elapsed_ms, 2),
            },
        )
        return action

    def _learn_outbound(self, result: Signed | NotSigned, now: float) -> None:
        """Reciprocity: a subscriber's outgoing call makes the number it called known to
        that subscriber (``learned.allow`` when it calls back). Signed or not, the call was
        made; the caller TN must belong to a user, else there is nobody to teach."""
        if self.store is None or not result.orig_tn or not result.dest_tn:
            return
        try:
            user = self.store.user_for_tn(result.orig_tn.lstrip("+"))
            if user is not None:
                self.store.feedback.learn_outbound(user.id, result.dest_tn.lstrip("+"), now)
        except Exception:  # learning must never break an outbound call
            log.exception("outbound call not learned", extra={"trunk": result.trunk})

    def recent(self, call_id: str) -> Screened | None:
        """The screening result of a recent call (outcome observer, tests)."""
        return self._recent.get(call_id)

    # -- mapping a decision to an action ---------------------------------------------------

    def _act(
        self, verdict: Verdict, decision: Decision, decision_id: str, caller: str, callee: str
    ) -> Action:
        identity_reason = reason_header(verdict, "stir" if self.reason_form == "stir" else "sip")
        if verdict.reject and verdict.sip_code:
            headers: tuple[tuple[str, str], ...] = ()
            if identity_reason:
                headers = (("Reason", identity_reason),)
            return Reject(
                code=verdict.sip_code,
                reason=verdict.sip_text or "Rejected",
                headers=headers,
                decision_id=decision_id,
                note=f"identity {verdict.reason}",
            )
        tag = tuple(decision.headers)
        if decision.action is ActionKind.REJECT and decision.reject_code:
            return Reject(
                code=decision.reject_code,
                reason=decision.reason_phrase or decision.reject_reason or "Decline",
                headers=tag,
                decision_id=decision_id,
                note=f"score {decision.score.value:.1f} band {decision.band}",
            )
        if decision.action in (ActionKind.CHALLENGE, ActionKind.VOICEMAIL):
            mode = "challenge" if decision.action is ActionKind.CHALLENGE else "voicemail"
            target = self.targets.challenge if mode == "challenge" else self.targets.voicemail
            if target is None and mode == "challenge":
                target, mode = self.targets.voicemail, "voicemail"
            blocked = any(r.signal == "list.user_block" for r in decision.score.reasons)
            if target is None and blocked:
                # no UA to divert to, and the callee blocked this number: forwarding it
                # tagged (the fallback below) would ring a phone its owner closed to it
                code = int(self.engine.config.policy.user_block_code)
                why = f'SIP;cause={code};text="on the callee\'s block list"'
                return Reject(
                    code=code,
                    reason=REASON_PHRASES.get(code, "Unwanted"),
                    headers=(*tag, ("Reason", why)),
                    decision_id=decision_id,
                    note=f"on the callee's block list; no {mode} UA",
                )
            if target is not None and callee:
                # the challenge UA's contract (challenge/__init__.py): callee and caller as
                # E.164; the proxy core adds sw-decision and strips sw-* from outside
                params = f";{DIVERT_MODE_PARAM}={mode};sw-callee=%2B{callee}"
                if caller:
                    params += f";sw-caller=%2B{caller}"
                return Divert(
                    target=f"{target.rstrip(';')}{params}",
                    decision_id=decision_id,
                    headers=tag,
                    note=f"score {decision.score.value:.1f} band {decision.band}",
                )
        if not tag and decision.action is not ActionKind.FORWARD:
            # a challenge/voicemail decision with no UA to divert to, or a tagged one the
            # policy left untagged: forwarded, but never without its score
            tag = (tag_header(decision, self.engine.config.policy),)
        extra = (("Reason", identity_reason),) if identity_reason else ()
        return Forward(
            verstat=verdict.verstat.value,
            headers=tag + extra,
            decision_id=decision_id,
            note=f"score {decision.score.value:.1f} band {decision.band}",
        )

    def _remember_divert(self, caller: str, callee: str, verstat: str, now: float) -> None:
        """Keep the original call's verstat for the bridged leg a pass will bring. With a
        store, in the store: the leg may reach another worker process."""
        until = now + DIVERT_REMEMBER
        if self.store is not None:
            self.store.remember_divert(caller, callee, verstat, until, now=now).add_done_callback(
                _log_undiverted
            )
            return
        self._diverted_verstat.pop((caller, callee), None)  # re-insert: newest last
        self._diverted_verstat[(caller, callee)] = (verstat, until)
        if len(self._diverted_verstat) > self._remember:
            for key in list(self._diverted_verstat)[: max(1, self._remember // 10)]:
                del self._diverted_verstat[key]

    def _diverted(self, caller: str, callee: str, now: float) -> str | None:
        if self.store is not None:
            return self.store.diverted_verstat(caller, callee, now)
        got = self._diverted_verstat.get((caller, callee))  # expires as the store's does
        return got[0] if got is not None and got[1] > now else None

    def remember_pass(self, caller: str, callee: str, until: float) -> None:
        """A caller who passed a challenge reaches this callee unchallenged until ``until``
        (the challenge UA's outcome report, through the API, calls this). With a store the
        pass is written there too, so that every worker process honours it."""
        a, b = caller.lstrip("+"), callee.lstrip("+")
        if not (a and b):
            return
        if self.store is not None:
            self.store.remember_pass(a, b, until, now=self.clock()).add_done_callback(
                _log_unremembered
            )
            return
        self._passes[(a, b)] = until
        if len(self._passes) > self._remember:
            now = self.clock()
            self._passes = {k: v for k, v in self._passes.items() if v > now}

    def passes_remembered(self, caller: str, callee: str, now: float) -> bool:
        """Memory only: this process's passes, or with a store every process's."""
        if not (caller and callee):
            return False
        if self.store is not None:
            return self.store.pass_remembered(caller, callee, now)
        until = self._passes.get((caller, callee))
        return until is not None and until > now

    async def _passed_challenge(self, facts: InviteFacts, call: CallFacts) -> bool:
        token = getattr(facts, "pass_token", None)
        if not token or self.passes is None:
            return False
        ok = self.passes(token, call.caller or "", call.callee, call.time)
        if inspect.isawaitable(ok):
            ok = await ok
        return bool(ok)

    # -- records ---------------------------------------------------------------------------

    def _audit(
        self,
        facts: InviteFacts,
        call: CallFacts,
        verdict: Verdict,
        score: Score,
        kind: str,
        action: Action,
        verified_ms: float,
        elapsed_ms: float,
    ) -> None:
        assert self.audit is not None
        code = action.code if isinstance(action, Reject) else None
        try:
            entry = AuditEntry.from_verdict(
                verdict,
                time=call.time,
                call_id=call.call_id,
                source=f"{facts.source_ip}:{facts.source_port}",
                identity_headers=facts.identity,
                orig_tn=verdict.orig_tn or call.caller,
                dest_tn=call.callee,
                score=score.value,
                reasons=[(r.signal, r.weight, r.detail) for r in score.reasons],
                action=kind,
                code=code,
                elapsed_ms=elapsed_ms,
                kind=RecordKind.DECISION.value,
            )
            self.audit.append(entry)
        except Exception:  # the call path must survive a bad record; the log says so loudly
            log.exception("could not build the audit record", extra={"call_id": call.call_id})

    def _keep(self, item: Screened) -> None:
        self._recent[item.facts.call_id] = item
        if len(self._recent) > self._remember:
            # dicts keep insertion order: drop the oldest tenth in one go
            for key in list(self._recent)[: self._remember // 10]:
                del self._recent[key]


def _log_unremembered(done: Future[None]) -> None:
    """A pass the store could not record is still honoured here, not by other workers."""
    exc = done.exception()
    if exc is not None:
        log.error("challenge pass not shared with other workers: %s", exc)


def _log_undiverted(done: Future[None]) -> None:
    """A diverted call's verstat the store could not record: a bridged leg that reaches
    another worker is forwarded with its own verstat (No-TN-Validation)."""
    exc = done.exception()
    if exc is not None:
        log.error("diverted call's verstat not shared with other workers: %s", exc)


def _action_name(action: Action, decision: Decision | None) -> str:
    if isinstance(action, Reject):
        return "reject"
    if isinstance(action, Divert):
        return "challenge" if f"{DIVERT_MODE_PARAM}=challenge" in action.target else "voicemail"
    if decision is not None and decision.monitor:
        return "forward_monitor"
    if decision is not None and decision.action is ActionKind.FORWARD_TAGGED:
        return "forward_tagged"
    return "forward"


class PipelineObserver:
    """Feeds call outcomes to the scoring engine's patterns and to the store's feedback."""

    def __init__(self, screener: CallScreener) -> None:
        self.screener = screener

    def observe(self, outcome: Outcome) -> None:
        engine, store = self.screener.engine, self.screener.store
        t = outcome.time
        screened = self.screener.recent(outcome.call_id)
        answered = outcome.kind == "bye" or (
            outcome.kind == "final" and outcome.code is not None and outcome.code < 300
        )
        if answered and screened is not None and isinstance(screened.action, Divert):
            # The caller talked to our own UA, not the callee: its 200 and BYE say nothing
            # about the call's outcome. In the store they would overwrite the UA's report
            # (challenge_passed, voicemail_left …) with "answered"/"ended"; in the call
            # patterns a short talk with the IVR would count as the caller's short call.
            # The UA's own report is the outcome. Failures and CANCEL still count.
            return
        try:
            if outcome.kind == "final" and outcome.code is not None:
                engine.observe_final(outcome.call_id, outcome.code, t)
                if store is not None:  # a 607 from the callee counts as "unwanted" there
                    store.feedback.record_outcome(
                        outcome.call_id, "final_response", outcome.code, now=t
                    )
            elif outcome.kind == "bye":
                engine.observe_bye(outcome.call_id, t, outcome.duration)
                if store is not None:
                    store.feedback.record_outcome(outcome.call_id, "bye", outcome.duration, now=t)
            elif outcome.kind == "cancel":
                engine.observe_cancel(outcome.call_id, t)
                if store is not None:
                    store.feedback.record_outcome(outcome.call_id, "cancel", None, now=t)
        except Exception:  # an outcome must never break the proxy
            log.exception("outcome not recorded", extra={"call_id": outcome.call_id})


def describe(item: Screened) -> dict[str, Any]:
    """A JSON-able explanation of one decision (logs, replay reports, tests)."""
    score = item.decision.score if item.decision else None
    return {
        "call_id": item.facts.call_id,
        "caller": item.facts.caller,
        "callee": item.facts.callee,
        "verstat": item.verdict.verstat.value,
        "attest": item.verdict.attest,
        "identity_reason": item.verdict.reason,
        "score": None if score is None else round(score.value, 2),
        "reasons": [] if score is None else [
            {"signal": r.signal, "weight": round(r.weight, 3), "detail": r.detail}
            for r in score.reasons
        ],
        "action": _action_name(item.action, item.decision),
        "code": item.action.code if isinstance(item.action, Reject) else None,
    }
