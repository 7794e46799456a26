"""The pure IVR flow, table-tested: scripted events in, the exact actions out."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from challenge.flow import (
    Answer,
    Bridge,
    CalleeAnswered,
    CalleeEnded,
    CallerHangup,
    Digit,
    Flow,
    FlowParams,
    HangUp,
    HangUpCallee,
    MediaReady,
    Offered,
    Outcome,
    PlaceCall,
    Play,
    PlayDone,
    Report,
    Silence,
    StartRecording,
    State,
    StopPlay,
    StopRecording,
    Tick,
    make_code,
)

P = FlowParams(
    caller="15551230000",
    callee="15557654321",
    code="42",
    tries=2,
    digit_timeout=5.0,
    ring_timeout=20.0,
    max_record_seconds=30.0,
)
CODE = ("intro", "digit_4", "digit_2")


def run(params: FlowParams, script: list[Any]) -> tuple[Flow, list[Any]]:
    """Feed Offered + MediaReady at t=0, then the script; return every action emitted."""
    flow = Flow(params)
    out = flow.handle(Offered(0.0)) + flow.handle(MediaReady(0.1))
    for ev in script:
        out += flow.handle(ev)
    return flow, out


def reports(actions: list[Any]) -> list[Outcome]:
    return [a.outcome for a in actions if isinstance(a, Report)]


# (name, params, script, expected actions after Answer, final state)
TABLE: list[tuple[str, FlowParams, list[Any], list[Any], State]] = [
    (
        "right code after prompt",
        P,
        [PlayDone(3.0), Digit("4", 4.0), Digit("2", 4.5)],
        [
            Play(CODE),
            Report(Outcome.PASSED, 1, 2),
            Play(("connecting",)),
            PlaceCall("15551230000", "15557654321"),
        ],
        State.CONNECTING,
    ),
    (
        "barge-in during prompt stops it",
        P,
        [Digit("4", 1.0), Digit("2", 1.2)],
        [
            Play(CODE),
            StopPlay(),
            Report(Outcome.PASSED, 1, 2),
            Play(("connecting",)),
            PlaceCall("15551230000", "15557654321"),
        ],
        State.CONNECTING,
    ),
    (
        "pound submits early: wrong then right",
        P,
        [
            PlayDone(3.0),
            Digit("4", 4.0),
            Digit("#", 4.1),
            PlayDone(6.0),
            Digit("4", 7.0),
            Digit("2", 7.1),
        ],
        [
            Play(CODE),
            Play(("wrong", *CODE)),
            Report(Outcome.PASSED, 2, 3),
            Play(("connecting",)),
            PlaceCall("15551230000", "15557654321"),
        ],
        State.CONNECTING,
    ),
    (
        "pound with nothing typed is ignored",
        P,
        [PlayDone(3.0), Digit("#", 4.0), Digit("4", 8.5), Digit("2", 9.0)],
        [
            Play(CODE),
            Report(Outcome.PASSED, 1, 2),
            Play(("connecting",)),
            PlaceCall("15551230000", "15557654321"),
        ],
        State.CONNECTING,
    ),
    (
        "wrong twice fails, goodbye",
        P,
        [
            PlayDone(3.0),
            Digit("1", 4.0),
            Digit("1", 4.1),
            PlayDone(6.0),
            Digit("9", 7.0),
            Digit("9", 7.1),
            PlayDone(9.0),
        ],
        [
            Play(CODE),
            Play(("wrong", *CODE)),
            Report(Outcome.FAILED, 2, 4),
            Play(("wrong", "goodbye")),
            HangUp(),
        ],
        State.DONE,
    ),
    (
        "no input times out twice",
        P,
        [PlayDone(3.0), Tick(7.9), Tick(8.0), PlayDone(11.0), Tick(16.0), PlayDone(17.0)],
        [Play(CODE), Play(CODE), Report(Outcome.TIMED_OUT, 2, 0), Play(("goodbye",)), HangUp()],
        State.DONE,
    ),
    (
        "partial entry then timeout is a failure",
        P,
        [PlayDone(3.0), Digit("4", 4.0), Tick(9.0), PlayDone(12.0), Tick(17.0)],
        [Play(CODE), Play(("wrong", *CODE)), Report(Outcome.FAILED, 2, 1), Play(("goodbye",))],
        State.CLOSING,
    ),
    (
        "hang-up during prompt",
        P,
        [CallerHangup(1.0)],
        [Play(CODE), Report(Outcome.HUNG_UP, 0, 0), StopPlay()],
        State.DONE,
    ),
    (
        "hang-up while collecting",
        P,
        [PlayDone(3.0), Digit("4", 3.5), CallerHangup(4.0)],
        [Play(CODE), Report(Outcome.HUNG_UP, 0, 1), StopPlay()],
        State.DONE,
    ),
    (
        "failure offers voicemail",
        replace(P, voicemail=True, tries=1),
        [PlayDone(3.0), Tick(8.0), PlayDone(12.0), Digit("5", 13.0), Silence(16.0, 20.0)],
        [
            Play(CODE),
            Report(Outcome.TIMED_OUT, 1, 0),
            Play(("greeting", "beep")),
            StartRecording(30.0),
            StopRecording(True, 4.0),
            Report(Outcome.VOICEMAIL, 1, 0),
            Play(("goodbye",)),
        ],
        State.CLOSING,
    ),
    (
        "callee answers: bridge, caller hangs up",
        P,
        [Digit("4", 1.0), Digit("2", 1.1), CalleeAnswered(3.0), CallerHangup(30.0)],
        [
            Play(CODE),
            StopPlay(),
            Report(Outcome.PASSED, 1, 2),
            Play(("connecting",)),
            PlaceCall("15551230000", "15557654321"),
            StopPlay(),
            Bridge(),
            HangUpCallee(),
        ],
        State.DONE,
    ),
    (
        "callee hangs up: caller leg ends",
        P,
        [Digit("4", 1.0), Digit("2", 1.1), CalleeAnswered(3.0), CalleeEnded(30.0)],
        [
            Play(CODE),
            StopPlay(),
            Report(Outcome.PASSED, 1, 2),
            Play(("connecting",)),
            PlaceCall("15551230000", "15557654321"),
            StopPlay(),
            Bridge(),
            HangUp(),
        ],
        State.DONE,
    ),
    (
        "callee busy, no voicemail",
        P,
        [Digit("4", 1.0), Digit("2", 1.1), CalleeEnded(2.0, 486), PlayDone(4.0)],
        [
            Play(CODE),
            StopPlay(),
            Report(Outcome.PASSED, 1, 2),
            Play(("connecting",)),
            PlaceCall("15551230000", "15557654321"),
            Play(("unavailable", "goodbye")),
            HangUp(),
        ],
        State.DONE,
    ),
    (
        "callee rings out, voicemail",
        replace(P, voicemail=True),
        [Digit("4", 1.0), Digit("2", 1.1), Tick(21.0), Tick(21.1)],
        [
            Play(CODE),
            StopPlay(),
            Report(Outcome.PASSED, 1, 2),
            Play(("connecting",)),
            PlaceCall("15551230000", "15557654321"),
            HangUpCallee(),
            Play(("unavailable", "greeting", "beep")),
        ],
        State.GREETING,
    ),
    (
        "caller hangs up while the callee rings",
        P,
        [Digit("4", 1.0), Digit("2", 1.1), CallerHangup(5.0)],
        [
            Play(CODE),
            StopPlay(),
            Report(Outcome.PASSED, 1, 2),
            Play(("connecting",)),
            PlaceCall("15551230000", "15557654321"),
            HangUpCallee(),
        ],
        State.DONE,
    ),
    (
        "voicemail mode: record to max length",
        replace(P, mode="voicemail"),
        [Digit("1", 1.0), PlayDone(5.0), Tick(34.9), Tick(35.0), PlayDone(36.0)],
        [
            Play(("greeting", "beep")),
            StartRecording(30.0),
            StopRecording(True, 30.0),
            Report(Outcome.VOICEMAIL, 0, 0),
            Play(("goodbye",)),
            HangUp(),
        ],
        State.DONE,
    ),
    (
        "voicemail mode: hang-up after speaking",
        replace(P, mode="voicemail"),
        [PlayDone(5.0), CallerHangup(12.5)],
        [
            Play(("greeting", "beep")),
            StartRecording(30.0),
            StopRecording(True, 7.5),
            Report(Outcome.VOICEMAIL, 0, 0),
        ],
        State.DONE,
    ),
    (
        "voicemail mode: too short is no message",
        replace(P, mode="voicemail"),
        [PlayDone(5.0), CallerHangup(5.5)],
        [
            Play(("greeting", "beep")),
            StartRecording(30.0),
            StopRecording(False, 0.5),
            Report(Outcome.NO_MESSAGE, 0, 0),
        ],
        State.DONE,
    ),
    (
        "voicemail mode: silence only",
        replace(P, mode="voicemail"),
        [PlayDone(5.0), Silence(5.0, 9.0)],
        [
            Play(("greeting", "beep")),
            StartRecording(30.0),
            StopRecording(False, 0.0),
            Report(Outcome.NO_MESSAGE, 0, 0),
            Play(("goodbye",)),
        ],
        State.CLOSING,
    ),
    (
        "voicemail mode: hang-up during greeting",
        replace(P, mode="voicemail"),
        [CallerHangup(2.0)],
        [Play(("greeting", "beep")), Report(Outcome.NO_MESSAGE, 0, 0)],
        State.DONE,
    ),
    (
        "voicemail mode: mailbox full",
        replace(P, mode="voicemail", mailbox_full=True),
        [PlayDone(3.0)],
        [Report(Outcome.MAILBOX_FULL, 0, 0), Play(("mailbox_full",)), HangUp()],
        State.DONE,
    ),
    (
        "custom greeting",
        replace(P, mode="voicemail", greeting="user/15557654321"),
        [],
        [Play(("user/15557654321", "beep"))],
        State.GREETING,
    ),
]


@pytest.mark.parametrize(
    ("name", "params", "script", "expected", "final"), TABLE, ids=[row[0] for row in TABLE]
)
def test_flow_table(
    name: str, params: FlowParams, script: list[Any], expected: list[Any], final: State
) -> None:
    flow, out = run(params, script)
    assert out[0] == Answer()
    assert out[1:] == expected
    assert flow.state is final


def test_media_never_comes_up() -> None:
    flow = Flow(P)
    assert flow.handle(Offered(0.0)) == [Answer()]
    assert flow.deadline() == pytest.approx(P.answer_timeout)
    assert flow.handle(Tick(1.0)) == []
    assert flow.handle(Tick(P.answer_timeout)) == [Report(Outcome.HUNG_UP, 0, 0), HangUp()]
    assert flow.done and flow.deadline() is None


def test_deadlines_follow_the_state() -> None:
    flow, _ = run(P, [PlayDone(3.0)])
    assert flow.deadline() == 8.0
    flow.handle(Digit("4", 4.0))
    assert flow.deadline() == 9.0  # inter-digit timer restarts
    flow.handle(Digit("2", 4.2))
    assert flow.deadline() == pytest.approx(24.2)  # ring timeout


def test_events_after_done_are_ignored() -> None:
    flow, _ = run(P, [CallerHangup(1.0)])
    for ev in (Digit("1", 2.0), Tick(99.0), PlayDone(3.0), CalleeAnswered(4.0), CallerHangup(5.0)):
        assert flow.handle(ev) == []


def test_bad_code_is_refused() -> None:
    with pytest.raises(ValueError, match="digits"):
        Flow(replace(P, code="4a"))


@pytest.mark.parametrize("seed", range(50))
def test_make_code_length_and_alphabet(seed: int) -> None:
    code = make_code(random.Random(seed), 1, 3)
    assert 1 <= len(code) <= 3 and code.isdigit()


def test_make_code_uses_the_injected_rng() -> None:
    assert make_code(random.Random(7)) == make_code(random.Random(7))
    lengths = {len(make_code(random.Random(s))) for s in range(200)}
    assert lengths == {1, 2, 3}


EVENTS = st.one_of(
    st.builds(Offered, st.floats(0, 100)),
    st.builds(MediaReady, st.floats(0, 100)),
    st.builds(PlayDone, st.floats(0, 100)),
    st.builds(Digit, st.sampled_from("0123456789*#ABCD"), st.floats(0, 100)),
    st.builds(Tick, st.floats(0, 200)),
    st.builds(Silence, st.floats(0, 100), st.floats(0, 100)),
    st.builds(CallerHangup, st.floats(0, 100)),
    st.builds(CalleeAnswered, st.floats(0, 100)),
    st.builds(CalleeEnded, st.floats(0, 100), st.integers(0, 699)),
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["challenge", "voicemail"]), st.booleans(), st.lists(EVENTS, max_size=30))
def test_any_event_sequence_keeps_the_invariants(mode: str, vm: bool, events: list[Any]) -> None:
    """Whatever arrives: no crash, at most one challenge outcome and one voicemail outcome,
    a recording is never stopped without being started, and a hang-up always ends it."""
    flow = Flow(replace(P, mode=mode, voicemail=vm))  # type: ignore[arg-type]
    out: list[Any] = []
    for ev in [*events, CallerHangup(300.0)]:
        out += flow.handle(ev)
    got = reports(out)
    challenge = [
        o for o in got if o in (Outcome.PASSED, Outcome.FAILED, Outcome.TIMED_OUT, Outcome.HUNG_UP)
    ]
    voicemail = [
        o for o in got if o in (Outcome.VOICEMAIL, Outcome.NO_MESSAGE, Outcome.MAILBOX_FULL)
    ]
    assert len(challenge) <= 1 and len(voicemail) <= 1
    if mode == "voicemail":
        assert not challenge
    starts = sum(isinstance(a, StartRecording) for a in out)
    stops = sum(isinstance(a, StopRecording) for a in out)
    assert starts == stops <= 1
    assert sum(isinstance(a, PlaceCall) for a in out) <= 1
    assert flow.done
