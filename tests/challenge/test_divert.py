"""The divert Request-URI contract: every malformed form is a value naming the parameter."""

from __future__ import annotations

import pytest

from challenge.divert import (
    Divert,
    DivertError,
    DivertProblem,
    format_divert,
    parse_divert,
    uri_user,
)


def test_round_trip() -> None:
    uri = format_divert("127.0.0.1:5070", "+15551234567", "d-42", "challenge", True, "+1555000")
    assert uri.startswith("sip:challenge@127.0.0.1:5070;sw-callee=%2B15551234567;")
    assert parse_divert(uri) == Divert("+15551234567", "d-42", "challenge", True, "+1555000")
    assert parse_divert(f"<{format_divert('h:1', '1555', 'x', 'voicemail')}>") == Divert(
        "1555", "x", "voicemail", None, None
    )


@pytest.mark.parametrize(
    ("uri", "error", "word"),
    [
        ("sip:challenge@h", DivertError.NOT_DIVERTED, "not a divert"),
        ("http://x", DivertError.BAD_PARAMETER, "not a SIP URI"),
        (
            "sip:c@h;sw-callee=abc;sw-decision=1;sw-mode=challenge",
            DivertError.BAD_PARAMETER,
            "sw-callee",
        ),
        ("sip:c@h;sw-callee=1;sw-mode=challenge", DivertError.BAD_PARAMETER, "sw-decision"),
        (
            "sip:c@h;sw-callee=1;sw-decision=a b;sw-mode=challenge",
            DivertError.BAD_PARAMETER,
            "sw-decision",
        ),
        ("sip:c@h;sw-callee=1;sw-decision=1;sw-mode=dance", DivertError.BAD_PARAMETER, "sw-mode"),
        (
            "sip:c@h;sw-callee=1;sw-decision=1;sw-mode=voicemail;sw-vm=yes",
            DivertError.BAD_PARAMETER,
            "sw-vm",
        ),
        (
            "sip:c@h;sw-callee=1;sw-decision=1;sw-mode=voicemail;sw-caller=%3C%3E",
            DivertError.BAD_PARAMETER,
            "sw-caller",
        ),
    ],
)
def test_malformed(uri: str, error: DivertError, word: str) -> None:
    got = parse_divert(uri)
    assert isinstance(got, DivertProblem)
    assert got.error is error and word in got.detail


@pytest.mark.parametrize(
    ("value", "user"),
    [
        ('"Alice" <sip:+15551230000@example.com;user=phone>;tag=1', "+15551230000"),
        ("sip:bob@h", "bob"),
        ("<tel:+1-555-123>", "+1-555-123"),
        ("garbage", None),
    ],
)
def test_uri_user(value: str, user: str | None) -> None:
    assert uri_user(value) == user
