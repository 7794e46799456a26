"""Parse-rate benchmark for a typical INVITE: ``.venv/bin/python tests/sip/bench_parse.py``.

Not a test (pytest does not collect it); prints parses/s for parse_message alone, parse +
the accessors a proxy uses, and parse + edit + to_bytes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from proxy.sip import parse_message

SDP = (
    b"v=0\r\no=alice 2890844526 2890844526 IN IP4 198.51.100.7\r\ns=-\r\n"
    b"c=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0 8 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
)
INVITE = (
    b"INVITE sip:+12125551234@proxy.example.com;user=phone SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Alice" <sip:+13035551111@carrier.example.net;user=phone>;tag=1928301774\r\n'
    b"To: <sip:+12125551234@proxy.example.com;user=phone>\r\n"
    b"Call-ID: a84b4c76e66710@pc33.carrier.example.net\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:+13035551111@198.51.100.7:5060>\r\n"
    b"P-Asserted-Identity: <sip:+13035551111@carrier.example.net;user=phone>\r\n"
    b"Identity: eyJhbGciOiJFUzI1NiIsInBwdCI6InNoYWtlbiIsInR5cCI6InBhc3Nwb3J0IiwieDV1Ijoi"
    b"aHR0cHM6Ly9jZXJ0LmV4YW1wbGUub3JnL3Bhc3Nwb3J0LnBlbSJ9.eyJhdHRlc3QiOiJBIn0.sig;"
    b"info=<https://cert.example.org/passport.pem>;alg=ES256;ppt=shaken\r\n"
    b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n"
    b"Supported: timer, 100rel\r\n"
    b"User-Agent: bench/1.0\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
)


def rate(fn: Callable[[], None], seconds: float = 1.5) -> tuple[float, float]:
    """(per wall-clock second, per CPU second of this process): the second is the honest
    figure on a machine shared with other jobs."""
    n = 0
    t0 = time.perf_counter()
    c0 = time.process_time()
    while True:
        for _ in range(500):
            fn()
        n += 500
        dt = time.perf_counter() - t0
        if dt > seconds:
            return n / dt, n / (time.process_time() - c0)


def parse_only() -> None:
    parse_message(INVITE)


def parse_and_use() -> None:
    m = parse_message(INVITE)
    _ = (m.top_via.branch if m.top_via else None, m.from_.tag, m.to.tag, m.cseq, m.call_id)


def proxy_edit() -> None:
    m = parse_message(INVITE)
    h = m.headers.replace("Max-Forwards", str((m.max_forwards or 70) - 1))
    h = h.prepend("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKproxy1")
    m.with_headers(h).to_bytes()


if __name__ == "__main__":
    for name, fn in (
        ("parse", parse_only),
        ("parse+accessors", parse_and_use),
        ("parse+edit+to_bytes", proxy_edit),
    ):
        wall, cpu = rate(fn)
        print(f"{name:22s} {wall:8.0f} /s wall   {cpu:8.0f} /s per CPU-second")
