"""The IVR flow of one diverted call: a pure state machine (no pjsua2, no clock, no I/O).

Theory of operation
-------------------
The pjsua2 agent feeds events (each carrying ``now``, monotonic seconds) and performs the
actions that come back, in order. The flow never reads a clock: it keeps one deadline,
exposed by :meth:`Flow.deadline`, and the agent sends :class:`Tick` when it passes. Prompt
ends are events too (:class:`PlayDone`): the agent knows how long the WAVs are.

Challenge (``mode="challenge"``)::

    OFFERED --Offered--> ANSWERING (Answer) --MediaReady--> PROMPTING (Play intro+code)
    PROMPTING --PlayDone--> COLLECTING (deadline = now + digit_timeout)
    PROMPTING/COLLECTING --Digit--> COLLECTING (barge-in stops the prompt; deadline reset)
    COLLECTING --len(code) digits or '#'--> right: CONNECTING (Report PASSED, PlaceCall)
                                            wrong: PROMPTING again, or the end below
    COLLECTING --Tick--> a try without (complete) input: PROMPTING again, or the end below
    end of tries --> Report FAILED (some digit was pressed) or TIMED_OUT (none ever was),
                     then voicemail (if offered) or CLOSING (goodbye, HangUp)
    CONNECTING --CalleeAnswered--> BRIDGED (Bridge) --either side ends--> DONE
    CONNECTING --CalleeEnded/Tick(ring_timeout)--> voicemail (if offered) or CLOSING

Voicemail (``mode="voicemail"``, or after a failed challenge/callee when offered)::

    GREETING (Play greeting+beep) --PlayDone--> RECORDING (StartRecording,
    deadline = now + max_record) --Tick / Silence / CallerHangup--> StopRecording,
    Report VOICEMAIL (speech >= min_message) or NO_MESSAGE, then CLOSING or DONE.
    A full mailbox plays ``mailbox_full`` and reports MAILBOX_FULL instead.

A caller hang-up in ANSWERING/PROMPTING/COLLECTING reports HUNG_UP. Every call ends in DONE
with exactly one challenge outcome (challenge mode) and at most one voicemail outcome.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

DIGITS = "0123456789"


class Outcome(enum.StrEnum):
    """What is reported to the main process (a reputation signal each)."""

    PASSED = "passed"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    HUNG_UP = "hung_up"
    VOICEMAIL = "voicemail"
    NO_MESSAGE = "no_message"
    MAILBOX_FULL = "mailbox_full"
    REJECTED_BUSY = "rejected_busy"


class State(enum.Enum):
    OFFERED = "offered"
    ANSWERING = "answering"
    PROMPTING = "prompting"
    COLLECTING = "collecting"
    CONNECTING = "connecting"
    BRIDGED = "bridged"
    GREETING = "greeting"
    RECORDING = "recording"
    CLOSING = "closing"
    DONE = "done"


# ---- events (inputs) -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Offered:
    now: float


@dataclass(frozen=True, slots=True)
class MediaReady:
    now: float


@dataclass(frozen=True, slots=True)
class PlayDone:
    now: float


@dataclass(frozen=True, slots=True)
class Digit:
    digit: str
    now: float


@dataclass(frozen=True, slots=True)
class Tick:
    now: float


@dataclass(frozen=True, slots=True)
class Silence:
    """The caller has been silent since ``since`` (seconds), long enough to stop recording."""

    since: float
    now: float


@dataclass(frozen=True, slots=True)
class CallerHangup:
    now: float


@dataclass(frozen=True, slots=True)
class CalleeAnswered:
    now: float


@dataclass(frozen=True, slots=True)
class CalleeEnded:
    """The outbound leg failed (``code`` >= 300, or 0 for a local error) or hung up."""

    now: float
    code: int = 0


Event = (
    Offered
    | MediaReady
    | PlayDone
    | Digit
    | Tick
    | Silence
    | CallerHangup
    | CalleeAnswered
    | CalleeEnded
)

# ---- actions (outputs) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    pass


@dataclass(frozen=True, slots=True)
class Play:
    """Play these prompts in order (names under the prompts directory, without .wav);
    replaces whatever is playing. The agent answers with PlayDone when they end."""

    prompts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StopPlay:
    pass


@dataclass(frozen=True, slots=True)
class StartRecording:
    max_seconds: float


@dataclass(frozen=True, slots=True)
class StopRecording:
    keep: bool
    speech_seconds: float


@dataclass(frozen=True, slots=True)
class PlaceCall:
    """Call the original callee through the proxy, with a pass token."""

    caller: str
    callee: str


@dataclass(frozen=True, slots=True)
class Bridge:
    pass


@dataclass(frozen=True, slots=True)
class HangUpCallee:
    pass


@dataclass(frozen=True, slots=True)
class HangUp:
    """End the caller's leg (and the callee's, if any)."""


@dataclass(frozen=True, slots=True)
class Report:
    outcome: Outcome
    tries: int
    digits_entered: int


Action = (
    Answer
    | Play
    | StopPlay
    | StartRecording
    | StopRecording
    | PlaceCall
    | Bridge
    | HangUpCallee
    | HangUp
    | Report
)

# ---- parameters -------------------------------------------------------------------------


class Rng(Protocol):
    def randint(self, a: int, b: int) -> int: ...


def make_code(rng: Rng, min_digits: int = 1, max_digits: int = 3) -> str:
    """A random code of ``min_digits``..``max_digits`` digits, from the injected RNG."""
    length = rng.randint(min_digits, max_digits)
    return "".join(DIGITS[rng.randint(0, 9)] for _ in range(length))


@dataclass(frozen=True, slots=True)
class FlowParams:
    caller: str
    callee: str
    code: str
    mode: Literal["challenge", "voicemail"] = "challenge"
    tries: int = 3
    digit_timeout: float = 6.0
    answer_timeout: float = 5.0
    ring_timeout: float = 30.0
    voicemail: bool = False
    """Offer voicemail after a failed challenge or an unreachable callee."""
    mailbox_full: bool = False
    max_record_seconds: float = 120.0
    min_message_seconds: float = 1.0
    greeting: str = "greeting"
    """Prompt name of the greeting (a per-callee one when the user recorded it)."""


def code_prompts(code: str) -> tuple[str, ...]:
    return ("intro", *(f"digit_{d}" for d in code))


class Flow:
    """One call's IVR. Feed events with :meth:`handle`; perform the returned actions."""

    def __init__(self, params: FlowParams) -> None:
        if not params.code or not params.code.isdigit():
            raise ValueError(f"challenge code must be digits, got {params.code!r}")
        self.p = params
        self.state = State.OFFERED
        self._deadline: float | None = None
        self._buffer = ""
        self._tries = 0
        self._digits_total = 0
        self._record_start = 0.0
        self._vm_reported = False
        self._challenge_reported = params.mode != "challenge"

    # -- public surface --

    def deadline(self) -> float | None:
        """When to send :class:`Tick` (None: no timer armed)."""
        return self._deadline

    @property
    def done(self) -> bool:
        return self.state is State.DONE

    def handle(self, event: Event) -> list[Action]:
        if self.state is State.DONE:
            return []
        handler = _HANDLERS.get((self.state, type(event)))
        if handler is None:
            return []
        return handler(self, event)

    # -- transitions --

    def _offered(self, ev: Offered) -> list[Action]:
        self.state = State.ANSWERING
        self._deadline = ev.now + self.p.answer_timeout
        return [Answer()]

    def _media_ready(self, ev: MediaReady) -> list[Action]:
        if self.p.mode == "voicemail":
            return self._to_voicemail(ev.now)
        return self._prompt(ev.now, ())

    def _answer_timeout(self, ev: Tick) -> list[Action]:
        if self._deadline is None or ev.now < self._deadline:
            return []
        return self._end_caller_gone(ev.now)

    def _prompt(self, now: float, lead: Sequence[str]) -> list[Action]:
        self.state = State.PROMPTING
        self._deadline = None
        self._buffer = ""
        return [Play((*lead, *code_prompts(self.p.code)))]

    def _prompt_done(self, ev: PlayDone) -> list[Action]:
        self.state = State.COLLECTING
        self._deadline = ev.now + self.p.digit_timeout
        return []

    def _digit(self, ev: Digit) -> list[Action]:
        out: list[Action] = []
        if self.state is State.PROMPTING:
            out.append(StopPlay())
            self.state = State.COLLECTING
        d = ev.digit.upper()
        if d == "#":
            if not self._buffer:
                self._deadline = ev.now + self.p.digit_timeout
                return out
            return out + self._evaluate(ev.now)
        self._buffer += d[:1]
        self._digits_total += 1
        self._deadline = ev.now + self.p.digit_timeout
        if len(self._buffer) >= len(self.p.code):
            out += self._evaluate(ev.now)
        return out

    def _evaluate(self, now: float) -> list[Action]:
        self._tries += 1
        if self._buffer == self.p.code:
            self.state = State.CONNECTING
            self._deadline = now + self.p.ring_timeout
            return [
                self._report(Outcome.PASSED),
                Play(("connecting",)),
                PlaceCall(self.p.caller, self.p.callee),
            ]
        return self._retry_or_fail(now, ("wrong",))

    def _collect_timeout(self, ev: Tick) -> list[Action]:
        if self._deadline is None or ev.now < self._deadline:
            return []
        self._tries += 1
        return self._retry_or_fail(ev.now, ("wrong",) if self._buffer else ())

    def _retry_or_fail(self, now: float, lead: Sequence[str]) -> list[Action]:
        if self._tries < self.p.tries:
            return self._prompt(now, lead)
        outcome = Outcome.FAILED if self._digits_total else Outcome.TIMED_OUT
        return [self._report(outcome), *self._after_failure(now, ("wrong",) if lead else ())]

    def _after_failure(self, now: float, lead: Sequence[str]) -> list[Action]:
        if self.p.voicemail:
            return self._to_voicemail(now, lead)
        return self._close(now, (*lead, "goodbye"))

    def _to_voicemail(self, now: float, lead: Sequence[str] = ()) -> list[Action]:
        if self.p.mailbox_full:
            self._vm_reported = True
            return [
                Report(Outcome.MAILBOX_FULL, self._tries, self._digits_total),
                *self._close(now, (*lead, "mailbox_full")),
            ]
        self.state = State.GREETING
        self._deadline = None
        return [Play((*lead, self.p.greeting, "beep"))]

    def _greeting_done(self, ev: PlayDone) -> list[Action]:
        self.state = State.RECORDING
        self._record_start = ev.now
        self._deadline = ev.now + self.p.max_record_seconds
        return [StartRecording(self.p.max_record_seconds)]

    def _record_tick(self, ev: Tick) -> list[Action]:
        if self._deadline is None or ev.now < self._deadline:
            return []
        return [*self._stop_recording(ev.now), *self._close(ev.now, ("goodbye",))]

    def _silence(self, ev: Silence) -> list[Action]:
        return [*self._stop_recording(ev.since), *self._close(ev.now, ("goodbye",))]

    def _stop_recording(self, speech_end: float) -> list[Action]:
        speech = max(
            0.0,
            min(speech_end, self._record_start + self.p.max_record_seconds) - self._record_start,
        )
        keep = speech >= self.p.min_message_seconds
        self._vm_reported = True
        outcome = Outcome.VOICEMAIL if keep else Outcome.NO_MESSAGE
        return [StopRecording(keep, speech), Report(outcome, self._tries, self._digits_total)]

    def _close(self, now: float, prompts: Sequence[str]) -> list[Action]:
        self.state = State.CLOSING
        self._deadline = None
        return [Play(tuple(prompts))]

    def _closing_done(self, ev: PlayDone) -> list[Action]:
        self.state = State.DONE
        self._deadline = None
        return [HangUp()]

    def _callee_answered(self, ev: CalleeAnswered) -> list[Action]:
        self.state = State.BRIDGED
        self._deadline = None
        return [StopPlay(), Bridge()]

    def _callee_failed(self, ev: CalleeEnded | Tick) -> list[Action]:
        if isinstance(ev, Tick):
            if self._deadline is None or ev.now < self._deadline:
                return []
            return [HangUpCallee(), *self._after_failure(ev.now, ("unavailable",))]
        return self._after_failure(ev.now, ("unavailable",))

    def _callee_hung_up(self, ev: CalleeEnded) -> list[Action]:
        self.state = State.DONE
        return [HangUp()]

    def _caller_hangup(self, ev: CallerHangup) -> list[Action]:
        state = self.state
        if state is State.RECORDING:
            out = self._stop_recording(ev.now)
        elif state in (State.CONNECTING, State.BRIDGED):
            out = [HangUpCallee()]
        elif not self._vm_reported and (state is State.GREETING or self.p.mode == "voicemail"):
            self._vm_reported = True
            out = [Report(Outcome.NO_MESSAGE, self._tries, self._digits_total)]
        else:
            out = []
        if state in (State.PROMPTING, State.COLLECTING):
            out.insert(0, StopPlay())
        self.state = State.DONE
        self._deadline = None
        if not self._challenge_reported:
            out.insert(0, self._report(Outcome.HUNG_UP))
        return out

    def _end_caller_gone(self, now: float) -> list[Action]:
        out: list[Action] = []
        if not self._challenge_reported:
            out.append(self._report(Outcome.HUNG_UP))
        elif self.p.mode == "voicemail" and not self._vm_reported:
            self._vm_reported = True
            out.append(Report(Outcome.NO_MESSAGE, self._tries, self._digits_total))
        self.state = State.DONE
        self._deadline = None
        return [*out, HangUp()]

    def _report(self, outcome: Outcome) -> Report:
        self._challenge_reported = True
        return Report(outcome, self._tries, self._digits_total)


