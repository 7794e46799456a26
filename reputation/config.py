"""Reputation configuration (the ``[reputation]`` table)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# --- scoring side: weights, bands, policy (numbers/patterns/signals/score/policy) ---------

ActionName = Literal["forward", "forward_tagged", "challenge", "voicemail", "reject"]
"""What a band does with a call (see reputation.model.ActionKind)."""


@dataclass(frozen=True, slots=True)
class WeightsConfig:
    """Log-odds weights, one per signal (``shaken.attest_c`` is the field ``shaken_attest_c``).

    Positive = more likely spam. The score is ``100 * logistic(prior + sum of weights)``.
    Graded signals (counts, rates) scale their weight by ``1 + log2(value / threshold)``,
    capped at twice the weight, so each weight is "what the signal is worth at threshold".
    Defaults and their sources are explained in docs/detection.md.
    """

    prior: float = -2.5
    """Log-odds before any evidence: about 7.6 % spam (unsigned robocall share, TransNexus 2022)."""
    shaken_attest_a: float = -0.85
    """Verified, full attestation (A): about 3.4 % of such calls are robocalls."""
    shaken_attest_b: float = 1.5
    """Verified, partial attestation (B): about 26.5 % robocalls."""
    shaken_attest_c: float = 2.0
    """Verified, gateway attestation (C): about 37.6 % robocalls."""
    shaken_absent: float = 0.0
    """No Identity header (unsigned): the prior already stands for it."""
    shaken_failed: float = 1.5
    """Identity present but verification failed (any reason not listed below)."""
    shaken_failed_signature: float = 2.5
    """Verification failed: bad signature or TN/orig mismatch (428/436/438-like)."""
    shaken_failed_stale: float = 1.0
    """Verification failed: ``iat`` too old (403 Stale Date)."""
    shaken_failed_cert: float = 1.5
    """Verification failed: certificate could not be fetched or its chain is invalid (437)."""
    number_anonymous: float = 1.0
    """Withheld or anonymous caller identity (policy may also act on it per user)."""
    number_not_a_tn: float = 0.3
    """Caller identity is a SIP user name, not a telephone number."""
    number_not_possible: float = 3.0
    """Caller digits cannot be a number (wrong length / bad leading digit)."""
    number_unallocated: float = 2.0
    """Caller number has a possible length but lies in an unassigned range."""
    number_n11: float = 3.0
    """NANP area code or exchange is N11 (211 … 911): never a real caller."""
    number_fiction: float = 2.5
    """NANP 555-0100 … 555-0199: reserved for fiction."""
    number_premium_rate: float = 1.5
    """Caller is a premium-rate number (callback bait)."""
    number_toll_free: float = 0.3
    """Caller is toll-free (call centres and spoofers alike)."""
    number_foreign: float = 0.5
    """Caller's country differs from the callee's."""
    list_user_block: float = 8.0
    """The callee blocked this number or prefix."""
    list_global_block: float = 4.0
    """A global / imported block list matches."""
    list_global_allow: float = -8.0
    """A global allow list matches (e.g. a bank's verified numbers)."""
    list_dno: float = 8.0
    """Do-Not-Originate: the number never places calls (also a hard override)."""
    learned_allow: float = -5.0
    """The callee called or accepted this number before, with identity at least as strong now."""
    neighbor_equal: float = 3.0
    """Caller equals the callee (classic spoof)."""
    neighbor_leading_digits: float = 1.8
    """Caller shares all but the last ``neighbor_tail_digits`` digits with the callee."""
    neighbor_exchange: float = 1.2
    """Same country code, area code and exchange (NPA-NXX) as the callee."""
    neighbor_area_code: float = 0.3
    """Same country code and area code (weak: most local calls share it)."""
    pattern_rate_minute: float = 1.5
    """Attempts in the last minute at or over ``rate_minute`` (per key)."""
    pattern_rate_hour: float = 1.0
    """Attempts in the last hour at or over ``rate_hour``."""
    pattern_rate_day: float = 0.8
    """Attempts in the last day at or over ``rate_day``."""
    pattern_fanout: float = 2.5
    """Distinct callees in the fan-out window at or over ``fanout``."""
    pattern_concurrent: float = 0.5
    """Calls in progress at or over ``concurrent``."""
    pattern_low_answer: float = 1.0
    """Answer ratio at or under ``answer_ratio`` (after ``min_outcomes`` outcomes)."""
    pattern_short_calls: float = 1.5
    """Share of answered calls shorter than ``short_call_seconds`` at or over ``short_ratio``."""
    pattern_early_cancel: float = 1.0
    """Share of attempts cancelled by the caller within ``early_cancel_seconds``."""
    pattern_sequential: float = 2.5
    """Callees dialled in ascending / adjacent order (list dialler sweep)."""
    pattern_repeat_callee: float = 0.5
    """The same callee called ``repeat_callee`` times or more within an hour (harassment)."""
    pattern_urgent_retry: float = -0.8
    """A low fan-out caller retrying the same callee within minutes (someone needs them)."""
    pattern_new_caller_burst: float = 2.5
    """A source key suddenly brings many never-seen caller numbers (a rotating campaign
    burns one per call) *and* this call's number is new too: the call fits the burst. Counts
    on shared sources as well (it is measured against the source's own history)."""
    pattern_listened: float = -12.0
    """``pattern.listened``: an A-attested caller whose answered calls are listened to
    (``listened_seconds``, few short calls) or who leaves voicemails is a wanted bulk sender
    (alerts, reminders); this offsets its own volume evidence (rates, fan-out, concurrency),
    never more than that evidence and never more than this weight (a broadcast's fan-out,
    minute and hour rates come to about 10)."""
    pattern_new_number: float = 0.3
    """Caller first seen less than ``new_number_seconds`` ago."""
    feedback_unwanted: float = 1.2
    """607 Unwanted from callees, time-decayed count (per log2(1+n))."""
    feedback_reported_spam: float = 1.0
    """User reports "spam", time-decayed count (per log2(1+n))."""
    feedback_reported_ok: float = -1.0
    """User reports "not spam", time-decayed count (per log2(1+n))."""
    feedback_challenge_failed: float = 1.5
    """Challenges failed or abandoned, time-decayed count (per log2(1+n))."""
    feedback_challenge_passed: float = -1.5
    """Challenges passed, time-decayed count (per log2(1+n))."""
    feedback_voicemail: float = -0.3
    """Voicemails left (humans leave messages), time-decayed count (per log2(1+n))."""
    source_bad: float = 1.2
    """Negative feedback attached to the source IP / origid / SPC (per log2(1+n)), times the
    complaints' share of that source's feedback (bad / (bad + good)): a provider's honest
    callers' passed challenges and voicemails dilute its campaigns' complaints."""
    source_recent_bad: float = 2.0
    """Complaints on the source key within the last minutes (the book's ``recent_bad``,
    10-minute half-life; per log2(1+n), times their smoothed share of the key's recent
    feedback): a campaign running through the source now. Stronger than ``source_bad``
    because a call arriving in the same minutes as a burst of complaints most likely
    belongs to it; it is what still catches campaigns on shared sources, whose volume does
    not count."""
    source_good: float = -0.6
    """Positive feedback attached to the source IP / origid / SPC (per log2(1+n))."""
    header_display_name: float = 1.0
    """Display name typical of diallers or other analytics' labels (``V123456789012345``,
    ``SPAM?``, ``Scam Likely``, a bare number differing from the caller's)."""
    source_scanner_ua: float = 3.0
    """User-Agent of a known SIP scanner / attack tool (friendly-scanner, sipvicious, …)."""


@dataclass(frozen=True, slots=True)
class PatternConfig:
    """Call-pattern windows and thresholds (per caller TN, source IP, origid, SPC)."""

    max_callers: int = 100_000
    """Caller TNs held in memory (least recently seen evicted first)."""
    max_sources: int = 20_000
    """Source IPs, origids and SPCs held, each."""
    caller_ring: int = 16
    """Recent attempts remembered per caller TN (fan-out / sequence window)."""
    source_ring: int = 64
    """Recent attempts remembered per source key."""
    outcome_half_life: float = 86_400.0
    """Seconds; answer/short-call/cancel ratios decay with this half-life."""
    recent_half_life: float = 600.0
    """Seconds; a second set of outcome ratios with this short half-life is read for source
    keys (what is happening on a shared source now: a campaign's short, unanswered calls)."""
    max_call_seconds: float = 14_400.0
    """A call with no outcome after this long stops counting as in progress."""
    rate_minute: int = 10
    """Attempts per minute that flag a key."""
    rate_hour: int = 60
    """Attempts per hour that flag a key."""
    rate_day: int = 300
    """Attempts per day that flag a key."""
    fanout_window: float = 600.0
    """Seconds over which distinct callees are counted."""
    fanout: int = 10
    """Distinct callees in ``fanout_window`` that flag a key."""
    concurrent: int = 10
    """Calls in progress that flag a key."""
    min_outcomes: float = 4.0
    """Decayed outcomes needed before ratio signals speak."""
    answer_ratio: float = 0.2
    """Answer ratio at or under which ``pattern.low_answer`` fires."""
    short_call_seconds: float = 6.0
    """An answered call shorter than this is short (97 % of humans listen >= 6 s)."""
    short_ratio: float = 0.6
    """Short-call share at or over which ``pattern.short_calls`` fires."""
    early_cancel_seconds: float = 4.0
    """A CANCEL within this many seconds of the INVITE is early (one-ring dialler)."""
    early_cancel_ratio: float = 0.5
    """Early-CANCEL share at or over which ``pattern.early_cancel`` fires."""
    sequential_gap: int = 10
    """Callees at most this far apart numerically count as adjacent."""
    sequential: int = 2
    """Adjacent ascending steps (3 numbers = 2 steps) that flag a sweep."""
    sequential_share: float = 0.5
    """A sweep needs adjacent steps for at least this share of the key's distinct callees
    in the hour (and this call's callee next to one of them): chance adjacency among a busy
    shared source's hundreds of callees is not a sweep."""
    repeat_callee: int = 5
    """Calls to one callee within an hour that count as harassment."""
    urgent_retry: int = 2
    """Earlier calls to the same callee within ``urgent_retry_window`` that hint urgency."""
    urgent_retry_window: float = 300.0
    """Seconds for the urgent-retry hint."""
    new_number_seconds: float = 86_400.0
    """A caller TN first seen more recently than this is new."""
    volume_kinds: tuple[str, ...] = ("tn", "ip", "origid")
    """Key kinds whose volume statistics (rates, fan-out, concurrency, sweeps, repeats) count.
    SPC is left out by default: one SPC signs for a whole carrier, so its volume says nothing
    about a caller; its ratios (answer, short-call, early CANCEL) still count."""
    shared_min_good: float = 10.0
    """``source.shared``: decayed good outcomes (calls of ``store.long_call_seconds`` or more,
    passed challenges, voicemails left, not-spam reports) a source key needs before it counts
    as shared infrastructure (a carrier's interconnect found without ``[proxy.trunks]``)."""
    shared_good_share: float = 0.6
    """``source.shared``: good outcomes must be at least this share of the key's judged
    outcomes (good + short calls, 607s, spam reports, failed challenges)."""
    shared_min_callers: int = 8
    """``source.shared``: distinct caller numbers among the key's last ``source_ring``
    attempts (one busy caller with its own address is not shared infrastructure)."""
    burst_new_callers: int = 5
    """``pattern.new_caller_burst``: never-seen caller numbers on a source key within
    ``fanout_window`` (this call's included) needed before a burst counts."""
    burst_factor: float = 4.0
    """``pattern.new_caller_burst``: ... and at least this many times what the key's own
    history predicts for the window (a big carrier always brings new numbers)."""
    burst_min_history: float = 21_600.0
    """``pattern.new_caller_burst``: seconds of history a source key needs before its
    baseline is trusted. Everybody is new while a deployment (or a key) warms up, and the
    morning's rising traffic would look like a burst against an hour-old baseline; a young
    key is not shared yet, so its fan-out still speaks."""
    listened_seconds: float = 12.0
    """``pattern.listened``: mean talk time of the caller's answered calls at least this."""
    listened_voicemails: float = 3.0
    """``pattern.listened``: or at least this many (decayed) voicemails left by the caller,
    outnumbering its 607s and spam reports 2:1."""
    listened_short_ratio: float = 0.2
    """``pattern.listened``: share of the caller's answered calls under
    ``short_call_seconds`` at most this."""
    long_volume_kinds: tuple[str, ...] = ("tn", "origid")
    """Key kinds whose *long-window* volume (``rate_hour``, ``rate_day``) counts. Not the
    source IP by default: an address's hour and day describe its provider's day (a campaign
    that ended hours ago, a busy afternoon), not the call at hand; the fan-out, minute rate
    and new-caller burst of the address still speak for what is happening now."""
    count_trunk_ips: bool = False
    """Count calls from a configured trunk under their source IP too. Off by default: a
    carrier's SBC carries everybody's calls from one address."""


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """Score bands, actions and reject signalling (global defaults; users may shift them)."""

    tag_at: float = 25.0
    """Score at or above which the band is ``suspicious``."""
    challenge_at: float = 50.0
    """Score at or above which the band is ``likely``."""
    voicemail_at: float = 75.0
    """Score at or above which the band is ``spam``."""
    reject_at: float = 90.0
    """Score at or above which the band is ``certain``."""
    action_ok: ActionName = "forward"
    """Action for the ``ok`` band (score below ``tag_at``)."""
    action_suspicious: ActionName = "forward_tagged"
    """Action for the ``suspicious`` band."""
    action_likely: ActionName = "challenge"
    """Action for the ``likely`` band."""
    action_spam: ActionName = "voicemail"
    """Action for the ``spam`` band."""
    action_certain: ActionName = "reject"
    """Action for the ``certain`` band."""
    anonymous: Literal["score", "forward", "challenge", "voicemail", "reject"] = "score"
    """Anonymous calls: ``score`` like any call, or always take this action (reject = 433)."""
    strictness_step: float = 10.0
    """Points every threshold moves per step of a user's ``strictness`` (+ = stricter)."""
    reject_code: Literal[603, 607, 608] = 608
    """Code for analytics rejects: 608 (RFC 8688, with jCard), 603 (US 603+), or 607."""
    user_block_code: Literal[603, 607, 608] = 607
    """Code when the callee's own block list decided (RFC 8197)."""
    network_blocked_phrase: bool = False
    """With 603: send the ATIS-1000099 status line ``603 Network Blocked`` (US mode)."""
    redress_uri: str = ""
    """Redress contact: URL of a signed jCard (608 Call-Info, purpose=jwscard), else omitted."""
    redress_contact: str = ""
    """Redress contact text for the Reason header (tel:, mailto: or https: URI)."""
    score_header: str = "X-Spitwall-Score"
    """Header added to tagged (and monitored) calls: ``<score>;label=<label>;reasons=<a,b>``."""
    monitor: bool = False
    """Deployment-wide monitor mode: decide and tag, but always forward."""
    block_invalid_numbers: bool = True
    """Hard override: impossible / N11 caller numbers score 100 (FCC 2017 permits blocking)."""
    emergency_numbers: tuple[str, ...] = ("911", "112", "999", "000", "110", "119", "118", "933")
    """Callees never screened (dialled digits, national or with country code)."""
    critical_callers: tuple[str, ...] = ()
    """Caller numbers (E.164 digits) never blocked: PSAP callbacks, hospitals, schools."""
    volume_only_action: ActionName = "voicemail"
    """Action instead of ``reject`` when only call volume (rates, fan-out, concurrency,
    sweeps, repeats) and infrastructure evidence put a call in the reject band: a wanted
    broadcast (alerts, reminders) looks like that too, and rejecting it is the worst
    outcome; voicemail keeps its message for the callee."""
    bulk_sender_action: ActionName = "voicemail"
    """Action instead of ``challenge`` for a caller ``pattern.listened`` recognised as a
    wanted bulk sender (A-attested, calls listened to or voicemails left): a challenge tests
    for a human, which a notification bot never is; voicemail keeps its message."""
    global_allow_attested_override: bool = True
    """An A-attested call from a number on the global allow list is forwarded untouched
    (override ``global_allow_attested``): wanted automated callers (alerts, reminders) the
    operator listed. Off: the entry only adds the ``list.global_allow`` weight."""


@dataclass(frozen=True, slots=True)
class SignalConfig:
    """Tuning of signals that are not plain weights."""

    neighbor_tail_digits: int = 2
    """``neighbor.leading_digits`` fires when only this many final digits differ."""
    neighbor_attested_factor: float = 0.25
    """Neighbour-spoofing weights are scaled by this for A-attested calls (number vouched for)."""
    unattested_positive_factor: float = 0.25
    """Positive feedback on a caller TN counts this much when the new call is not A-attested."""
    max_multiplier: float = 2.0
    """Cap on how far a graded signal may exceed its weight (count and rate signals)."""
    infra_cap: float = 4.0
    """Cap on the sum of positive infrastructure evidence for one call (``signals.infra_cap``
    reason when it binds). Volume, sweeps and complaints on one source key all measure one
    fact — a campaign uses that source — and are strongly correlated, so they must not add
    up to certainty about a caller; the caller's own evidence (learned allow, attestation,
    history) then still decides. 0 = no cap."""
    source_pseudo_good: float = 1.0
    """Complaints on a source key count by their share ``bad / (bad + good + this)``:
    additive smoothing, so one failed challenge on a key with no other feedback is not read
    as "100 % complaints"."""
    established_infra_factor: float = 0.5
    """Positive infrastructure evidence (source IP/origid/SPC reputation, patterns seen only
    on those keys) is scaled by this when the caller's own number is established (first
    seen at least ``patterns.new_number_seconds`` ago and showing none of that behaviour
    itself). 1.0 = off. Validated with ``python -m bench.traffic`` (docs/detection.md)."""


# --- storage side: the SQLite store, lists, users, feedback (store/lists/users/feedback) ----


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """The reputation database and how outcomes turn into reputation (``[reputation.store]``)."""

    path: str = ""
    """SQLite file; empty = ``<data_dir>/reputation.sqlite3``."""
    batch_window: float = 0.05
    """Seconds the writer gathers writes into one commit. A killed process loses at most the
    fire-and-forget writes (call records, counters) of the last window; awaited writes (API
    changes) are committed before the caller continues."""
    lock_timeout: float = 2.0
    """Seconds to wait for another connection's lock before failing (at start: a clear error)."""
    check_on_open: Literal["quick", "full", "none"] = "quick"
    """Integrity check at start: ``quick`` (PRAGMA quick_check), ``full``, or ``none``."""
    read_threads: int = 2
    """Threads serving reads that are not in memory (call history, voicemails)."""
    half_life_days: float = 30.0
    """Half-life of reputation counters (feedback, reports, 607s): evidence fades gradually."""
    recent_half_life: float = 600.0
    """Seconds; half-life of the in-memory "recent" complaint counters on sources
    (``source.<kind>.recent_bad``): what a shared source is doing now, not over the month."""
    long_call_seconds: float = 60.0
    """An answered call at least this long counts as positive evidence (``long_calls``)."""
    learn_after_seconds: float = 60.0
    """A call the user talked on this long teaches learned allow (if the user's setting allows)."""
    tn_evidence_min_attest: Literal["A", "B", "C", "none"] = "A"
    """Weakest verified attestation at which negative/positive evidence also counts against the
    caller number itself; below it, evidence attaches only to source IP, origid and SPC."""
    max_calls_in_memory: int = 200_000
    """Recent calls whose context is kept in memory for outcomes; older ones are read from disk."""
    history_days: float = 365.0
    """Call records and feedback events older than this are deleted by the hourly housekeeping
    (voicemail rows stay until the user deletes them); 0 keeps everything."""

    def __post_init__(self) -> None:
        # the loader prefixes the table's key ("reputation.store"); a zero half-life would
        # otherwise fail later, inside the store, without naming the key
        for name in ("half_life_days", "recent_half_life"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be positive")


@dataclass(frozen=True, slots=True)
class ReputationConfig:
    default_region: str = "US"
    """ISO region used to read national numbers (phonenumbers region code)."""
    weights: WeightsConfig = field(default_factory=WeightsConfig)
    """``[reputation.weights]``: log-odds weight per signal."""
    patterns: PatternConfig = field(default_factory=PatternConfig)
    """``[reputation.patterns]``: call-pattern windows and thresholds."""
    signals: SignalConfig = field(default_factory=SignalConfig)
    """``[reputation.signals]``: neighbour-spoofing and feedback tuning."""
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    """``[reputation.policy]``: bands, actions, reject codes, monitor mode, emergency numbers."""
    store: StoreConfig = field(default_factory=StoreConfig)
    """``[reputation.store]``: the SQLite file, writer batching, feedback decay and weighting."""
