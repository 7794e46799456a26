"""The scoring façade: the one object the proxy's screening step calls.

Why a façade: the proxy should not know that a score needs two number parses, a list
lookup, a learned-allow lookup, four pattern tables and four counter reads. It hands over
:class:`~reputation.model.CallFacts` (and the callee's user id and settings) and gets a
:class:`~reputation.model.Score`, then a :class:`~reputation.model.Decision`; afterwards
it reports what happened through the ``observe_*`` methods.

Everything here is in memory: the lookups passed in (the store's ``ListIndex``,
``ReputationBook`` and ``LearnedAllowBook``) are memory-resident by design, and the call
patterns live in :class:`~reputation.patterns.CallPatterns`. No disk, no socket, no clock:
``now`` defaults to the call's own time. Not thread-safe; one event loop owns it.

Typical use (screening step)::

    score = engine.score(facts, settings, user_id=user.id)
    decision = engine.decide(score, settings)
    engine.observe_attempt(facts)            # count it for the next call's patterns
    ...
    engine.observe_final(call_id, 200, t)    # 2xx / 4xx-6xx final response
    engine.observe_bye(call_id, t, duration) # BYE after answer
    engine.observe_cancel(call_id, t)        # CANCEL from the caller

``screen()`` does the first three in one call.
"""

from __future__ import annotations

import dataclasses

from .config import ReputationConfig
from .lookups import (
    CountersView,
    LearnedLookup,
    LearnedView,
    ListHitView,
    ListLookup,
    ReputationLookup,
)
from .model import ActionKind, CallFacts, Decision, Score
from .numbers import NumberInfo, read_number
from .patterns import CallPatterns, Outcome, PatternFeatures, PatternKeys
from .policy import UserPolicy, decide
from .score import evaluate
from .signals import SignalInput


