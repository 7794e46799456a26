"""Responses built from requests (RFC 3261 §8.2.6) and the status-code table."""

from __future__ import annotations

from proxy.sip import Request, Response, StatusCode, make_response, parse_message, reason_phrase

from .msgs import invite

REQUIRED = [
    100,
    180,
    183,
    200,
    202,
    301,
    302,
    400,
    403,
    404,
    405,
    408,
    416,
    420,
    428,
    433,
    436,
    437,
    438,
    480,
    481,
    482,
    483,
    484,
    486,
    487,
    488,
    500,
    501,
    503,
    504,
    505,
    513,
    603,
    604,
    606,
    607,
    608,
]


def test_status_codes_have_phrases() -> None:
    for code in REQUIRED:
        assert StatusCode(code).phrase == reason_phrase(code) != ""
    assert StatusCode.UNWANTED.phrase == "Unwanted" and StatusCode.REJECTED == 608
    assert StatusCode.TRYING.is_provisional and StatusCode.DECLINE.is_final
    assert reason_phrase(499) == "Client Error" and reason_phrase(799) == "Unknown"


def test_make_response_copies_the_dialog_fields() -> None:
    req = parse_message(
        invite(extra="Via: SIP/2.0/UDP second.example.com;branch=z9hG4bK2\nTimestamp: 54")
    )
    assert isinstance(req, Request)
    resp = make_response(req, StatusCode.UNWANTED, headers=[("Reason", "SIP;cause=607")])
    assert (resp.status, resp.reason) == (607, "Unwanted")
    assert resp.headers.get_all("via") == req.headers.get_all("via")
    for name in ("from", "call-id", "cseq"):
        assert resp.headers.get(name) == req.headers.get(name)
    assert resp.to.tag is not None and resp.to.uri == req.to.uri
    assert resp.headers.get("reason") == "SIP;cause=607"
    assert "timestamp" not in resp.headers
    again = parse_message(resp.to_bytes())
    assert isinstance(again, Response) and again.headers.get("content-length") == "0"
    # same request, same tag (stateless retransmissions, §8.2.7)
    assert make_response(req, 607).to.tag == resp.to.tag
    assert make_response(req, 486, to_tag="abc").to.tag == "abc"


def test_100_trying_has_no_tag_but_keeps_timestamp() -> None:
    req = parse_message(invite(extra="Timestamp: 54"))
    assert isinstance(req, Request)
    trying = make_response(req, 100)
    assert trying.reason == "Trying" and trying.to.tag is None
    assert trying.headers.get("timestamp") == "54"


def test_existing_to_tag_is_kept() -> None:
    req = parse_message(invite().replace(b"To: <sip:bob@example.com>", b"To: <sip:b@x>;tag=t1"))
    assert isinstance(req, Request)
    assert make_response(req, 200, to_tag="other").to.tag == "t1"
