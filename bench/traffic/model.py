"""The seeded traffic model: who calls the subscribers, how, and how they answer.

Theory of operation. A :class:`Scenario` (every knob has a default taken from the
published figures in ``shared/refs/spit-detection.md`` §3.2, or is marked as our
assumption) and a seed give one deterministic list of :class:`CallSpec` in time order, plus
the subscribers' outbound calls (:class:`Outbound`, which teach "learned allow"). Three
classes of inbound call:

* **human** — each subscriber has a small social graph (5-25 contacts drawn from a shared
  pool of people, Zipf-weighted, so some people call several subscribers); 85 % of human
  calls come from contacts, the rest from strangers (a delivery, a doctor's office).
  Subscribers call their contacts too (reciprocity). Arrivals are Poisson with a daytime
  profile (08-21 h, peak 09-15 h). Every person keeps one carrier and one attestation level.
* **wanted** — automated callers the subscriber signed up for (pharmacy, school, bank
  alerts): a few stable caller IDs per organisation, mostly A-attested, individual
  reminders plus the occasional broadcast to the whole audience within minutes (a school
  closure) — a fan-out that looks like a campaign and must not be treated like one.
* **robocall** — campaigns: tens to hundreds of calls each to our lines (log-uniform),
  at 1-12 calls a minute, callees at random or swept in ascending order (list diallers),
  one attestation level per campaign, and a caller-ID policy per campaign: ``fresh`` (a
  new number per call), ``pool`` (a handful reused), ``neighbour`` (a number sharing the
  callee's area code/exchange) — plus a per-call neighbour-spoofing share on the others.

Attestation: the signed share and the per-level robocall rates (TransNexus Aug-2022: A
3.4 %, B 26.5 %, C 37.6 %, unsigned 7.0 %) give P(level | robocall) and P(level | other);
with the default small-carrier mix (63 % unsigned; signed A 70 / B 10 / C 20) the robocall
share comes out at 9.1 %. Ingress: ``peers`` gives every originating network its own
interconnect address (campaigns come from VoIP providers that also carry some legitimate
customers); ``trunk`` sends everything through two upstream trunk addresses, as at an
enterprise PBX behind one SIP provider.

Callee-side behaviour (answer, talk time, 607, caller CANCEL, passing a challenge, leaving
a voicemail) is drawn here, once, so the in-process and the over-SIP runs see the same
subscribers. Published anchors: 94 % of unidentified calls unanswered, 97 % of humans
listen >= 6 s; talk-time and ring-time distributions are our assumptions.
"""

from __future__ import annotations

import bisect
import math
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from reputation.numbers import NumberFlag, read_number

Kind = Literal["human", "wanted", "robocall"]
CliPolicy = Literal["fresh", "pool", "neighbour"]
LEVELS = ("A", "B", "C", "unsigned")

# NANP area codes the model draws from (all assigned); subscribers live in HOME_BLOCKS.
NPAS = (
    "201",
    "212",
    "214",
    "215",
    "267",
    "301",
    "312",
    "404",
    "415",
    "469",
    "503",
    "602",
    "609",
    "617",
    "702",
    "713",
    "720",
    "732",
    "737",
    "832",
    "856",
    "904",
    "917",
    "949",
)
HOME_BLOCKS = ("609392", "609394", "609771", "856428", "856795", "215732")
TOLL_FREE = ("800", "833", "844", "855", "866", "877", "888")


