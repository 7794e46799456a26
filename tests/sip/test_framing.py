"""StreamFramer: TCP/TLS framing by Content-Length, fed whole and one byte at a time."""

from __future__ import annotations

import pytest

from proxy.sip import Limits, SipFramingError, StreamFramer, error_response, parse_message

from .msgs import invite


def feed_bytewise(framer: StreamFramer, data: bytes) -> list[bytes]:
    out: list[bytes] = []
    for i in range(len(data)):
        out += framer.feed(data[i : i + 1])
    return out


def both(data: bytes) -> tuple[list[bytes], int]:
    """Frame ``data`` whole and byte-at-a-time (h11's test_io discipline); both must agree."""
    whole = StreamFramer()
    a = whole.feed(data)
    single = StreamFramer()
    b = feed_bytewise(single, data)
    assert a == b
    pings = whole.take_pings()
    assert pings == single.take_pings()
    return a, pings


def test_two_messages_and_keepalives() -> None:
    m1 = invite(body=b"v=0\r\n")
    m2 = invite(first="INVITE sip:carol@example.com SIP/2.0")
    frames, pings = both(b"\r\n" + m1 + b"\r\n\r\n" + m2 + b"\r\n")
    assert frames == [m1, m2]
    assert pings == 1  # the double CRLF between the messages (RFC 5626 §3.5.1)
    assert parse_message(frames[0]).body == b"v=0\r\n"


def test_pings_only() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\r\n\r\n\r\n\r\n") == []
    assert framer.take_pings() == 2 and framer.take_pings() == 0
    assert framer.idle and framer.buffered == 0
    assert framer.feed(b"\r\n") == [] and framer.take_pings() == 0  # a pong, ignored


def test_partial_message_is_held() -> None:
    data = invite(body=b"hello")
    framer = StreamFramer()
    assert framer.feed(data[:-1]) == []
    assert not framer.idle and framer.buffered == len(data) - 1
    assert framer.feed(data[-1:]) == [data]


def test_missing_content_length_is_fatal_and_answerable() -> None:
    framer = StreamFramer()
    with pytest.raises(SipFramingError) as info:
        framer.feed(invite(cl=None))
    assert (info.value.status, info.value.reason) == (400, "Missing Content-Length")
    reply = error_response(info.value)
    assert reply is not None and reply.to_bytes().startswith(b"SIP/2.0 400 Missing Content-Length")
    with pytest.raises(SipFramingError):
        framer.feed(b"more")  # the stream stays failed


@pytest.mark.parametrize(
    ("data", "status", "reason"),
    [
        (invite(cl="x1"), 400, "Bad Content-Length"),
        (invite(extra="l: 3"), 400, "Multiple Content-Length Header Fields"),
        (invite(cl="70000"), 513, "Message Too Large"),
        (invite(cl="9" * 5000), 513, "Message Too Large"),
        (b"INVITE sip:a@b SIP/2.0\r\nX: " + b"a" * 70000, 513, "Message Too Large"),
    ],
)
def test_framing_errors(data: bytes, status: int, reason: str) -> None:
    for feed in (lambda f: f.feed(data), lambda f: feed_bytewise(f, data)):
        with pytest.raises(SipFramingError) as info:
            feed(StreamFramer())
        assert (info.value.status, info.value.reason) == (status, reason)


def test_folded_and_compact_content_length() -> None:
    data = invite(cl=None, body=b"abcd").replace(
        b"CSeq: 1 INVITE\r\n", b"CSeq: 1 INVITE\r\nl:\r\n 4\r\n"
    )
    frames, _ = both(data + data)
    assert frames == [data, data]


def test_limits_apply() -> None:
    data = invite(body=b"x" * 50)
    with pytest.raises(SipFramingError):
        StreamFramer(Limits(max_message_size=len(data) - 1)).feed(data)
    assert StreamFramer(Limits(max_message_size=len(data))).feed(data) == [data]


def test_oversized_header_block_can_still_be_answered() -> None:
    data = invite(extra="X-Pad: " + "a" * 70000)
    with pytest.raises(SipFramingError) as info:
        StreamFramer().feed(data)
    assert info.value.status == 513 and info.value.can_reply
