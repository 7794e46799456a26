"""Policy: from a score to what happens to the call, for this subscriber.

Bands (global thresholds in ``[reputation.policy]``, shifted per user by strictness):

=============  ==========================  ======================
band           score                       default action
=============  ==========================  ======================
``ok``         below ``tag_at`` (25)       forward
``suspicious`` ``tag_at`` … (25-49)        forward_tagged
``likely``     ``challenge_at`` … (50-74)  challenge
``spam``       ``voicemail_at`` … (75-89)  voicemail
``certain``    ``reject_at`` and up (90+)  reject
=============  ==========================  ======================

The order of rules in :func:`decide`:
1. allowing overrides (emergency callee, critical caller, the user's allow list, the global
   allow list for A-attested calls) forward untouched — no tag, no challenge;
2. blocking overrides (Do-Not-Originate, invalid number) reject;
3. anonymous callers, when the user (or the deployment) chose an action for them;
4. otherwise the band's action (the user's per-band choice, else the deployment's);
   **infrastructure-only evidence cannot reject**: when the band's action is ``reject``
   but the band of the score without the positive infrastructure reasons (``Reason.infra``: source
   address, ``origid``, SPC, and call patterns seen only on those keys, not on the caller's
   own number) has another action, the action becomes ``challenge``. A carrier
   or VoIP provider hands over honest customers' calls together with a campaign's; what it
   did is evidence to *divert* (a robocaller fails the challenge, a human passes), only
   evidence about the caller itself — list hits, DNO/invalid number, the number's own
   feedback and patterns, attestation, neighbour spoofing — may refuse the call;
   **volume cannot reject either**: when the score without the positive infrastructure
   *and* call-volume reasons (``Reason.volume``: rates, fan-out, concurrency, sweeps,
   repeats) would not reject, the action becomes ``volume_only_action`` (voicemail). A
   wanted broadcast (a school closure, a pharmacy's reminders) has the volume of a
   campaign; rejecting it is the worst outcome, a voicemail keeps its message. Outcomes
   (607s, failed challenges, short calls), lists and the number itself still reject;
   a call the ``pattern.listened`` signal recognised as a wanted bulk sender is never
   *challenged*: a challenge tests for a human and a notification bot fails it by design
   (losing its message); it goes to ``bulk_sender_action`` (voicemail) instead;
5. monitor mode (deployment or user) turns any action into ``forward`` with the score tag
   and remembers the action it would have taken in ``Decision.intended``.

Signalling (documented for the proxy and for callers' carriers):
- Tag: ``X-Spitwall-Score: <0-100>;label=<label>;reasons="<signal>,<signal>"`` is added to
  tagged and monitored calls. The proxy keeps ``verstat`` on PAI/From as it is.
- Reject: 608 Rejected (RFC 8688) with ``Call-Info: <redress_uri>;purpose=jwscard`` when a
  redress jCard is configured; 603 Decline, or ``603 Network Blocked`` (ATIS-1000099) when
  ``network_blocked_phrase``; 607 Unwanted (RFC 8197) when the user's own block list
  decided; 433 Anonymity Disallowed (RFC 5079) for anonymous calls the user rejects. Every
  reject carries ``Reason: SIP;cause=<code>;text="…"`` naming the top reasons and, when
  configured, the redress contact.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

from .config import PolicyConfig
from .model import ActionKind, Decision, Reason, Score
from .score import ALLOWING_OVERRIDES, BLOCKING_OVERRIDES, logistic_score

BANDS = ("ok", "suspicious", "likely", "spam", "certain")

LABELS = {
    "ok": "ok",
    "suspicious": "spam-suspected",
    "likely": "spam-likely",
    "spam": "spam",
    "certain": "spam-certain",
    "emergency": "emergency",
    "critical_caller": "critical",
    "allow_list": "allowed",
    "global_allow_attested": "allowed",
    "dno": "do-not-originate",
    "invalid_number": "invalid-number",
    "anonymous": "anonymous",
}

STRICTNESS_STEPS = {"lenient": -1, "normal": 0, "strict": 1}
"""User strictness → threshold steps (each step = ``policy.strictness_step`` points)."""

REASON_PHRASES = {
    433: "Anonymity Disallowed",
    603: "Decline",
    607: "Unwanted",
    608: "Rejected",
}


class UserPolicy(Protocol):
    """A subscriber's choices (``users.UserSettings`` satisfies this); None = default."""

    @property
    def monitor(self) -> bool | None: ...
    @property
    def strictness(self) -> str | None: ...
    @property
    def anonymous(self) -> str | None: ...
    @property
    def reject_code(self) -> int | None: ...
    def band_action(self, band: str) -> str | None: ...


