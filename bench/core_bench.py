"""CPU per call of the sans-IO proxy core.

Run: ``.venv/bin/python bench/core_bench.py [--calls N] [--profile]``.

Why this shape: the SIPp ramp (``bench/sipp_ramp.py``) measures the whole system on a box
shared by the proxy and both SIPp peers, so its numbers move ±30 % with the neighbours'
load. This bench measures only what the proxy's own code costs: it drives ``ProxyCore``
(no sockets, virtual time) through complete record-routed calls as SIPp sends them
(``tests/sipp/uac_call.xml`` / ``uas_call.xml``: INVITE, 100 from us, 180, 200 with
Record-Route, ACK and BYE routed by Route, 200) and reports CPU microseconds per call
(``time.process_time``, best of several rounds).

How: a *recording* pass plays caller and callee against a live core (they read the
forwarded bytes to copy Via/Record-Route and the To tag, as SIPp does), keeping every
datagram fed in. Branches and screening keys are deterministic, so each timed *replay*
pass feeds exactly those datagrams to a fresh core — the timed loop holds nothing but the
runtime's own steps (receive, drain, the default screener's synchronous decision, timer
re-arm). Calls overlap as at ``--rate`` calls/s (100 ms hold before BYE); after the last
call virtual time runs on until every transaction has ended, so timer work is counted.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import heapq
import io
import pstats
import sys
import time
from collections.abc import Generator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from proxy.core import ProxyCore
from proxy.effects import Screen, Send
from proxy.screen import Forward
from proxy.sip.headers import _ADDR_MEMO, _CALL_ID_MEMO, _CSEQ_MEMO
from proxy.sip.uri import _URI_MEMO
from proxy.transport.base import LocalAddress, Peer
from spitwall.config import load_config

PROXY_IP = "10.0.0.1"
LOCAL = [LocalAddress("udp", PROXY_IP, 5060, 5060)]
CALLER = Peer("udp", "192.0.2.10", 5070)
CALLEE = Peer("udp", "10.0.0.2", 5080)
SDP = (
    "v=0\r\no=user1 53655765 2353687637 IN IP4 192.0.2.10\r\ns=-\r\n"
    "c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 8 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-15\r\na=ptime:20\r\n"
)
CALLEE_SDP = SDP.replace("192.0.2.10", "10.0.0.2").replace("6000", "7000")
FORWARD = Forward(note="default screener")
_MEMOS = (_ADDR_MEMO, _CALL_ID_MEMO, _CSEQ_MEMO, _URI_MEMO)

# One recorded input: (virtual time, kind, data, peer); kind "msg" or "end" (run timers).
Event = tuple[float, str, bytes, Peer]
Reply = list[bytes]


def _lines(data: bytes, name: bytes) -> list[bytes]:
    """Header lines called ``name`` (long form, as the proxy writes them)."""
    head = data.split(b"\r\n\r\n", 1)[0]
    return [ln for ln in head.split(b"\r\n")[1:] if ln.split(b":", 1)[0].strip().lower() == name]


def _msg(start: str, headers: list[str], body: str = "") -> bytes:
    text = start + "\r\n" + "".join(h + "\r\n" for h in headers)
    text += f"Content-Length: {len(body.encode())}\r\n\r\n{body}"
    return text.encode()


def _caller_headers(i: int, method: str, cseq: int, branch: str, to: str) -> list[str]:
    return [
        f"Via: SIP/2.0/UDP 192.0.2.10:5070;branch={branch}",
        f'From: "Alice" <sip:+12155550100@192.0.2.10:5070>;tag=4711SIPpTag00{i}',
        to,
        f"Call-ID: {i}-4711@192.0.2.10",
        f"CSeq: {cseq} {method}",
        "Contact: <sip:alice@192.0.2.10:5070;transport=UDP>",
        "Max-Forwards: 70",
    ]


def _callee_reply(fwd: bytes, status: str, to_tag: str, body: str = "") -> bytes:
    """What SIPp's uas_call.xml sends: [last_Via:] … [last_Record-Route:], Contact."""
    h = [ln.decode() for ln in _lines(fwd, b"via")]
    h += [ln.decode() for ln in _lines(fwd, b"from")]
    to = _lines(fwd, b"to")[0].decode()
    h.append(to if ";tag=" in to else to + to_tag)
    h += [ln.decode() for ln in _lines(fwd, b"call-id") + _lines(fwd, b"cseq")]
    h += [ln.decode() for ln in _lines(fwd, b"record-route")]
    if not status.startswith("200 OK") or body:
        h.append("Contact: <sip:bob@10.0.0.2:5080;transport=UDP>")
    if body:
        h.append("Content-Type: application/sdp")
    return _msg(f"SIP/2.0 {status}", h, body)