@dataclass(frozen=True, slots=True)
class CampaignKnobs:
    """Robocall campaigns (issue 4: the scenario knobs)."""

    share: float = 0.085
    """Robocalls as a share of all calls (TransNexus 2022: 7.7-8.9 %)."""
    size_min: int = 20
    size_max: int = 300
    """Calls per campaign that reach our lines, log-uniform (Prasad 2020: tens to hundreds)."""
    cli_policy: tuple[tuple[str, float], ...] = (("fresh", 0.5), ("pool", 0.3), ("neighbour", 0.2))
    """Share of campaigns per caller-ID policy (Prasad 2020: little number reuse)."""
    pool_size: int = 4
    """Caller IDs a ``pool`` campaign cycles through."""
    neighbour_area: float = 0.06
    """Share of calls of fresh/pool campaigns spoofing the callee's area code (Prasad 2020)."""
    neighbour_exchange: float = 0.03
    """Of those, the share also spoofing the exchange (NPA-NXX)."""
    neighbour_policy_share: float = 1.0
    """Share of a ``neighbour`` campaign's calls that spoof the callee's exchange (3-30 %
    sweeps use 0.03-0.3; 1.0 = every call)."""
    rate_min: float = 1.0
    rate_max: float = 12.0
    """Calls a minute to our lines while a campaign runs (log-uniform) [assumption]."""
    sequential_share: float = 0.3
    """Share of campaigns sweeping callees in ascending order (list diallers) [assumption]."""
    one_ring_share: float = 0.15
    """Share of campaigns that CANCEL after one ring (callback bait) [assumption]."""
    answer: float = 0.3
    """P(a forwarded robocall is answered) (Hiya: 94 % of unidentified calls unanswered;
    higher here because spoofed neighbours get answered) [assumption]."""
    unwanted_607: float = 0.08
    """P(the callee's phone answers a forwarded robocall with 607 Unwanted) [assumption]."""
    attest: tuple[tuple[str, float], ...] | None = None
    """P(level | robocall); None = derived from the scenario's signing mix and rates."""
    rogue_share: float = 0.5
    """Share of campaigns from providers that carry no legitimate traffic (peers ingress)."""


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str = "published"
    seed: int = 1
    subscribers: int = 2000
    days: float = 3.0
    start: float = 0.0
    """UNIX time of the first day's midnight (0 = the evaluator picks today's)."""
    human_per_day: float = 3.0
    """Inbound human calls per subscriber per day [assumption; no published figure]."""
    outbound_per_day: float = 2.0
    """Calls a subscriber makes to contacts per day (teaches learned allow)."""
    outbound_learning: bool = True
    """Feed subscribers' outbound calls to the store (``Feedback.learn_outbound``)."""
    contacts: tuple[int, int] = (5, 25)
    stranger_share: float = 0.15
    wanted_share: float = 0.03
    """Wanted automated calls as a share of all calls (YouMail: alerts and reminders are
    about a quarter to a third of automated calls)."""
    wanted_orgs: int = 12
    broadcast_share: float = 0.4
    """Share of wanted calls that belong to broadcasts (whole audience in minutes)."""
    wanted_allowlisted: float = 0.0
    """Share of wanted organisations whose caller IDs the operator put on the global allow
    list (the mitigation for alert broadcasts)."""
    signing: tuple[tuple[str, float], ...] = (
        ("A", 0.259),
        ("B", 0.037),
        ("C", 0.074),
        ("unsigned", 0.63),
    )
    """Share of *all* terminating calls per level (small carrier: 37 % signed,
    A 70 / B 10 / C 20 of them [assumption for the split])."""
    robocall_rate: tuple[tuple[str, float], ...] = (
        ("A", 0.0342),
        ("B", 0.2652),
        ("C", 0.376),
        ("unsigned", 0.0704),
    )
    """Robocall share per level (TransNexus Aug-2022)."""
    campaigns: CampaignKnobs = field(default_factory=CampaignKnobs)
    ingress: Literal["peers", "trunk"] = "peers"
    trunk_ips: int = 2
    forced_campaigns: tuple[tuple[str, str, int], ...] = ()
    """Extra campaigns ``(cli_policy, level, calls)`` placed at noon of day 1 (tests)."""


@dataclass(frozen=True, slots=True)
class Behaviour:
    """What the far ends do with this call, drawn once per call."""

    answer: bool
    ring: float
    """Seconds from INVITE to answer (or to the caller's CANCEL when not answered)."""
    talk: float
    """Seconds of talk when answered."""
    unwanted_607: bool = False
    """The callee's phone answers 607 Unwanted instead of ringing on."""
    one_ring: bool = False
    """The caller CANCELs after one ring."""
    passes_challenge: bool = False
    leaves_voicemail: bool = False


@dataclass(frozen=True, slots=True)
class CallSpec:
    id: int
    time: float
    kind: Kind
    caller: str
    """E.164 digits without '+'."""
    callee: str
    subscriber: int
    level: str
    """A, B, C or unsigned."""
    carrier: str
    """Originating network (signs the call, owns the interconnect address)."""
    source_ip: str
    origid: str
    behaviour: Behaviour
    campaign: int | None = None
    seq: int | None = None
    """1-based position of the call in its campaign."""
    cli_policy: str | None = None
    org: int | None = None
    known: bool = False
    """Human call from one of the subscriber's contacts."""

    @property
    def call_id(self) -> str:
        return f"bench-{self.id}@traffic.invalid"


@dataclass(frozen=True, slots=True)
class Outbound:
    time: float
    subscriber: int
    tn: str