def thresholds(cfg: PolicyConfig, user: UserPolicy | None = None) -> tuple[float, ...]:
    """The four band thresholds for this user (stricter = lower)."""
    steps = STRICTNESS_STEPS.get((user.strictness if user else None) or "normal", 0)
    shift = -steps * cfg.strictness_step
    raw = (cfg.tag_at, cfg.challenge_at, cfg.voicemail_at, cfg.reject_at)
    return tuple(min(100.0, max(0.0, t + shift)) for t in raw)


def band_of(value: float, limits: tuple[float, ...]) -> str:
    """The band a score falls in, given :func:`thresholds`."""
    band = BANDS[0]
    for name, limit in zip(BANDS[1:], limits, strict=True):
        if value >= limit:
            band = name
    return band


def _action(name: str | None) -> ActionKind | None:
    try:
        return ActionKind(name) if name else None
    except ValueError:
        return None


def _band_action(cfg: PolicyConfig, user: UserPolicy | None, band: str) -> ActionKind:
    chosen = _action(user.band_action(band)) if user is not None else None
    if chosen is not None:
        return chosen
    default = {
        "ok": cfg.action_ok,
        "suspicious": cfg.action_suspicious,
        "likely": cfg.action_likely,
        "spam": cfg.action_spam,
        "certain": cfg.action_certain,
    }[band]
    return ActionKind(default)


def _is_anonymous(score: Score) -> bool:
    return any(r.signal == "number.anonymous" for r in score.reasons)


def _bulk_sender(score: Score) -> bool:
    """``pattern.listened`` fired: a machine by design, whose calls people listen to."""
    return any(r.signal == "pattern.listened" for r in score.reasons)


def _user_blocked(score: Score) -> bool:
    return any(r.signal == "list.user_block" for r in score.reasons)


def score_header(score: Score, label: str, top: int = 3) -> str:
    """The tag header value: ``87;label=spam-likely;reasons="pattern.fanout,shaken.attest_c"``."""
    names = [r.signal for r in score.reasons if r.weight > 0][:top]
    text = f"{round(score.value):d};label={label}"
    return text + (f';reasons="{",".join(names)}"' if names else "")


def _score_without(score: Score, leave_out: Callable[[Reason], bool]) -> float:
    """The score without the positive reasons ``leave_out`` picks (``score.value`` if none)."""
    drop = [r.weight for r in score.reasons if leave_out(r) and r.weight > 0]
    if not drop:
        return score.value
    return logistic_score(score.log_odds - math.fsum(drop))


def _rejects_only_with(
    score: Score, mine: float, cfg: PolicyConfig, user: UserPolicy | None
) -> bool:
    """``score`` rejects, but ``mine`` (a score with some evidence left out) would not."""
    if mine == score.value:
        return False
    return _band_action(cfg, user, band_of(mine, thresholds(cfg, user))) is not ActionKind.REJECT


def caller_score(score: Score) -> float:
    """The score without the positive infrastructure evidence (``Reason.infra``): what the
    caller's own evidence says. Equal to ``score.value`` when no such reason fired."""
    return _score_without(score, lambda r: r.infra)


def infrastructure_only(score: Score, cfg: PolicyConfig, user: UserPolicy | None = None) -> bool:
    """True when the call reaches a ``reject`` band only through shared-infrastructure
    evidence: without it, its band's action would not be ``reject`` (the rule in the module
    docstring: such a call is challenged, never rejected)."""
    return _rejects_only_with(score, caller_score(score), cfg, user)


def own_score(score: Score) -> float:
    """The score without positive infrastructure *and* call-volume evidence: what the
    caller's own outcomes, lists, number and attestation say."""
    return _score_without(score, lambda r: r.infra or r.volume)


def volume_only(score: Score, cfg: PolicyConfig, user: UserPolicy | None = None) -> bool:
    """True when the call reaches a ``reject`` band only through call volume (and
    infrastructure) evidence: without it, its band's action would not be ``reject``."""
    return _rejects_only_with(score, own_score(score), cfg, user)