_S = State
_HANDLERS: dict[tuple[State, type], Callable[[Flow, Any], list[Action]]] = {
    (_S.OFFERED, Offered): Flow._offered,
    (_S.OFFERED, CallerHangup): Flow._caller_hangup,
    (_S.ANSWERING, MediaReady): Flow._media_ready,
    (_S.ANSWERING, Tick): Flow._answer_timeout,
    (_S.ANSWERING, CallerHangup): Flow._caller_hangup,
    (_S.PROMPTING, PlayDone): Flow._prompt_done,
    (_S.PROMPTING, Digit): Flow._digit,
    (_S.PROMPTING, CallerHangup): Flow._caller_hangup,
    (_S.COLLECTING, Digit): Flow._digit,
    (_S.COLLECTING, Tick): Flow._collect_timeout,
    (_S.COLLECTING, CallerHangup): Flow._caller_hangup,
    (_S.CONNECTING, CalleeAnswered): Flow._callee_answered,
    (_S.CONNECTING, CalleeEnded): Flow._callee_failed,
    (_S.CONNECTING, Tick): Flow._callee_failed,
    (_S.CONNECTING, CallerHangup): Flow._caller_hangup,
    (_S.BRIDGED, CalleeEnded): Flow._callee_hung_up,
    (_S.BRIDGED, CallerHangup): Flow._caller_hangup,
    (_S.GREETING, PlayDone): Flow._greeting_done,
    (_S.GREETING, CallerHangup): Flow._caller_hangup,
    (_S.RECORDING, Tick): Flow._record_tick,
    (_S.RECORDING, Silence): Flow._silence,
    (_S.RECORDING, CallerHangup): Flow._caller_hangup,
    (_S.CLOSING, PlayDone): Flow._closing_done,
    (_S.CLOSING, CallerHangup): Flow._caller_hangup,
}