@dataclass(frozen=True, slots=True)
class Traffic:
    scenario: Scenario
    subscribers: tuple[str, ...]
    calls: tuple[CallSpec, ...]
    outbound: tuple[Outbound, ...]
    carriers: tuple[str, ...]
    """Every network that signs calls (one certificate each)."""
    ips: dict[str, str]
    """Carrier → interconnect address (peers ingress)."""
    global_allow: tuple[str, ...] = ()
    """Numbers the operator allow-lists globally (wanted organisations' caller IDs)."""


def _mix(pairs: Sequence[tuple[str, float]]) -> tuple[list[str], list[float]]:
    names = [k for k, _ in pairs]
    total = sum(w for _, w in pairs)
    return names, [w / total for _, w in pairs]


def level_mix(s: Scenario) -> tuple[dict[str, float], dict[str, float], float]:
    """P(level | robocall), P(level | not robocall) and the implied robocall share."""
    sign = dict(s.signing)
    rate = dict(s.robocall_rate)
    robo = sum(sign[k] * rate[k] for k in LEVELS)
    p_robo = {k: sign[k] * rate[k] / robo for k in LEVELS}
    p_other = {k: sign[k] * (1 - rate[k]) / (1 - robo) for k in LEVELS}
    return p_robo, p_other, robo


# Daytime profile: weight per hour (08-21 h, peak 09-15 h; FCC complaints).
_HOURS = [
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0.3,
    0.8,
    1.2,
    1.3,
    1.3,
    1.2,
    1.3,
    1.3,
    1.2,
    1.0,
    0.9,
    0.8,
    0.7,
    0.5,
    0.3,
    0.1,
    0,
]
_CUM = [sum(_HOURS[: i + 1]) for i in range(24)]


class _Gen:
    def __init__(self, s: Scenario) -> None:
        self.s = s
        self.r = random.Random(s.seed)
        self.used: set[str] = set()

    # -- numbers ---------------------------------------------------------------------------

    def number(self, npa: str | None = None, nxx: str | None = None, tail: int = 4) -> str:
        """A fresh, valid-looking NANP number (no 555, no N11; checked like the scorer)."""
        for _ in range(100):
            a = npa or self.r.choice(NPAS)
            b = nxx or f"{self.r.randint(2, 9)}{self.r.randint(0, 9)}{self.r.randint(0, 9)}"
            if b[1:] == "11" or b == "555":
                continue
            n = f"1{a}{b}{self.r.randint(0, 10**tail - 1):0{tail}d}"
            if n in self.used:
                continue
            info = read_number("+" + n, "US")
            if info.digits and not (info.flags - {NumberFlag.TOLL_FREE}):
                self.used.add(n)
                return n
        raise RuntimeError("cannot draw a fresh number")

    def daytime(self, day: int) -> float:
        x = self.r.random() * _CUM[-1]
        h = bisect.bisect_left(_CUM, x)
        return self.s.start + day * 86400 + h * 3600 + self.r.random() * 3600

    def pick(self, names: list[str], weights: list[float]) -> str:
        return self.r.choices(names, weights)[0]

    def loguniform(self, lo: float, hi: float) -> float:
        return math.exp(self.r.uniform(math.log(lo), math.log(hi)))


