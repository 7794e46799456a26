"""``rules.without_top_via``: the §16.7 item 3 edit on the received bytes.

The shortcut must give the same message as the general path (pop the first Via element,
re-serialise) whenever it applies, and decline (``None``) for every shape it does not
handle, so the general path keeps the last word on odd input.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.rules import without_top_via
from proxy.sip import Response, SipParseError, parse_message

OURS = "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKswabc"
THEIRS = "SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bK-c1;rport=5070;received=192.0.2.10"
REST = (
    "From: <sip:a@b>;tag=a1\r\nTo: <sip:c@d>;tag=b1\r\nCall-ID: x@y\r\nCSeq: 1 INVITE\r\n"
    "Contact: <sip:bob@10.0.0.2:5080>\r\n"
)
SDP = "v=0\r\no=- 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n"


def _msg(head: str, body: str = "", *, cl: str | None = None, status: str = "200 OK") -> bytes:
    length = str(len(body)) if cl is None else cl
    return f"SIP/2.0 {status}\r\n{head}Content-Length: {length}\r\n\r\n{body}".encode()


def _general(resp: Response) -> bytes:
    return resp.with_headers(resp.headers.remove_first_value("via")).to_bytes()


@pytest.mark.parametrize(
    "data",
    [
        _msg(f"Via: {OURS}\r\nVia: {THEIRS}\r\n{REST}"),
        _msg(f"Via: {OURS}\r\nVia: {THEIRS}\r\n{REST}Content-Type: application/sdp\r\n", SDP),
        _msg(f"v: {OURS}\r\nVIA: {THEIRS}\r\n{REST}", status="180 Ringing"),
        _msg(f"{REST}Via: {OURS}\r\nVia: {THEIRS}, SIP/2.0/TCP h:1;branch=z9hG4bK9\r\n"),
        _msg(f"Via: {OURS}\r\n{REST}Via: {THEIRS}\r\n"),
    ],
)
def test_shortcut_equals_the_general_path(data: bytes) -> None:
    resp = parse_message(data)
    assert isinstance(resp, Response)
    out = without_top_via(resp, data)
    assert out is not None
    assert out == _general(resp)
    again = parse_message(out)
    assert [str(v) for v in again.vias] == [str(v) for v in resp.vias[1:]]


@pytest.mark.parametrize(
    ("why", "data"),
    [
        ("only our Via: the response was for us", _msg(f"Via: {OURS}\r\n{REST}")),
        ("two elements in the first field", _msg(f"Via: {OURS}, {THEIRS}\r\n{REST}")),
        ("folded first Via", _msg(f"Via: {OURS}\r\n ;x=1\r\nVia: {THEIRS}\r\n{REST}")),
        (
            "a folded field above",
            _msg(f"Subject: a\r\n b\r\nVia: {OURS}\r\nVia: {THEIRS}\r\n{REST}"),
        ),
        ("Content-Length wrong", _msg(f"Via: {OURS}\r\nVia: {THEIRS}\r\n{REST}", "abc", cl="2")),
        ("Content-Length 00", _msg(f"Via: {OURS}\r\nVia: {THEIRS}\r\n{REST}", cl="00")),
        ("bytes after the body", _msg(f"Via: {OURS}\r\nVia: {THEIRS}\r\n{REST}") + b"junk"),
        (
            "bare LF line ends",
            _msg(f"Via: {OURS}\r\nVia: {THEIRS}\r\n{REST}").replace(b"\r\n", b"\n"),
        ),
        (
            "status line spelt differently",
            _msg(f"Via: {OURS}\r\nVia: {THEIRS}\r\n{REST}", status="200"),
        ),
    ],
)
def test_shortcut_declines_what_it_does_not_handle(why: str, data: bytes) -> None:
    resp = parse_message(data)
    assert isinstance(resp, Response)
    assert without_top_via(resp, data) is None, why


_BASE = _msg(f"Via: {OURS}\r\nVia: {THEIRS}\r\n{REST}Content-Type: application/sdp\r\n", SDP)


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(_BASE)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["replace", "delete", "insert"]))
        b = draw(st.sampled_from([b" ", b"\t", b",", b":", b"\r\n", b"\r\n ", b"v", b"0", b"x"]))
        if op == "replace":
            data[i : i + 1] = b
        elif op == "delete":
            del data[i]
        else:
            data[i:i] = b
    return bytes(data)


@settings(max_examples=400, deadline=None)
@given(_mutated())
def test_shortcut_never_disagrees_with_the_general_path(data: bytes) -> None:
    """Whatever parses: the shortcut declines, or the next hop reads its bytes as it
    reads the general path's (same status line, fields and body, or the same error)."""
    try:
        resp = parse_message(data)
    except SipParseError:
        return
    if not isinstance(resp, Response):
        return
    out = without_top_via(resp, data)
    if out is None:
        return
    assert _seen(out) == _seen(_general(resp))


def _seen(data: bytes) -> object:
    """What the next hop makes of ``data``: the parse error's reason, or the message."""
    try:
        m = parse_message(data)
    except SipParseError as exc:
        return exc.reason
    assert isinstance(m, Response)
    return (m.status, m.reason, m.body, list(m.headers))
