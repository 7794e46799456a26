"""A pjsua2 peer for the challenge UA tests, run as a subprocess (pjsua2 wants its process).

caller: calls ``--target``, sends ``--dtmf`` (``dialDtmf``, RFC 4733; or SIP INFO) after
``--dtmf-at`` seconds of media, plays a tone into the call, hangs up after
``--hangup-after`` seconds (0: wait for the far end), and measures the received signal
level between ``--measure-from`` and the end.
callee: listens on ``--port``, records the INVITE's headers, answers, plays a tone and
measures what it receives until the far end hangs up.

Prints one JSON line with what happened.
"""

from __future__ import annotations

import argparse
import json
import math
import struct
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

import pjsua2 as pj


def tone_wav(freq: float, seconds: float = 1.0) -> str:
    path = Path(tempfile.mkdtemp(prefix="peer-")) / f"tone{int(freq)}.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        n = int(8000 * seconds)
        w.writeframes(
            b"".join(
                struct.pack("<h", int(12000 * math.sin(2 * math.pi * freq * i / 8000)))
                for i in range(n)
            )
        )
    return str(path)


class Peer:
    def __init__(self, args: argparse.Namespace) -> None:
        self.a = args
        self.call: Call | None = None
        self.media: Any = None
        self.media_at: float | None = None
        self.ended = False
        self.last_code = 0
        self.headers: dict[str, str] = {}
        self.levels: list[int] = []
        self.player: Any = None
        self.dtmf_sent = False
        self.hung_up = False
        self.ended_by = "timeout"
        self.sink: Any = None


class Call(pj.Call):  # type: ignore[misc]
    def __init__(self, peer: Peer, acc: Any, call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(acc, call_id)
        self.peer = peer

    def onCallState(self, prm: Any) -> None:
        ci = self.getInfo()
        if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.peer.ended = True
            self.peer.media = None
            self.peer.last_code = ci.lastStatusCode
            if not self.peer.hung_up:
                self.peer.ended_by = "remote"

    def onCallMediaState(self, prm: Any) -> None:
        ci = self.getInfo()
        for mi in ci.media:
            if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                self.peer.media = self.getAudioMedia(mi.index)
                # a listener, so that the bridge reads (and measures) what arrives
                self.peer.media.startTransmit(self.peer.sink)
                if self.peer.media_at is None:
                    self.peer.media_at = time.monotonic()


class Account(pj.Account):  # type: ignore[misc]
    def __init__(self, peer: Peer) -> None:
        super().__init__()
        self.peer = peer

    def onIncomingCall(self, prm: Any) -> None:
        msg = prm.rdata.wholeMsg
        lines = msg.split("\r\n\r\n")[0].splitlines()
        self.peer.headers["request-uri"] = lines[0].split(" ")[1]
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.peer.headers.setdefault(name.strip().lower(), value.strip())
        call = Call(self.peer, self, prm.callId)
        self.peer.call = call
        op = pj.CallOpParam()
        op.statusCode = 200
        call.answer(op)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--role", choices=("caller", "callee"), required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--target", default="")
    ap.add_argument("--dtmf", default="")
    ap.add_argument("--dtmf-method", choices=("rfc2833", "info"), default="rfc2833")
    ap.add_argument("--dtmf-at", type=float, default=1.0)
    ap.add_argument("--tone", type=float, default=0.0, help="Hz; 0 = silent")
    ap.add_argument("--tone-at", type=float, default=0.0)
    ap.add_argument("--tone-for", type=float, default=1e9)
    ap.add_argument("--hangup-after", type=float, default=0.0)
    ap.add_argument("--measure-from", type=float, default=0.0)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--ready-file", default="")
    args = ap.parse_args()
    peer = Peer(args)

    ep = pj.Endpoint()
    ep.libCreate()
    ec = pj.EpConfig()
    ec.uaConfig.threadCnt = 0
    ec.uaConfig.mainThreadOnly = False
    ec.medConfig.threadCnt = 0
    ec.medConfig.hasIoqueue = False
    ec.medConfig.clockRate = 8000
    ec.medConfig.sndClockRate = 8000
    ec.logConfig.level = 0
    ec.logConfig.consoleLevel = 0
    ep.libInit(ec)
    tc = pj.TransportConfig()
    tc.boundAddress = "127.0.0.1"
    tc.port = args.port
    tid = ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tc)
    ep.libStart()
    ep.audDevManager().setNullDev()
    port = int(ep.transportGetInfo(tid).localName.rpartition(":")[2])
    ac = pj.AccountConfig()
    ac.idUri = f"sip:+15551230000@127.0.0.1:{port}"
    ac.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
    ac.mediaConfig.transportConfig.port = 0
    peer.sink = ep.audDevManager().getPlaybackDevMedia()
    acc = Account(peer)
    acc.create(ac, True)
    if args.ready_file:
        Path(args.ready_file).write_text(str(port))
    tone = tone_wav(args.tone) if args.tone else ""

    if args.role == "caller":
        call = Call(peer, acc)
        peer.call = call
        call.makeCall(args.target, pj.CallOpParam(True))

    start = time.monotonic()
    tone_on = False
    while time.monotonic() - start < args.duration and not peer.ended:
        ep.libHandleEvents(10)
        now = time.monotonic()
        if peer.media is None or peer.media_at is None:
            continue
        t = now - peer.media_at
        if tone and not tone_on and args.tone_at <= t < args.tone_at + args.tone_for:
            peer.player = pj.AudioMediaPlayer()
            peer.player.createPlayer(tone)
            peer.player.startTransmit(peer.media)
            tone_on = True
        if tone_on and t >= args.tone_at + args.tone_for and peer.player is not None:
            peer.player.stopTransmit(peer.media)
            peer.player = None
        if args.dtmf and not peer.dtmf_sent and t >= args.dtmf_at:
            peer.dtmf_sent = True
            assert peer.call is not None
            if args.dtmf_method == "rfc2833":
                peer.call.dialDtmf(args.dtmf)
            else:
                for d in args.dtmf:
                    p = pj.CallSendDtmfParam()
                    p.digits = d
                    p.method = pj.PJSUA_DTMF_METHOD_SIP_INFO
                    peer.call.sendDtmf(p)
        if t >= args.measure_from and peer.media is not None:
            # pjsua2's "tx" level of a call port: what it sends into the bridge, i.e. what
            # the far end sent us ("rx" would be our own tone going out)
            peer.levels.append(int(peer.media.getTxLevel()))
        if args.hangup_after and t >= args.hangup_after and not peer.hung_up:
            peer.hung_up = True
            peer.ended_by = "local"
            assert peer.call is not None
            peer.call.hangup(pj.CallOpParam())
    # let the BYE transaction finish
    end = time.monotonic() + 1.0
    while time.monotonic() < end and not peer.ended:
        ep.libHandleEvents(10)
    levels = peer.levels
    result = {
        "connected": peer.media_at is not None,
        "ended_by": peer.ended_by,
        "last_code": peer.last_code,
        "rx_max": max(levels) if levels else 0,
        "rx_mean": sum(levels) / len(levels) if levels else 0.0,
        "rx_active": sum(1 for v in levels if v > 5) / len(levels) if levels else 0.0,
        "samples": len(levels),
        "headers": peer.headers,
    }
    peer.player = None
    peer.media = None
    peer.call = None
    acc.shutdown()
    ep.libDestroy()
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