def generate(s: Scenario) -> Traffic:
    """The deterministic traffic of scenario ``s`` (same seed, same calls)."""
    g = _Gen(s)
    r = g.r
    p_robo, p_other, _ = level_mix(s)
    robo_names, robo_w = _mix(tuple(s.campaigns.attest or tuple(p_robo.items())))
    other_names, other_w = _mix(tuple(p_other.items()))
    days = max(1, math.ceil(s.days))

    subs = [g.number(b[:3], b[3:]) for b in (r.choice(HOME_BLOCKS) for _ in range(s.subscribers))]
    big = [f"carrier{i}" for i in range(1, 4)]
    voip = [f"voip{i}" for i in range(1, 9)]
    rogue = [f"rogue{i}" for i in range(1, 5)]
    carriers = big + voip + rogue
    ips = {c: f"10.{1 + i // 200}.{i % 200}.{10 + i}" for i, c in enumerate(carriers)}
    trunk = [f"10.99.0.{i + 1}" for i in range(s.trunk_ips)]

    def ip_of(carrier: str) -> str:
        if s.ingress == "trunk":
            return r.choice(trunk)
        return ips[carrier]

    # people: carrier, level and origid fixed per person
    n_people = max(50, s.subscribers * 6)
    people = [g.number() for _ in range(n_people)]
    p_carrier = [r.choices(big + voip, [0.27, 0.27, 0.26] + [0.025] * 8)[0] for _ in people]
    p_level = [g.pick(other_names, other_w) for _ in people]
    p_origid = [str(uuid.UUID(int=r.getrandbits(128))) for _ in people]
    zipf = [1.0 / (k + 1) for k in range(30)]
    contacts = []
    for _ in subs:
        k = r.randint(*s.contacts)
        contacts.append(r.sample(range(n_people), k))

    calls: list[dict] = []  # type: ignore[type-arg]
    outbound: list[Outbound] = []

    def human_behaviour(known: bool) -> Behaviour:
        answer = r.random() < (0.75 if known else 0.5)
        talk = max(10.0, r.lognormvariate(math.log(90), 1.0))
        return Behaviour(
            answer=answer,
            ring=r.uniform(3, 15) if answer else r.uniform(20, 35),
            talk=talk,
            passes_challenge=r.random() < 0.85,
            leaves_voicemail=r.random() < 0.5,
        )

    # -- human calls and outbound calls ---------------------------------------------------
    for si, sub in enumerate(subs):
        for day in range(days):
            for _ in range(_poisson(r, s.human_per_day)):
                t = g.daytime(day)
                known = r.random() >= s.stranger_share
                if known:
                    mine = contacts[si]
                    pi = r.choices(mine, zipf[: len(mine)])[0]
                    caller, carrier, level, origid = (
                        people[pi],
                        p_carrier[pi],
                        p_level[pi],
                        p_origid[pi],
                    )
                else:
                    caller = g.number()
                    carrier = r.choices(big + voip, [0.27, 0.27, 0.26] + [0.025] * 8)[0]
                    level = g.pick(other_names, other_w)
                    origid = str(uuid.UUID(int=r.getrandbits(128)))
                calls.append(
                    dict(
                        time=t,
                        kind="human",
                        caller=caller,
                        callee=sub,
                        subscriber=si,
                        level=level,
                        carrier=carrier,
                        origid=origid,
                        known=known,
                        behaviour=human_behaviour(known),
                    )
                )
            for _ in range(_poisson(r, s.outbound_per_day)):
                mine = contacts[si]
                pi = r.choices(mine, zipf[: len(mine)])[0]
                outbound.append(Outbound(g.daytime(day), si, people[pi]))

    n_human = len(calls)
    total = n_human / max(1e-9, 1 - s.campaigns.share - s.wanted_share)

    # -- wanted automated callers ----------------------------------------------------------
    n_wanted = round(total * s.wanted_share)
    orgs = []
    for _ in range(s.wanted_orgs):
        tf = r.random() < 0.5
        clis = [g.number(r.choice(TOLL_FREE)) if tf else g.number() for _ in range(r.randint(1, 3))]
        audience = r.sample(range(len(subs)), max(1, int(len(subs) * r.uniform(0.03, 0.2))))
        level = "A" if r.random() < 0.9 else "unsigned"
        carrier = r.choice(big + voip)
        orgs.append((clis, audience, level, carrier, str(uuid.UUID(int=r.getrandbits(128)))))
    listed = [n for o in orgs[: round(len(orgs) * s.wanted_allowlisted)] for n in o[0]]

    def wanted_behaviour() -> Behaviour:
        answer = r.random() < 0.55
        return Behaviour(
            answer=answer,
            ring=r.uniform(3, 15) if answer else r.uniform(25, 35),
            talk=r.uniform(15, 60),
            passes_challenge=False,
            leaves_voicemail=r.random() < 0.7,
        )

    made = 0
    n_broadcast = int(n_wanted * s.broadcast_share)
    while made < n_broadcast:
        oi = r.randrange(len(orgs))
        clis, audience, level, carrier, origid = orgs[oi]
        t = g.daytime(r.randrange(days))
        rate = r.uniform(5, 20) / 60.0
        for j, si in enumerate(audience):
            calls.append(
                dict(
                    time=t + j / rate,
                    kind="wanted",
                    caller=r.choice(clis),
                    callee=subs[si],
                    subscriber=si,
                    level=level,
                    carrier=carrier,
                    origid=origid,
                    org=oi,
                    behaviour=wanted_behaviour(),
                )
            )
            made += 1
    while made < n_wanted:
        oi = r.randrange(len(orgs))
        clis, audience, level, carrier, origid = orgs[oi]
        si = r.choice(audience)
        calls.append(
            dict(
                time=g.daytime(r.randrange(days)),
                kind="wanted",
                caller=r.choice(clis),
                callee=subs[si],
                subscriber=si,
                level=level,
                carrier=carrier,
                origid=origid,
                org=oi,
                behaviour=wanted_behaviour(),
            )
        )
        made += 1

    # -- robocall campaigns ----------------------------------------------------------------
    ck = s.campaigns
    n_robo = round(total * ck.share)
    pol_names, pol_w = _mix(ck.cli_policy)
    order = sorted(range(len(subs)), key=lambda i: subs[i])
    plan: list[tuple[str, str, int]] = list(s.forced_campaigns)
    budget = n_robo
    levels, policies = _Quota(robo_names, robo_w), _Quota(pol_names, pol_w)
    while budget > 0:
        size = max(1, min(budget, int(g.loguniform(ck.size_min, ck.size_max))))
        plan.append((policies.take(size), levels.take(size), size))
        budget -= size
    for ci, (policy, level, size) in enumerate(plan):
        forced = ci < len(s.forced_campaigns)
        if level == "A":
            policy = "pool"  # A: the provider vouches for the numbers, so they are its own
        rogue_src = r.random() < ck.rogue_share
        carrier = r.choice(rogue if rogue_src else voip)
        origid = str(uuid.UUID(int=r.getrandbits(128)))
        rate = g.loguniform(ck.rate_min, ck.rate_max) / 60.0
        t0 = s.start + 12 * 3600 if forced else g.daytime(r.randrange(days))
        one_ring = r.random() < ck.one_ring_share
        if r.random() < ck.sequential_share:
            first = r.randrange(len(order))
            targets = [order[(first + j) % len(order)] for j in range(size)]
        else:
            targets = [r.randrange(len(subs)) for _ in range(size)]
        pool = [g.number() for _ in range(ck.pool_size)]
        t = t0
        for j, si in enumerate(targets):
            callee = subs[si]
            if policy == "neighbour" and r.random() < ck.neighbour_policy_share:
                caller = g.number(callee[1:4], callee[4:7])
            elif r.random() < ck.neighbour_area and policy != "pool":
                exch = r.random() < ck.neighbour_exchange / max(1e-9, ck.neighbour_area)
                caller = g.number(callee[1:4], callee[4:7] if exch else None)
            elif policy == "pool":
                caller = pool[j % len(pool)]
            else:
                caller = g.number()
            answer = r.random() < ck.answer
            p607 = ck.unwanted_607 / (1 - ck.answer)  # of the calls not answered
            beh = Behaviour(
                answer=answer and not one_ring,
                ring=r.uniform(1, 3)
                if one_ring
                else (r.uniform(3, 12) if answer else r.uniform(15, 25)),
                talk=r.uniform(1, 8),
                unwanted_607=not one_ring and not answer and r.random() < p607,
                one_ring=one_ring,
            )
            calls.append(
                dict(
                    time=t,
                    kind="robocall",
                    caller=caller,
                    callee=callee,
                    subscriber=si,
                    level=level,
                    carrier=carrier,
                    origid=origid,
                    campaign=ci,
                    seq=j + 1,
                    cli_policy=policy,
                    behaviour=beh,
                )
            )
            t += r.expovariate(rate)

    calls.sort(key=lambda c: c["time"])
    specs = tuple(
        CallSpec(id=i + 1, source_ip=ip_of(c["carrier"]), **c) for i, c in enumerate(calls)
    )
    outbound.sort(key=lambda o: o.time)
    return Traffic(s, tuple(subs), specs, tuple(outbound), tuple(carriers), ips, tuple(listed))


class _Quota:
    """Assigns campaigns to categories so that the *calls* match the target shares
    (a random draw per campaign is too lumpy with a dozen campaigns)."""

    def __init__(self, names: list[str], weights: list[float]) -> None:
        self.target = dict(zip(names, weights, strict=True))
        self.got = dict.fromkeys(names, 0.0)

    def take(self, size: int) -> str:
        total = sum(self.got.values()) + size
        best = max(self.target, key=lambda k: self.target[k] * total - self.got[k])
        self.got[best] += size
        return best


def _poisson(r: random.Random, lam: float) -> int:
    """Knuth's method (small means only)."""
    if lam <= 0:
        return 0
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= r.random()
        if p <= limit:
            return k
        k += 1
