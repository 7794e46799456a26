"""Table tests for parse_message: what is accepted, what is rejected and with which reply."""

from __future__ import annotations

import pytest

from proxy.sip import (
    Limits,
    Request,
    Response,
    SipParseError,
    SipUri,
    TelUri,
    error_response,
    parse_message,
)

from .msgs import invite

RESPONSE = (
    b"SIP/2.0 180 Ringing\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK74bf9;received=198.51.100.1\r\n"
    b"From: <sip:alice@example.org>;tag=9fxced76sl\r\n"
    b"To: <sip:bob@example.com>;tag=8321234356\r\n"
    b"Call-ID: 3848276298220188511@192.0.2.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def test_basic_invite() -> None:
    m = parse_message(invite(body=b"v=0\r\n", extra="Content-Type: application/sdp"))
    assert isinstance(m, Request)
    assert m.method == "INVITE" and m.version == "SIP/2.0"
    assert m.uri == SipUri("example.com", "bob")
    assert m.body == b"v=0\r\n" and m.content_length == 5
    assert m.call_id == "3848276298220188511@192.0.2.1"
    assert (m.cseq.number, m.cseq.method) == (1, "INVITE")
    assert m.max_forwards == 70
    assert m.from_.tag == "9fxced76sl" and m.from_.display_name == "Alice"
    assert m.to.tag is None
    assert m.top_via is not None and m.top_via.branch == "z9hG4bK74bf9"
    assert m.top_via.has_rport and m.top_via.rport is None
    assert m.headers.get("c") == "application/sdp"


def test_response() -> None:
    m = parse_message(RESPONSE)
    assert isinstance(m, Response)
    assert (m.status, m.reason) == (180, "Ringing")
    assert m.to.tag == "8321234356"
    assert m.to_bytes() == RESPONSE


def test_unmodified_message_is_byte_exact() -> None:
    data = invite(extra="X-Odd :   spaced   value\nsubject:hi", body=b"abc")
    assert parse_message(data).to_bytes() == data


def test_tel_request_uri() -> None:
    m = parse_message(invite(first="INVITE tel:+1-212-555-1234;phone-context=x SIP/2.0"))
    assert isinstance(m, Request) and isinstance(m.uri, TelUri)
    assert m.uri.digits == "+12125551234"


def test_missing_max_forwards_is_accepted() -> None:
    data = invite().replace(b"Max-Forwards: 70\r\n", b"")
    m = parse_message(data)
    assert m.max_forwards is None  # RFC 3261 §16.6 step 3: the proxy adds one


def test_folding_and_compact_forms() -> None:
    data = invite(extra="Subject: first\n  second\n\tthird\nv: SIP/2.0/TCP h2;branch=z9hG4bKx")
    m = parse_message(data)
    assert m.headers.get("s") == "first second third"
    assert [v.host for v in m.vias] == ["192.0.2.1", "h2"]


def test_lf_only_and_leading_crlf_are_tolerated() -> None:
    m = parse_message(invite(eol="\n"))
    assert isinstance(m, Request) and m.call_id == "3848276298220188511@192.0.2.1"
    assert parse_message(b"\r\n\r\n" + invite()) == parse_message(invite())


def test_datagram_without_content_length_takes_the_rest() -> None:
    m = parse_message(invite(cl=None, body=b"hello"))
    assert m.body == b"hello"
    assert b"Content-Length: 5\r\n" in m.to_bytes()


def test_longer_datagram_is_truncated_to_content_length() -> None:
    m = parse_message(invite(cl="3") + b"abcdef")
    assert m.body == b"abc"  # RFC 3261 §18.3


def test_limits() -> None:
    data = invite(extra="\n".join(f"X-H{i}: {i}" for i in range(10)))
    with pytest.raises(SipParseError) as info:
        parse_message(data, Limits(max_headers=10))
    assert info.value.reason == "Too Many Header Fields"
    with pytest.raises(SipParseError) as info:
        parse_message(data, Limits(max_message_size=100))
    assert info.value.status == 513
    with pytest.raises(SipParseError) as info:
        parse_message(invite(extra="X-Long: " + "a" * 200), Limits(max_line_length=100))
    assert info.value.reason == "Header Line Too Long"


BAD = [
    # (description, data, status, reason)
    ("no CRLF at all", b"INVITE sip:a@b SIP/2.0", 400, "Incomplete Header Section"),
    ("empty", b"", 400, "Incomplete Header Section"),
    ("SIP/3.0", invite(first="INVITE sip:bob@example.com SIP/3.0"), 505, "Version Not Supported"),
    ("HTTP", invite(first="INVITE sip:bob@example.com HTTP/1.1"), 400, "Bad SIP Version"),
    ("two spaces", invite(first="INVITE  sip:bob@example.com SIP/2.0"), 400, "Bad Request-Line"),
    ("bad method", invite(first="INV@TE sip:bob@example.com SIP/2.0"), 400, "Bad Method"),
    ("bad uri", invite(first="INVITE sip:bob@exa mple.com SIP/2.0"), 400, "Bad Request-Line"),
    ("bad host", invite(first="INVITE sip:bob@-x- SIP/2.0"), 400, "Bad Request-URI"),
    ("cl not a number", invite(cl="abc"), 400, "Bad Content-Length"),
    ("cl too big", invite(cl="10"), 400, "Bad Content-Length"),
    ("cl huge", invite(cl="9" * 5000), 400, "Bad Content-Length"),
    ("two cl", invite(extra="Content-Length: 0"), 400, "Multiple Content-Length Header Fields"),
    (
        "no call-id",
        invite().replace(b"Call-ID: 3848276298220188511@192.0.2.1\r\n", b""),
        400,
        "Missing Call-ID",
    ),
    (
        "no via",
        invite().replace(b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK74bf9;rport\r\n", b""),
        400,
        "Missing Via",
    ),
    (
        "cseq mismatch",
        invite().replace(b"CSeq: 1 INVITE", b"CSeq: 1 BYE"),
        400,
        "CSeq Method Mismatch",
    ),
    ("cseq junk", invite().replace(b"CSeq: 1 INVITE", b"CSeq: one INVITE"), 400, "Bad CSeq"),
    (
        "cseq 2**32",
        invite().replace(b"CSeq: 1 INVITE", b"CSeq: 4294967296 INVITE"),
        400,
        "Bad CSeq",
    ),
    (
        "mf 256",
        invite().replace(b"Max-Forwards: 70", b"Max-Forwards: 256"),
        400,
        "Bad Max-Forwards",
    ),
    (
        "mf unicode digit",
        invite().replace(b"Max-Forwards: 70", "Max-Forwards: ٣".encode()),
        400,
        "Bad Max-Forwards",
    ),
    ("header without colon", invite(extra="NoColonHere"), 400, "Malformed Header Line"),
    ("bad header name", invite(extra="Bad Name: x"), 400, "Bad Header Name"),
    ("fold first", b"INVITE sip:a@b SIP/2.0\r\n folded: x\r\n\r\n", 400, "Bad Header Folding"),
    ("bare CR", invite(extra="X-A: a\rb"), 400, "Bare CR or LF in Header"),
    ("bare CR, LF-only", invite(extra="X-A: a\rb", eol="\n"), 400, "Bare CR or LF in Header"),
    (
        "bad via",
        invite().replace(b"Via: SIP/2.0/UDP 192.0.2.1:5060", b"Via: SIP/2.0 192.0.2.1"),
        400,
        "Bad Via",
    ),
    (
        "bad from",
        invite().replace(b'From: "Alice" <', b'From: "Alice <'),
        400,
        "Bad From",
    ),
    ("status 99", b"SIP/2.0 99 Low\r\n\r\n", 400, "Bad Status-Line"),
    ("status 5 digits", RESPONSE.replace(b"180", b"18000"), 400, "Bad Status-Line"),
    (
        "response SIP/3.0",
        RESPONSE.replace(b"SIP/2.0 180", b"SIP/3.0 180"),
        505,
        "Version Not Supported",
    ),
    ("NUL in reason", RESPONSE.replace(b"Ringing", b"Ring\x00ing"), 400, "Bad Reason-Phrase"),
    ("NUL in call-id", invite().replace(b"Call-ID: 38", b"Call-ID: 3\x008"), 400, "Bad Call-ID"),
    (
        "uri headers in R-URI",
        invite(first="INVITE sip:b@example.com?Subject=x SIP/2.0"),
        400,
        "Bad Request-URI",
    ),
]


@pytest.mark.parametrize(("what", "data", "status", "reason"), BAD, ids=[b[0] for b in BAD])
def test_rejections(what: str, data: bytes, status: int, reason: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert (info.value.status, info.value.reason) == (status, reason)


def test_error_carries_what_could_be_read() -> None:
    data = invite().replace(b"Content-Length: 0", b"Content-Length: 12")
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    err = info.value
    assert err.is_request and err.method == "INVITE"
    assert err.call_id == "3848276298220188511@192.0.2.1"
    assert err.cseq == "1 INVITE"
    assert err.top_via == "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK74bf9;rport"
    assert err.from_ is not None and err.to == "<sip:bob@example.com>"
    assert err.can_reply
    reply = error_response(err)
    assert reply is not None
    wire = reply.to_bytes()
    assert wire.startswith(b"SIP/2.0 400 Bad Content-Length\r\n")
    parsed = parse_message(wire)
    assert isinstance(parsed, Response) and parsed.to.tag is not None
    # the tag is stable, so a retransmission gets the same answer (RFC 3261 §8.2.7)
    with pytest.raises(SipParseError) as info2:
        parse_message(data)
    again = error_response(info2.value)
    assert again is not None and again.to_bytes() == wire


def test_bad_start_line_still_yields_reply_headers() -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(invite(first="INVITE  sip:bob@example.com SIP/2.0"))
    assert info.value.can_reply


def test_response_errors_are_never_answered() -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(RESPONSE.replace(b"CSeq: 1 INVITE", b"CSeq: x INVITE"))
    assert not info.value.can_reply and error_response(info.value) is None


def test_deep_mode_checks_the_rest() -> None:
    data = invite(extra="Contact: sip:a@b?x=y\nRoute: sip:proxy.example.com")
    parse_message(data)
    with pytest.raises(SipParseError) as info:
        parse_message(data, deep=True)
    assert info.value.reason == "Bad Contact"
    with pytest.raises(SipParseError) as info:
        parse_message(invite(extra="Route: sip:p.example.com;lr"), deep=True)
    assert info.value.reason == "Bad Route"
    with pytest.raises(SipParseError) as info:
        parse_message(invite(extra="Require: a b"), deep=True)
    assert info.value.reason == "Bad Require"
    with pytest.raises(SipParseError) as info:
        parse_message(invite(extra="Expires: 99999999999"), deep=True)
    assert info.value.reason == "Bad Expires"
    ok = parse_message(
        invite(extra="Contact: *\nRoute: <sip:p1;lr>, <sip:p2;lr>\nSupported: timer, 100rel"),
        deep=True,
    )
    assert ok.contacts == "*"
    assert [str(r.uri) for r in ok.routes] == ["sip:p1;lr", "sip:p2;lr"]
    assert ok.option_tags("k") == ("timer", "100rel")


def test_utf8_and_invalid_utf8_survive_round_trip() -> None:
    data = invite(
        extra="Subject: caf\u00e9 \u2603\nX-Bin: \xff\xfe".replace("\xff\xfe", "")
    ).replace(b"X-Bin: ", b"X-Bin: \xff\xfe")
    m = parse_message(data)
    assert m.headers.get("subject") == "caf\u00e9 \u2603"
    assert m.to_bytes() == data


def test_datagram_without_final_empty_line() -> None:
    data = invite()[:-2]  # the header block ends with the datagram (RFC 4475 baddn note)
    m = parse_message(data)
    assert m.body == b"" and m.to_bytes() == data + b"\r\n"


def test_fast_and_careful_header_paths_agree() -> None:
    data = invite(extra="X-A: 1\nx-b :  two  \nSubject:")
    fast = parse_message(data)
    careful = parse_message(data.replace(b"X-A: 1", b"X-A:\r\n 1"))  # folding: other path
    assert fast.headers == careful.headers
    assert fast.headers.get("x-b") == "two" and fast.headers.get("subject") == ""