def _call(i: int) -> Generator[tuple[float, bytes, Peer], Reply, None]:
    """One SIPp call: yields (delay, datagram, from peer); is sent the datagrams the proxy
    sent to the callee (for a caller message) or to the caller (for a callee message)."""
    to = "To: <sip:+12155550123@10.0.0.1:5060>"
    invite = _caller_headers(i, "INVITE", 1, f"z9hG4bK-4711-{i}-0", to)
    invite += [
        "User-Agent: sipp-uac",
        "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE",
        "Supported: replaces, timer",
        "Content-Type: application/sdp",
    ]
    out = yield 0.0, _msg("INVITE sip:+12155550123@10.0.0.1:5060 SIP/2.0", invite, SDP), CALLER
    fwd = out[0]
    tag = f";tag=4711SIPpTag01{i}"
    yield 0.001, _callee_reply(fwd, "180 Ringing", tag), CALLEE
    out = yield 0.001, _callee_reply(fwd, "200 OK", tag, CALLEE_SDP), CALLEE
    ok = out[0]
    rr = [ln.decode().split(":", 1)[1].strip() for ln in _lines(ok, b"record-route")]
    to_line = _lines(ok, b"to")[0].decode()
    contact = "sip:bob@10.0.0.2:5080;transport=UDP"
    for method, cseq, delay in (("ACK", 1, 0.001), ("BYE", 2, 0.1)):
        h = _caller_headers(i, method, cseq, f"z9hG4bK-4711-{i}-{cseq + 1}", to_line)
        h[1:1] = [f"Route: {r}" for r in rr]
        out = yield delay, _msg(f"{method} {contact} SIP/2.0", h), CALLER
    yield 0.001, _callee_reply(out[0], "200 OK", ""), CALLEE


def _core() -> ProxyCore:
    cfg = load_config(None, {"proxy.default_next_hop": "sip:10.0.0.2:5080"}).proxy
    return ProxyCore(cfg, local=LOCAL)  # no rate limiter, no observer: `serve --proxy-only`


def _step(core: ProxyCore, data: bytes, peer: Peer, now: float) -> list[Send]:
    """What the runtime does with one datagram (proxy.server): feed, apply the default
    screener synchronously, re-arm the timer."""
    core.receive(data, peer, now)
    sends = []
    for eff in core.drain():
        if type(eff) is Screen:
            core.screened(eff.key, FORWARD, now)
            sends += [e for e in core.drain() if type(e) is Send]
        elif type(eff) is Send:
            sends.append(eff)
    core.get_timer()
    return sends


def record(calls: int, rate: float) -> list[Event]:
    """Play ``calls`` calls against a live core; every datagram fed in, in order."""
    core = _core()
    events: list[Event] = []
    heap: list[tuple[float, int, bytes, Peer]] = []
    gens: dict[int, Generator[tuple[float, bytes, Peer], Reply, None]] = {}
    for i in range(calls):
        g = _call(i)
        delay, data, peer = next(g)
        gens[i] = g
        heapq.heappush(heap, (i / rate + delay, i, data, peer))
    while heap:
        now, i, data, peer = heapq.heappop(heap)
        t = core.get_timer()
        if t is not None and t <= now:
            core.handle_timer(now)
            core.drain()
        events.append((now, "msg", data, peer))
        sends = _step(core, data, peer, now)
        back = CALLER if peer is CALLEE else CALLEE
        reply = [s.data for s in sends if s.peer.host == back.host]
        try:
            delay, data, peer = gens[i].send(reply)
        except StopIteration:
            del gens[i]
            continue
        heapq.heappush(heap, (now + delay, i, data, peer))
    events.append((now + 60.0, "end", b"", CALLER))
    return events


def replay(events: list[Event]) -> float:
    """CPU seconds to feed ``events`` to a fresh core, timers included.

    The parser's memos (``proxy.sip`` module state) are emptied first: every round replays
    the same Call-IDs, From/To and URIs, and a memo warmed by the previous round would
    count hits that live traffic (new values every call) does not get."""
    for memo in _MEMOS:
        memo.clear()
    core = _core()
    gc.collect()
    t0 = time.process_time()
    for now, kind, data, peer in events:
        t = core.get_timer()
        while t is not None and t <= now:
            core.handle_timer(t)
            core.drain()
            t = core.get_timer()
        if kind == "msg":
            _step(core, data, peer, now)
    cpu = time.process_time() - t0
    assert core.live == 0, f"{core.live} transactions still live after the run"
    return cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=3000, help="calls per round (default 3000)")
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds; best is reported")
    ap.add_argument("--rate", type=float, default=1500.0, help="offered calls/s (virtual)")
    ap.add_argument("--profile", action="store_true", help="cProfile one round, print top 30")
    ap.add_argument("--top", type=int, default=30, help="rows of the profile")
    args = ap.parse_args()
    gc.freeze()  # as spitwall serve does after start-up
    gc.set_threshold(50_000, 50, 100)
    events = record(args.calls, args.rate)
    datagrams = sum(1 for e in events if e[1] == "msg")
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        cpu = replay(events)
        prof.disable()
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(args.top)
        print(s.getvalue())
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(args.top)
        print(s.getvalue())
        print(f"(profiled round: {cpu / args.calls * 1e6:.0f} µs/call with profiler overhead)")
        return 0
    times = []
    for _ in range(args.rounds):
        cpu = replay(events)
        times.append(cpu)
    best = min(times)
    print(
        f"{args.calls} calls ({datagrams} datagrams in), {args.rounds} rounds: "
        f"best {best / args.calls * 1e6:.1f} µs CPU/call, "
        f"median {sorted(times)[len(times) // 2] / args.calls * 1e6:.1f} µs/call "
        f"({args.calls / best:.0f} calls per CPU-second)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
