"""Small builders shared by the reputation tests (test doubles for the store's lookups)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from reputation.config import ReputationConfig
from reputation.model import CallFacts
from reputation.numbers import read_number
from reputation.signals import SignalInput

PASSED = "TN-Validation-Passed"
FAILED = "TN-Validation-Failed"
NONE = "No-TN-Validation"


def facts(
    caller: str | None = "+13125557788",
    callee: str = "+12124561234",
    *,
    attest: str | None = None,
    verstat: str | None = None,
    t: float = 1_000_000.0,
    call_id: str = "call-1",
    **kw: object,
) -> CallFacts:
    if attest is not None and verstat is None:
        verstat = PASSED
    return CallFacts(
        call_id=call_id,
        caller=caller,
        callee=callee,
        time=t,
        attest=attest,
        verstat=verstat,
        **kw,  # type: ignore[arg-type]
    )


def signal_input(
    caller: str | None = "+13125557788",
    callee: str = "+12124561234",
    *,
    config: ReputationConfig | None = None,
    user_id: int | None = 7,
    privacy: str | None = None,
    **kw: object,
) -> SignalInput:
    f = facts(caller, callee, privacy=privacy, **kw)
    return SignalInput(
        facts=f,
        caller=read_number(f.caller, "US", privacy),
        callee=read_number(f.callee, "US"),
        config=config or ReputationConfig(),
        now=f.time,
        user_id=user_id,
    )


@dataclass(frozen=True)
class Entry:
    pattern: str
    source: str = "api"


@dataclass(frozen=True)
class Hit:
    kind: str
    scope: str
    entry: Entry = field(default_factory=lambda: Entry("+13125557788"))


@dataclass(frozen=True)
class Counters:
    unwanted_607: float = 0.0
    reports_spam: float = 0.0
    reports_not_spam: float = 0.0
    challenge_failed: float = 0.0
    challenge_passed: float = 0.0
    voicemail_left: float = 0.0
    first_seen: float | None = None
    long_calls: float = 0.0
    short_calls: float = 0.0
    recent_bad: float = 0.0
    recent_good: float = 0.0


@dataclass(frozen=True)
class Learned:
    strength: int


def hits(*pairs: tuple[str, str]) -> Sequence[Hit]:
    return [Hit(kind, scope) for kind, scope in pairs]
