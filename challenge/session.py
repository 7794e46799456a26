"""One diverted call as the agent sees it: its pjsua2 legs and the per-call state.

Why apart from the agent: the pjsua2 callback classes must stay trivial -- they run inside
``libHandleEvents`` and only queue ``(leg, event)`` tuples for :class:`~challenge.agent.Agent`
to handle -- and the session record is plain data the agent's steps share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pjsua2 as pj

from . import flow as F
from .divert import Divert
from .outcome import OutcomeReport
from .recorder import SilenceDetector

if TYPE_CHECKING:
    from .agent import Agent


class Leg(pj.Call):  # type: ignore[misc]
    """One call leg. Callbacks only queue events for the session."""

    def __init__(self, agent: Agent, acc: pj.Account, role: str, call_id: int) -> None:
        super().__init__(acc, call_id)
        self.agent = agent
        self.role = role
        self.session: Session | None = None
        self.media: Any = None
        self.ended = False
        self.hung_up = False

    def onCallState(self, prm: Any) -> None:
        ci = self.getInfo()
        if ci.state == pj.PJSIP_INV_STATE_CONFIRMED:
            self.agent.post(self, ("confirmed",))
        elif ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.ended = True
            self.media = None
            self.agent.post(self, ("ended", ci.lastStatusCode))

    def onCallMediaState(self, prm: Any) -> None:
        ci = self.getInfo()
        for mi in ci.media:
            if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                self.media = self.getAudioMedia(mi.index)
                self.agent.post(self, ("media",))
                return
        self.media = None

    def onDtmfDigit(self, prm: Any) -> None:
        self.agent.post(self, ("digit", str(prm.digit)))


class UaAccount(pj.Account):  # type: ignore[misc]
    def __init__(self, agent: Agent) -> None:
        super().__init__()
        self.agent = agent

    def onIncomingCall(self, prm: Any) -> None:
        self.agent.incoming(self, prm)


def wav_closed(path: Path) -> bool:
    """True once the WAV writer has put the final sizes into the RIFF header."""
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
        size = path.stat().st_size
    except OSError:
        return True
    return len(head) == 8 and int.from_bytes(head[4:8], "little") == size - 8


@dataclass(eq=False)
class Session:
    flow: F.Flow
    divert: Divert
    caller: str
    inleg: Leg
    call_id: str
    started_wall: float
    outleg: Leg | None = None
    player: Any = None
    play_done_at: float | None = None
    recorder: Any = None
    rec_path: Path | None = None
    rec_started_wall: float = 0.0
    silence: SilenceDetector | None = None
    next_level_at: float = 0.0
    recording: dict[str, Any] | None = None
    finalize: tuple[float, float, F.StopRecording] | None = None
    """(first check, give up at, the stop) while pjsua closes the WAV on its clock thread."""
    deferred: list[OutcomeReport] = field(default_factory=list)
    """Voicemail reports held until the WAV is closed and measured."""
    bridge_wanted: bool = False
    bridged: bool = False
    media_seen: bool = False
    done_at: float | None = None
    legs: list[Leg] = field(default_factory=list)

    @property
    def mode(self) -> str:
        return self.flow.p.mode


def request_uri(whole_msg: str) -> str:
    line = whole_msg.split("\r\n", 1)[0].split("\n", 1)[0]
    parts = line.split(" ")
    return parts[1] if len(parts) == 3 else ""


def header_value(whole_msg: str, *names: str) -> str | None:
    head = whole_msg.split("\r\n\r\n", 1)[0]
    wanted = {n.lower() for n in names}
    for line in head.splitlines()[1:]:
        name, sep, value = line.partition(":")
        if sep and name.strip().lower() in wanted:
            return value.strip()
    return None