class ScoringEngine:
    """Scores calls, decides on them, and learns call patterns from their outcomes."""

    def __init__(
        self,
        config: ReputationConfig | None = None,
        *,
        lists: ListLookup | None = None,
        book: ReputationLookup | None = None,
        learned: LearnedLookup | None = None,
        patterns: CallPatterns | None = None,
    ) -> None:
        self.config = config or ReputationConfig()
        self.lists = lists
        self.book = book
        self.learned = learned
        self.patterns = patterns if patterns is not None else CallPatterns(self.config.patterns)

    # --- reading a call -------------------------------------------------------------------

    def numbers(self, facts: CallFacts) -> tuple[NumberInfo, NumberInfo]:
        """Caller and callee, read in the configured default region."""
        region = self.config.default_region
        caller = read_number(facts.caller, region, facts.privacy)
        callee = read_number(facts.callee, region)
        return caller, callee

    def keys_for(self, facts: CallFacts, caller: NumberInfo) -> PatternKeys:
        """Pattern keys of a call: caller digits (or SIP user name), source IP, origid, SPC.

        Anonymous callers get no caller key (they would all share one); they are still
        counted under their source IP, origid and SPC. Calls from a configured trunk are
        not keyed by source IP unless ``patterns.count_trunk_ips`` (the carrier's SBC
        carries everybody's calls).
        """
        ip = facts.source_ip or ""
        if facts.trunk and not self.config.patterns.count_trunk_ips:
            ip = ""
        if caller.anonymous:
            ckey = ""
        elif caller.digits:
            ckey = caller.digits
        else:
            ckey = caller.user.lower()[:64]
        return PatternKeys(
            caller=ckey,
            source_ip=ip,
            origid=facts.origid or "",
            spc=facts.spc or "",
        )

    # --- scoring --------------------------------------------------------------------------

    def score(
        self,
        facts: CallFacts,
        user_settings: UserPolicy | None = None,
        now: float | None = None,
        *,
        user_id: int | None = None,
    ) -> Score:
        """Score one new call for the callee ``user_id`` (None: global lists only).

        Pure with respect to the engine: reading never changes the patterns (call
        :meth:`observe_attempt` afterwards). ``user_settings`` is accepted for symmetry with
        :meth:`decide`; scoring itself does not depend on per-user choices.
        """
        del user_settings  # the score is the same for every subscriber; the policy differs
        t = facts.time if now is None else now
        caller, callee = self.numbers(facts)
        keys = self.keys_for(facts, caller)
        source_keys = tuple((k, v) for k, v in keys.items() if k != "tn")
        inp = SignalInput(
            facts=facts,
            caller=caller,
            callee=callee,
            config=self.config,
            now=t,
            user_id=user_id,
            source_keys=source_keys,
        )
        hits: tuple[ListHitView, ...] = ()
        if self.lists is not None and caller.digits:
            hits = tuple(self.lists.match_all(user_id, caller.digits, t))
        learned: LearnedView | None = None
        if self.learned is not None and user_id is not None and caller.digits:
            learned = self.learned.get(user_id, caller.digits)
        caller_counts: CountersView | None = None
        source_counts: list[tuple[str, str, CountersView | None]] = []
        if self.book is not None:
            if keys.caller and caller.digits:
                caller_counts = self.book.get("tn", keys.caller, t)
            for kind, key in source_keys:
                source_counts.append((kind, key, self.book.get(kind, key, t)))
        features = self.patterns.features(keys, t, callee=callee.digits or callee.user)
        features = self._with_first_seen(features, caller_counts, t)
        return evaluate(
            inp,
            hits=hits,
            learned=learned,
            features=features,
            caller_counts=caller_counts,
            source_counts=source_counts,
        )

    @staticmethod
    def _with_first_seen(
        features: PatternFeatures, counts: CountersView | None, now: float
    ) -> PatternFeatures:
        """Number maturity from the store's first-seen time when it knows the number for
        longer than the in-memory pattern table does (which forgets on restart)."""
        first = counts.first_seen if counts is not None else None
        if first is None:
            return features
        stats = []
        for st in features.stats:
            if st.kind == "tn":
                age = max(now - first, st.first_seen_age or 0.0)
                st = dataclasses.replace(st, first_seen_age=age)
            stats.append(st)
        return PatternFeatures(stats=tuple(stats))

    def decide(self, score: Score, settings: UserPolicy | None = None) -> Decision:
        """Bands → action for this user (None: deployment defaults); monitor mode applied."""
        return decide(score, self.config.policy, settings)

    def screen(
        self,
        facts: CallFacts,
        user_settings: UserPolicy | None = None,
        now: float | None = None,
        *,
        user_id: int | None = None,
    ) -> Decision:
        """Score, decide, and count the attempt: the whole screening step in one call."""
        score = self.score(facts, user_settings, now, user_id=user_id)
        decision = self.decide(score, user_settings)
        # a call we reject or divert to our own UA never rings the callee: the proxy reports
        # no end for it, so it must not count as "in progress" (pattern.concurrent)
        ringing = decision.action in (ActionKind.FORWARD, ActionKind.FORWARD_TAGGED)
        self.observe_attempt(facts, now, ringing=ringing)
        return decision

    # --- learning from what happened -------------------------------------------------------

    def observe_attempt(
        self, facts: CallFacts, now: float | None = None, *, ringing: bool = True
    ) -> None:
        """Count a screened call under its pattern keys (once per Call-ID); ``ringing=False``
        when it was rejected or diverted (not counted as in progress)."""
        t = facts.time if now is None else now
        caller, callee = self.numbers(facts)
        self.patterns.observe_attempt(
            facts.call_id,
            self.keys_for(facts, caller),
            callee.digits or callee.user,
            t,
            ringing=ringing,
        )

    def observe_outcome(
        self, call_id: str, outcome: Outcome, now: float, duration: float | None = None
    ) -> bool:
        """Record an outcome; False when the Call-ID is unknown (not screened, or expired)."""
        return self.patterns.observe_outcome(call_id, outcome, now, duration)

    def observe_final(self, call_id: str, code: int, now: float) -> bool:
        """A final response to the INVITE: 2xx = answered; 487 (after CANCEL) is ignored
        because the CANCEL itself was observed; any other 3xx-6xx = failed."""
        if 200 <= code < 300:
            return self.observe_outcome(call_id, Outcome.ANSWERED, now)
        if code == 487 or code < 300:
            return False
        return self.observe_outcome(call_id, Outcome.FAILED, now)

    def observe_bye(self, call_id: str, now: float, duration: float | None = None) -> bool:
        """BYE after answer; ``duration`` = seconds from the 200 OK (else measured here)."""
        return self.observe_outcome(call_id, Outcome.ENDED, now, duration)

    def observe_cancel(self, call_id: str, now: float) -> bool:
        """CANCEL from the caller before a final response."""
        return self.observe_outcome(call_id, Outcome.CANCELLED, now)