def tag_header(decision: Decision, cfg: PolicyConfig) -> tuple[str, str]:
    """The score tag for a decision, ``(cfg.score_header, "<score>;label=…;reasons=…")``:
    for callers (the proxy) that forward a decision the policy did not tag itself."""
    return (cfg.score_header, score_header(decision.score, decision.label or "ok"))


def _reason_text(score: Score, code: int, cfg: PolicyConfig, why: str) -> str:
    text = why
    if cfg.redress_contact:
        text += f"; redress {cfg.redress_contact}"
    # quoted-string: no double quotes or backslashes inside (RFC 3261 §25.1)
    text = text.replace("\\", "/").replace('"', "'")
    return f'SIP;cause={code};text="{text}"'


def _why(score: Score, band: str) -> str:
    if score.override in BLOCKING_OVERRIDES:
        return f"{LABELS.get(score.override, score.override)}: caller cannot originate calls"
    top = [r.signal for r in score.reasons if r.weight > 0][:3]
    return f"spam score {round(score.value):d} ({', '.join(top) or band})"


def decide(score: Score, cfg: PolicyConfig, user: UserPolicy | None = None) -> Decision:
    """What to do with a scored call for this user (None = deployment defaults). Pure."""
    monitor = cfg.monitor if user is None or user.monitor is None else bool(user.monitor)
    header = cfg.score_header
    if score.override in ALLOWING_OVERRIDES:
        return Decision(
            action=ActionKind.FORWARD,
            score=score,
            label=LABELS[score.override],
            band=score.override,
        )
    if score.override in BLOCKING_OVERRIDES:
        band = score.override
        action = ActionKind.REJECT
    elif _is_anonymous(score) and _anonymous_action(cfg, user) is not None:
        band = "anonymous"
        action = _anonymous_action(cfg, user) or ActionKind.FORWARD
    else:
        band = band_of(score.value, thresholds(cfg, user))
        action = _band_action(cfg, user, band)
        if action is ActionKind.REJECT and infrastructure_only(score, cfg, user):
            action = ActionKind.CHALLENGE
        elif action is ActionKind.REJECT and volume_only(score, cfg, user):
            action = ActionKind(cfg.volume_only_action)
        if action is ActionKind.CHALLENGE and _bulk_sender(score):
            action = ActionKind(cfg.bulk_sender_action)
    label = LABELS.get(band, band)
    tag = (header, score_header(score, label))
    if monitor and action is not ActionKind.FORWARD:
        return Decision(
            action=ActionKind.FORWARD,
            score=score,
            label=label,
            monitor=True,
            intended=action,
            band=band,
            headers=(tag,),
        )
    if action is ActionKind.FORWARD_TAGGED or monitor:
        return Decision(action=action, score=score, label=label, band=band, headers=(tag,),
                        monitor=monitor)  # fmt: skip
    if action is not ActionKind.REJECT:
        return Decision(action=action, score=score, label=label, band=band, monitor=monitor)
    code = _reject_code(score, cfg, user, band)
    phrase = REASON_PHRASES[code]
    if code == 603 and cfg.network_blocked_phrase:
        phrase = "Network Blocked"
    why = "anonymous calls are not accepted" if band == "anonymous" else _why(score, band)
    headers: list[tuple[str, str]] = [("Reason", _reason_text(score, code, cfg, why))]
    if code == 608 and cfg.redress_uri:
        headers.append(("Call-Info", f"<{cfg.redress_uri}>;purpose=jwscard"))
    return Decision(
        action=ActionKind.REJECT,
        score=score,
        label=label,
        reject_code=code,
        reject_reason=why,
        band=band,
        reason_phrase=phrase,
        headers=tuple(headers),
    )


def _anonymous_action(cfg: PolicyConfig, user: UserPolicy | None) -> ActionKind | None:
    choice = (user.anonymous if user is not None else None) or cfg.anonymous
    return None if choice == "score" else _action(choice)


def _reject_code(score: Score, cfg: PolicyConfig, user: UserPolicy | None, band: str) -> int:
    if band == "anonymous":
        return 433
    if _user_blocked(score) and score.override is None:
        return int(cfg.user_block_code)
    chosen = user.reject_code if user is not None else None
    code = int(chosen) if chosen in (603, 607, 608) else int(cfg.reject_code)
    return code
