"""Small message builders shared by the tests in this package."""

from __future__ import annotations


def invite(
    *,
    extra: str = "",
    body: bytes = b"",
    cl: str | None = "auto",
    first: str = "INVITE sip:bob@example.com SIP/2.0",
    eol: str = "\r\n",
) -> bytes:
    lines = [
        first,
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK74bf9;rport",
        "Max-Forwards: 70",
        'From: "Alice" <sip:alice@example.org>;tag=9fxced76sl',
        "To: <sip:bob@example.com>",
        "Call-ID: 3848276298220188511@192.0.2.1",
        "CSeq: 1 INVITE",
    ]
    if extra:
        lines += extra.split("\n")
    if cl == "auto":
        lines.append(f"Content-Length: {len(body)}")
    elif cl is not None:
        lines.append(f"Content-Length: {cl}")
    return (eol.join(lines) + eol + eol).encode() + body
