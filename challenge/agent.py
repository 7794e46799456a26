"""The pjsua2 user agent around :mod:`challenge.flow`: SIP, RTP, prompts, DTMF, recording,
and the bridge to the callee (a B2BUA through pjsua2's conference bridge).

Theory of operation
-------------------
pjsua2 runs with no worker threads of its own (``threadCnt = 0``, media sharing the SIP
ioqueue), so every SIP and RTP event -- including RFC 4733 and SIP INFO DTMF -- is handled
inside :meth:`Agent.poll`'s ``libHandleEvents`` call on the main thread; Python is never
called from a thread pjsua2 started. The only other native thread is the null sound
device's clock, which mixes audio and never calls Python (we use no ``onEof2`` and no
custom media ports: prompt ends are computed from the WAV lengths).

pjsua2 callbacks only append ``(session, event)`` tuples to a queue; :meth:`Agent.step`
turns them into flow events with a monotonic ``now``, fires flow deadlines, prompt ends and
silence detection, and performs the flow's actions. Call objects stay referenced until
pjsua reports them disconnected, then are dropped outside any callback.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import random
import socket
import time
from pathlib import Path
from typing import Any

import pjsua2 as pj

from . import flow as F
from .config import ChallengeConfig, ChallengePaths
from .divert import DivertProblem, parse_divert, uri_user
from .outcome import OutcomeReport, OutcomeReporter
from .passtoken import HEADER, canonical, mint
from .pjlog import DECOR, console_captured, log_writer
from .prompts import PromptSet, wav_seconds
from .recorder import (
    BYTES_PER_SECOND,
    WAV_HEADER,
    Recording,
    SilenceDetector,
    cleanup,
    record_budget,
    recording_path,
    safe_name,
    truncate_wav,
    write_sidecar,
)
from .session import Leg, Session, UaAccount, header_value, request_uri, wav_closed

log = logging.getLogger("spitwall.challenge.agent")

LEVEL_INTERVAL = 0.1
"""Seconds between signal-level samples while recording (silence detection)."""
GRACE = 10.0
"""Seconds a finished session waits for pjsua to confirm its legs are gone."""
VOICEMAIL_OUTCOMES = {F.Outcome.VOICEMAIL, F.Outcome.NO_MESSAGE, F.Outcome.MAILBOX_FULL}


class Agent:
    """Owns the pjsua2 endpoint. Call :meth:`start`, then :meth:`poll` in a loop."""

    def __init__(
        self,
        cfg: ChallengeConfig,
        paths: ChallengePaths,
        prompts: PromptSet,
        secret: bytes,
        reporter: OutcomeReporter,
        *,
        rng: random.Random | None = None,
        clock: Any = time.monotonic,
        wall: Any = time.time,
        log_level: int = 1,
        front: tuple[str, int] | None = None,
        cleanup: bool = True,
    ) -> None:
        self.cfg = cfg
        self.paths = paths
        self.prompts = prompts
        self.secret = secret
        self.reporter = reporter
        self.rng = rng or random.SystemRandom()
        self.clock = clock
        self.wall = wall
        self.log_level = log_level
        self.front = front
        self._cleanup = cleanup
        self._status_sock: socket.socket | None = None
        self._next_status = 0.0
        self._last_free = -1
        self.sessions: list[Session] = []
        self.events: collections.deque[tuple[Leg, tuple[Any, ...]]] = collections.deque()
        self.orphans: list[Leg] = []
        self.ep: Any = None
        self._pj_log: Any = None
        self.acc: UaAccount | None = None
        self.port = 0
        self._durations: dict[str, float] = {}
        self._next_cleanup = 0.0
        self.stats = collections.Counter[str]()

    # ---- life cycle ----

    def start(self) -> int:
        ep = pj.Endpoint()
        with console_captured():  # pjlib logs its start to stdout before any config
            ep.libCreate()
        ec = pj.EpConfig()
        ec.uaConfig.threadCnt = 0
        ec.uaConfig.mainThreadOnly = False
        ec.uaConfig.maxCalls = self.cfg.worker_call_slots
        ec.uaConfig.userAgent = "spitwall-challenge"
        ec.medConfig.threadCnt = 0
        ec.medConfig.hasIoqueue = False
        ec.medConfig.clockRate = 8000
        ec.medConfig.sndClockRate = 8000
        ec.medConfig.noVad = True
        ec.medConfig.maxMediaPorts = min(4 * ec.uaConfig.maxCalls + 16, 2048)
        ec.logConfig.level = self.log_level
        ec.logConfig.consoleLevel = self.log_level
        ec.logConfig.writer = self._pj_log = log_writer()  # libDestroy deletes it
        ec.logConfig.decor = DECOR
        ep.libInit(ec)
        tc = pj.TransportConfig()
        tc.boundAddress = self.cfg.host
        tc.port = self.cfg.port
        tid = ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tc)
        ep.libStart()
        ep.audDevManager().setNullDev()
        self._set_codecs(ep)
        local = ep.transportGetInfo(tid).localName
        self.port = int(local.rpartition(":")[2])
        ac = pj.AccountConfig()
        ac.idUri = f"sip:challenge@{self.cfg.host}:{self.port}"
        if self.cfg.outbound_proxy:
            ac.sipConfig.proxies.append(self.cfg.outbound_proxy)
        ac.mediaConfig.transportConfig.boundAddress = self.cfg.host
        ac.mediaConfig.transportConfig.port = 0
        acc = UaAccount(self)
        acc.create(ac, True)
        self.ep, self.acc = ep, acc
        if self.front is not None:
            self._status_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        return self.port

    def _set_codecs(self, ep: Any) -> None:
        wanted = [c.lower() for c in self.cfg.codecs]
        for info in ep.codecEnum2():
            cid = info.codecId
            name = cid.lower()
            prio = 0
            for i, w in enumerate(wanted):
                if name == w or name.startswith(w + "/"):
                    prio = 250 - i
                    break
            ep.codecSetPriority(cid, prio)

    def shutdown(self, timeout: float = 2.0) -> None:
        if self.ep is None:
            return
        for s in self.sessions:
            self._stop_recording_file(s)
            self._hangup(s.inleg)
            self._hangup(s.outleg)
        end = self.clock() + timeout
        while self.clock() < end and any(not leg.ended for s in self.sessions for leg in s.legs):
            self.ep.libHandleEvents(20)
        for s in self.sessions:
            if s.finalize is not None:
                self._finalize(s, self.clock(), force=True)
            s.player = None
            s.legs.clear()
            s.inleg = None  # type: ignore[assignment]
            s.outleg = None
        self.sessions.clear()
        self.orphans.clear()
        self.events.clear()
        if self.acc is not None:
            self.acc.shutdown()
            self.acc = None
        self.ep.libDestroy()
        self.ep = None

    def poll(self, max_wait_ms: int = 10) -> None:
        self.ep.libHandleEvents(max_wait_ms)
        self.step(self.clock())

    # ---- callbacks (queue only) ----

    def post(self, leg: Leg, event: tuple[Any, ...]) -> None:
        self.events.append((leg, event))

    def incoming(self, acc: UaAccount, prm: Any) -> None:
        now, wall = self.clock(), self.wall()
        msg = prm.rdata.wholeMsg
        leg = Leg(self, acc, "in", prm.callId)
        divert = parse_divert(request_uri(msg))
        if isinstance(divert, DivertProblem):
            log.warning("refusing INVITE: %s", divert.detail)
            self._reject(leg, int(divert.error), divert.detail)
            return
        caller = (
            divert.caller
            or uri_user(
                header_value(msg, "P-Asserted-Identity") or header_value(msg, "From", "f") or ""
            )
            or "anonymous"
        )
        call_id = header_value(msg, "Call-ID", "i") or ""
        mode: str = divert.mode
        challenges = sum(1 for s in self.sessions if s.mode == "challenge" and not s.flow.done)
        total = sum(1 for s in self.sessions if not s.flow.done)
        limit = self.cfg.max_calls + self.cfg.max_voicemail_calls
        # the new leg needs a pjsua slot (counted from here on); a challenge keeps one more
        # for the bridge
        room = self.free_slots()
        if mode == "challenge" and (challenges >= self.cfg.max_calls or room < 2):
            mode = "voicemail" if self.cfg.over_limit == "voicemail" else "busy"
        if mode != "busy" and (total >= limit or room < 1):
            mode = "busy"
        if mode == "busy":
            self.stats["busy"] += 1
            self._reject(leg, 486, "Busy Here")
            self.reporter.submit(
                OutcomeReport(
                    kind="challenge" if divert.mode == "challenge" else "voicemail",
                    outcome=F.Outcome.REJECTED_BUSY.value,
                    decision_id=divert.decision,
                    mode=divert.mode,
                    caller=canonical(caller),
                    callee=canonical(divert.callee),
                    call_id=call_id,
                    time=wall,
                    call_started=wall,
                )
            )
            return
        budget = record_budget(
            self.paths.voicemail_dir,
            divert.callee,
            max_seconds=self.cfg.max_record_seconds,
            max_bytes=self.cfg.max_record_bytes,
            quota_bytes=self.cfg.quota_bytes,
            min_seconds=self.cfg.min_message_seconds,
        )
        own = self.paths.greetings_dir / f"{safe_name(divert.callee)}.wav"
        code = self.cfg.test_code or F.make_code(
            self.rng, self.cfg.code_min_digits, self.cfg.code_max_digits
        )
        params = F.FlowParams(
            caller=caller,
            callee=divert.callee,
            code=code,
            mode="voicemail" if mode == "voicemail" else "challenge",
            tries=self.cfg.tries,
            digit_timeout=self.cfg.digit_timeout,
            answer_timeout=self.cfg.answer_timeout,
            ring_timeout=self.cfg.ring_timeout,
            voicemail=self.cfg.voicemail_on_fail if divert.voicemail is None else divert.voicemail,
            mailbox_full=budget.full,
            max_record_seconds=budget.seconds or self.cfg.max_record_seconds,
            min_message_seconds=self.cfg.min_message_seconds,
            greeting=f"user:{own}" if own.is_file() else "greeting",
        )
        s = Session(F.Flow(params), divert, caller, leg, call_id, wall)
        leg.session = s
        s.legs.append(leg)
        self.sessions.append(s)
        self.stats["calls"] += 1
        log.info(
            "call %s from %s for %s: %s (decision %s)",
            call_id,
            caller,
            divert.callee,
            mode,
            divert.decision,
        )
        self._feed(s, F.Offered(now), now)

    def _reject(self, leg: Leg, code: int, reason: str) -> None:
        prm = pj.CallOpParam()
        prm.statusCode = code
        prm.reason = reason[:100]
        try:
            leg.answer(prm)
        except pj.Error as exc:
            log.warning("cannot reject call: %s", exc.info())
        self.orphans.append(leg)

    # ---- the step: events, timers, actions ----

    def step(self, now: float) -> None:
        while self.events:
            leg, ev = self.events.popleft()
            s = leg.session
            if s is None:
                continue
            self._translate(s, leg, ev, now)
        for s in list(self.sessions):
            if s.play_done_at is not None and now >= s.play_done_at:
                s.play_done_at = None
                self._feed(s, F.PlayDone(now), now)
            dl = s.flow.deadline()
            if dl is not None and now >= dl:
                self._feed(s, F.Tick(now), now)
            if s.finalize is not None:
                self._finalize(s, now)
            if s.silence is not None and now >= s.next_level_at:
                self._sample_level(s, now)
            self._maybe_finish(s, now)
        self.orphans = [leg for leg in self.orphans if not leg.ended]
        self._send_status(now)
        if self._cleanup and now >= self._next_cleanup:
            self._next_cleanup = now + self.cfg.cleanup_interval
            removed = cleanup(self.paths.voicemail_dir, self.wall(), self.cfg.retention_days)
            if removed:
                log.info(
                    "removed %d recordings older than %s days", removed, self.cfg.retention_days
                )

    def _translate(self, s: Session, leg: Leg, ev: tuple[Any, ...], now: float) -> None:
        kind = ev[0]
        if leg.role == "in":
            if kind == "media" and not s.media_seen:
                s.media_seen = True
                self._feed(s, F.MediaReady(now), now)
            elif kind == "media":
                self._try_bridge(s)
            elif kind == "digit":
                self.stats["digits"] += 1
                self._feed(s, F.Digit(ev[1], now), now)
            elif kind == "ended":
                self._feed(s, F.CallerHangup(now), now)
        else:
            if kind == "confirmed":
                self._feed(s, F.CalleeAnswered(now), now)
            elif kind == "media":
                self._try_bridge(s)
            elif kind == "ended":
                self._feed(s, F.CalleeEnded(now, int(ev[1])), now)

    def _feed(self, s: Session, event: F.Event, now: float) -> None:
        for action in s.flow.handle(event):
            try:
                self._do(s, action, now)
            except pj.Error as exc:
                log.error("call %s: %s failed: %s", s.call_id, type(action).__name__, exc.info())

    def _do(self, s: Session, a: F.Action, now: float) -> None:
        if isinstance(a, F.Answer):
            prm = pj.CallOpParam()
            prm.statusCode = 200
            s.inleg.answer(prm)
        elif isinstance(a, F.Play):
            self._play(s, a.prompts, now)
        elif isinstance(a, F.StopPlay):
            self._stop_play(s)
        elif isinstance(a, F.StartRecording):
            self._start_recording(s, now)
        elif isinstance(a, F.StopRecording):
            self._stop_recording(s, a, now)
        elif isinstance(a, F.PlaceCall):
            self._place_call(s, now)
        elif isinstance(a, F.Bridge):
            s.bridge_wanted = True
            self._try_bridge(s)
        elif isinstance(a, F.HangUpCallee):
            self._hangup(s.outleg)
        elif isinstance(a, F.HangUp):
            self._stop_play(s)
            self._hangup(s.inleg)
            self._hangup(s.outleg)
        elif isinstance(a, F.Report):
            self._report(s, a)

    # ---- prompts ----

    def _prompt_file(self, name: str) -> Path:
        if name.startswith("user:"):
            return Path(name[5:])
        return self.prompts.path(name)

    def _duration(self, path: Path) -> float:
        key = str(path)
        if key not in self._durations or key.startswith(str(self.paths.greetings_dir)):
            self._durations[key] = wav_seconds(path)
        return self._durations[key]

    def _play(self, s: Session, names: tuple[str, ...], now: float) -> None:
        self._stop_play(s)
        files = [p for p in map(self._prompt_file, names) if self._duration(p) > 0]
        media = s.inleg.media
        if not files or media is None:
            s.play_done_at = now
            return
        player = pj.AudioMediaPlayer()
        if len(files) == 1:
            player.createPlayer(str(files[0]), pj.PJMEDIA_FILE_NO_LOOP)
        else:
            vec = pj.StringVector()
            for f in files:
                vec.append(str(f))
            player.createPlaylist(vec, "prompt", pj.PJMEDIA_FILE_NO_LOOP)
        player.startTransmit(media)
        s.player = player
        s.play_done_at = now + sum(self._duration(f) for f in files) + 0.1

    def _stop_play(self, s: Session) -> None:
        s.play_done_at = None
        if s.player is not None:
            player, s.player = s.player, None
            if s.inleg is not None and s.inleg.media is not None:
                try:
                    player.stopTransmit(s.inleg.media)
                except pj.Error:
                    pass
            del player  # destroys the conference port

    # ---- voicemail ----

    def _start_recording(self, s: Session, now: float) -> None:
        media = s.inleg.media
        if media is None:
            return
        path = recording_path(self.paths.voicemail_dir, s.divert.callee, s.caller, self.wall())
        path.parent.mkdir(parents=True, exist_ok=True)
        rec = pj.AudioMediaRecorder()
        rec.createRecorder(str(path))
        media.startTransmit(rec)
        s.recorder, s.rec_path, s.rec_started_wall = rec, path, self.wall()
        s.silence = SilenceDetector(self.cfg.silence_level, self.cfg.silence_seconds, now)
        s.next_level_at = now

    def _sample_level(self, s: Session, now: float) -> None:
        s.next_level_at = now + LEVEL_INTERVAL
        media = s.inleg.media
        if media is None or s.silence is None:
            return
        try:
            # pjsua2 names levels from the port's side: "tx" is what the call's port sends
            # into the bridge, i.e. the caller's voice.
            level = media.getTxLevel()
        except pj.Error:
            return
        since = s.silence.feed(int(level), now)
        if since is not None:
            self._feed(s, F.Silence(since, now), now)

    def _stop_recording_file(self, s: Session) -> None:
        s.silence = None
        if s.recorder is None:
            return
        rec, s.recorder = s.recorder, None
        if s.inleg is not None and s.inleg.media is not None:
            try:
                s.inleg.media.stopTransmit(rec)
            except pj.Error:
                pass
        del rec  # closes the WAV and writes its header

    def _stop_recording(self, s: Session, a: F.StopRecording, now: float) -> None:
        """Detach the recorder. pjsua2 (2.14+) removes conference ports on its clock thread
        and closes the WAV there, so the file is measured (and the report sent) by
        :meth:`_finalize` once its RIFF header is written."""
        self._stop_recording_file(s)
        if s.rec_path is None:
            return
        s.finalize = (now + 0.05, now + 1.0, a)

    def _finalize(self, s: Session, now: float, force: bool = False) -> None:
        assert s.finalize is not None
        first, give_up, a = s.finalize
        path = s.rec_path
        if not force and now < first:
            return
        if not force and now < give_up and path is not None and not wav_closed(path):
            return
        s.finalize = None
        log.debug("finalize %s keep=%s exists=%s", path, a.keep, path and path.exists())
        if path is not None and path.exists():
            if not a.keep:
                path.unlink(missing_ok=True)
            else:
                truncate_wav(path, self.cfg.max_record_bytes)
                size = path.stat().st_size
                rec = Recording(
                    path=str(path),
                    caller=canonical(s.caller),
                    callee=canonical(s.divert.callee),
                    decision_id=s.divert.decision,
                    started=round(s.rec_started_wall, 3),
                    duration=round(max(0, size - WAV_HEADER) / BYTES_PER_SECOND, 3),
                    speech=round(a.speech_seconds, 3),
                    bytes=size,
                )
                write_sidecar(rec)
                s.recording = rec.to_json()
                self.stats["voicemails"] += 1
        for report in s.deferred:
            if report.outcome == F.Outcome.VOICEMAIL.value:
                report = dataclasses.replace(report, recording=s.recording)
            self.reporter.submit(report)
        s.deferred.clear()

    # ---- the bridge ----

    def _place_call(self, s: Session, now: float) -> None:
        assert self.acc is not None
        token = mint(self.secret, s.caller, s.divert.callee, self.wall(), self.cfg.pass_ttl)
        out = Leg(self, self.acc, "out", pj.PJSUA_INVALID_ID)
        out.session = s
        s.outleg = out
        s.legs.append(out)
        prm = pj.CallOpParam(True)
        hdr = pj.SipHeader()
        hdr.hName = HEADER
        hdr.hValue = token
        prm.txOption.headers.append(hdr)
        caller_user = s.caller if not s.caller.isdigit() else "+" + s.caller
        prm.txOption.localUri = f"sip:{caller_user}@{self.cfg.host}:{self.port}"
        callee = s.divert.callee
        target = f"sip:{'+' + callee if callee.isdigit() else callee}@{self.cfg.callee_domain}"
        try:
            out.makeCall(target, prm)
            self.stats["bridges_placed"] += 1
        except pj.Error as exc:
            log.error("call %s: cannot call %s: %s", s.call_id, target, exc.info())
            out.ended = True
            self._feed(s, F.CalleeEnded(now, 0), now)

    def _try_bridge(self, s: Session) -> None:
        if s.bridged or not s.bridge_wanted or s.outleg is None:
            return
        a, b = s.inleg.media, s.outleg.media
        if a is None or b is None:
            return
        self._stop_play(s)
        a.startTransmit(b)
        b.startTransmit(a)
        s.bridged = True
        self.stats["bridged"] += 1

    def _hangup(self, leg: Leg | None) -> None:
        if leg is None or leg.ended or leg.hung_up:
            return
        leg.hung_up = True
        try:
            leg.hangup(pj.CallOpParam())
        except pj.Error as exc:
            log.debug("hangup: %s", exc.info())

    # ---- reports and clean-up ----

    def _report(self, s: Session, a: F.Report) -> None:
        wall = self.wall()
        vm = a.outcome in VOICEMAIL_OUTCOMES
        self.stats[a.outcome.value] += 1
        report = OutcomeReport(
            kind="voicemail" if vm else "challenge",
            outcome=a.outcome.value,
            decision_id=s.divert.decision,
            mode=s.divert.mode,
            caller=canonical(s.caller),
            callee=canonical(s.divert.callee),
            call_id=s.call_id,
            time=wall,
            call_started=s.started_wall,
            tries=a.tries,
            digits_entered=a.digits_entered,
            remember_until=wall + self.cfg.pass_remember if a.outcome is F.Outcome.PASSED else None,
            recording=s.recording if a.outcome is F.Outcome.VOICEMAIL else None,
        )
        if s.finalize is not None:
            s.deferred.append(report)
        else:
            self.reporter.submit(report)
        log.info("call %s: %s", s.call_id, a.outcome.value)

    def _maybe_finish(self, s: Session, now: float) -> None:
        if not s.flow.done:
            return
        if s.done_at is None:
            s.done_at = now
            self._stop_play(s)
            self._stop_recording_file(s)
            self._hangup(s.inleg)
            self._hangup(s.outleg)
        if s.finalize is not None:
            self._finalize(s, now, force=now - s.done_at > GRACE)
            return
        if all(leg.ended for leg in s.legs) or now - s.done_at > GRACE:
            self.sessions.remove(s)
            for leg in s.legs:
                leg.session = None
                if not leg.ended:
                    self.orphans.append(leg)
            s.legs.clear()

    def free_slots(self) -> int:
        """pjsua call slots neither in use nor reserved for a possible bridge."""
        used = sum(1 for s in self.sessions for leg in s.legs if not leg.ended)
        used += sum(1 for leg in self.orphans if not leg.ended)
        reserved = sum(
            1
            for s in self.sessions
            if s.mode == "challenge" and s.outleg is None and not s.flow.done
        )
        return self.cfg.worker_call_slots - used - reserved

    def _send_status(self, now: float) -> None:
        if self._status_sock is None or self.front is None:
            return
        free = self.free_slots()
        if free == self._last_free and now < self._next_status:
            return
        self._last_free = free
        self._next_status = now + 0.2
        try:
            self._status_sock.sendto(f"SWLOAD {max(free, 0)}".encode(), self.front)
        except OSError as exc:
            log.debug("status to the front: %s", exc)

    @property
    def active(self) -> int:
        return sum(1 for s in self.sessions if not s.flow.done)
