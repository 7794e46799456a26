"""Every RFC 4475 torture message, handled as the RFC says a proxy must.

Valid messages (§3.1.1, and the §3.2 to §3.4 ones whose *semantics* the proxy judges) must
parse and round-trip; invalid ones (§3.1.2) must raise SipParseError with the status the
RFC names. Where the RFC leaves a choice we note what spitwall does.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from proxy.sip import (
    AbsoluteUri,
    Request,
    Response,
    SipParseError,
    SipUri,
    StreamFramer,
    error_response,
    parse_message,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "rfc4475"
MESSAGES = DATA / "messages"

# file -> (RFC 4475 section, expectation). "ok" = parses (default and deep mode).
# (status, reason) = SipParseError in the default (fast) parse; ("deep", status, reason) =
# accepted by the fast parse (the field is not on a proxy's path) but rejected by
# parse_message(..., deep=True).
VALID: dict[str, tuple[str, str]] = {
    "wsinv.dat": ("3.1.1.1", "short tortuous INVITE: folding, LWS, compact forms"),
    "intmeth.dat": ("3.1.1.2", "wide range of valid characters"),
    "esc01.dat": ("3.1.1.3", "valid use of % escaping"),
    "escnull.dat": ("3.1.1.4", "escaped NULs in URIs"),
    "esc02.dat": ("3.1.1.5", "% when it is not an escape"),
    "lwsdisp.dat": ("3.1.1.6", "no LWS between display name and <"),
    "longreq.dat": ("3.1.1.7", "long header values"),
    "dblreq.dat": ("3.1.1.8", "extra trailing octets in a UDP datagram (ignored)"),
    "semiuri.dat": ("3.1.1.9", "semicolon-separated parameters in URI user part"),
    "transports.dat": ("3.1.1.10", "varied and unknown transport types"),
    "mpart01.dat": ("3.1.1.11", "multipart MIME body"),
    "unreason.dat": ("3.1.1.12", "unusual reason phrase"),
    "noreason.dat": ("3.1.1.13", "empty reason phrase"),
    "baddate.dat": ("3.1.2.12", "non-GMT Date: RFC allows ignoring it; a proxy does"),
    "badbranch.dat": ("3.2.1", "branch=z9hG4bK only: parse; transaction layer decides"),
    "unkscm.dat": ("3.3.2", "unknown Request-URI scheme: parses; proxy answers 416"),
    "novelsc.dat": ("3.3.3", "known but atypical scheme: parses; proxy answers 416"),
    "unksm2.dat": ("3.3.4", "unknown URI schemes in header fields: parses"),
    "bext01.dat": ("3.3.5", "unknown Proxy-Require: parses; proxy answers 420"),
    "invut.dat": ("3.3.6", "unknown Content-Type: parses; forwarded (UAS answers 415)"),
    "regaut01.dat": ("3.3.7", "unknown authorization scheme: parses"),
    "bcast.dat": ("3.3.10", "200 OK with broadcast received= in Via: parses"),
    "zeromf.dat": ("3.3.11", "Max-Forwards: 0: parses; proxy answers 483"),
    "cparam01.dat": ("3.3.12", "REGISTER with a Contact parameter"),
    "cparam02.dat": ("3.3.13", "REGISTER with a url-parameter"),
    "regescrt.dat": ("3.3.14", "REGISTER with a URL-escaped header in Contact <...>"),
    "sdp01.dat": ("3.3.15", "unacceptable Accept: parses (UAS answers 406)"),
    "inv2543.dat": ("3.4.1", "RFC 2543 syntax (no branch, no Max-Forwards): accepted"),
}

INVALID: dict[str, tuple[str, int, str, bool]] = {
    # file: (section, status, reason, only_in_deep_mode)
    "badinv01.dat": ("3.1.2.1", 400, "Bad Via", False),
    "clerr.dat": ("3.1.2.2", 400, "Bad Content-Length", False),
    "ncl.dat": ("3.1.2.3", 400, "Bad Content-Length", False),
    "scalar02.dat": ("3.1.2.4", 400, "Bad CSeq", False),
    # a response: nobody is answered, the proxy drops it (error_response -> None)
    "scalarlg.dat": ("3.1.2.5", 400, "Bad CSeq", False),
    "quotbal.dat": ("3.1.2.6", 400, "Bad To", False),
    "ltgtruri.dat": ("3.1.2.7", 400, "Bad Request-URI", False),
    "lwsruri.dat": ("3.1.2.8", 400, "Bad Request-Line", False),
    "lwsstart.dat": ("3.1.2.9", 400, "Bad Request-Line", False),
    # RFC allows being liberal; spitwall rejects (simpler than re-emitting the spaces)
    "trws.dat": ("3.1.2.10", 400, "Bad Request-Line", False),
    "escruri.dat": ("3.1.2.11", 400, "Bad Request-URI", False),
    # Contact is not on a proxy's path; only the deep parse looks at it
    "regbadct.dat": ("3.1.2.13", 400, "Bad Contact", True),
    "badaspec.dat": ("3.1.2.14", 400, "Bad To", False),
    "baddn.dat": ("3.1.2.15", 400, "Bad From", False),
    "badvers.dat": ("3.1.2.16", 505, "Version Not Supported", False),
    "mismatch01.dat": ("3.1.2.17", 400, "CSeq Method Mismatch", False),
    # RFC prefers 501 for an unknown method but allows 400; a proxy forwards unknown
    # methods, so the mismatch is the defect it reports
    "mismatch02.dat": ("3.1.2.18", 400, "CSeq Method Mismatch", False),
    "bigcode.dat": ("3.1.2.19", 400, "Bad Status-Line", False),
    "insuf.dat": ("3.3.1", 400, "Missing From", False),
    "multi01.dat": ("3.3.8", 400, "Multiple From Header Fields", False),
    "mcl01.dat": ("3.3.9", 400, "Multiple Content-Length Header Fields", False),
    # in the RFC's archive, not described in its text: no SIP-Version, a line without ':'
    "test.dat": ("archive", 400, "Malformed Header Line", False),
}


def test_corpus_is_byte_exact() -> None:
    sums = (DATA / "SHA256SUMS").read_text().split("\n")
    checked = 0
    for line in sums:
        if not line.strip():
            continue
        digest, name = line.split(maxsplit=1)
        assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == digest, name
        checked += 1
    assert checked == 51


def test_every_file_has_an_expectation() -> None:
    files = {p.name for p in MESSAGES.glob("*.dat")}
    assert files == set(VALID) | set(INVALID)
    assert len(files) == 50


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_message_parses_and_round_trips(name: str) -> None:
    data = (MESSAGES / name).read_bytes()
    msg = parse_message(data)
    deep = parse_message(data, deep=True)
    assert deep == msg
    again = parse_message(msg.to_bytes(), deep=True)
    expected_headers = msg.headers
    if "content-length" not in msg.headers:
        expected_headers = expected_headers.add("Content-Length", str(len(msg.body)))
    assert again.headers == expected_headers
    assert again.body == msg.body
    if isinstance(msg, Request):
        assert isinstance(again, Request)
        assert (again.method, again.uri, again.version) == (msg.method, msg.uri, msg.version)
    else:
        assert isinstance(again, Response)
        assert (again.status, again.reason) == (msg.status, msg.reason)
    # An unmodified message without folding goes out byte-for-byte as it came in.
    if msg.headers.raw is not None and "content-length" in msg.headers:
        assert data.startswith(msg.to_bytes())


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_message_is_rejected(name: str) -> None:
    section, status, reason, deep_only = INVALID[name]
    data = (MESSAGES / name).read_bytes()
    if deep_only:
        parse_message(data)
    with pytest.raises(SipParseError) as info:
        parse_message(data, deep=deep_only)
    assert (info.value.status, info.value.reason) == (status, reason), section
    reply = error_response(info.value)
    if info.value.is_request and info.value.can_reply:
        assert reply is not None
        assert reply.status == status and reply.reason == reason
        wire = reply.to_bytes()
        assert wire.startswith(f"SIP/2.0 {status} {reason}\r\n".encode())
        # the reply copies the offending fields as received (RFC 3261 §8.2.6.2)
        assert f"Call-ID: {info.value.call_id}\r\n".encode() in wire
    else:
        assert reply is None


def _msg(name: str) -> Request | Response:
    return parse_message((MESSAGES / name).read_bytes())


def test_wsinv_details() -> None:
    m = _msg("wsinv.dat")
    assert isinstance(m, Request)
    assert m.to.tag == "1918181833n"
    assert m.from_.display_name == 'J Rosenberg \\"'
    assert m.from_.tag == "98asjd8"
    assert m.max_forwards == 68
    assert (m.cseq.number, m.cseq.method) == (9, "INVITE")
    assert m.top_via is not None and m.top_via.transport == "UDP"
    assert m.top_via.host == "192.0.2.2" and m.top_via.branch == "390skdjuw"
    assert m.headers.get("s") == ""
    assert m.headers.get("newfangledheader") == "newfangled value continued newfangled value"
    assert m.headers.raw is None  # folded: serialized unfolded
    assert len(m.body) == 150


def test_escapes_and_nulls() -> None:
    m = _msg("esc01.dat")
    assert isinstance(m, Request) and isinstance(m.uri, SipUri)
    assert m.uri.user_unescaped == "sips:user@example.com"
    assert isinstance(m.to.uri, SipUri) and m.to.uri.user_unescaped == "user"
    n = _msg("escnull.dat")
    assert isinstance(n.to.uri, SipUri) and n.to.uri.user_unescaped == "null-\x00-null"
    contacts = n.contacts
    assert contacts != "*" and len(contacts) == 2
    e = _msg("esc02.dat")
    assert isinstance(e, Request) and e.method == "RE%47IST%45R"
    assert e.from_.display_name == "%Z%45"
    assert len(e.headers.values("contact")) == 2  # C%6Fntact is another header


def test_semiuri_and_intmeth_user_parts() -> None:
    m = _msg("semiuri.dat")
    assert isinstance(m, Request) and isinstance(m.uri, SipUri)
    assert m.uri.user == "user;par=u%40example.net" and m.uri.host == "example.com"
    assert m.uri.params == ()
    i = _msg("intmeth.dat")
    assert isinstance(i, Request) and isinstance(i.uri, SipUri)
    assert i.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert i.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"


def test_dblreq_ignores_the_second_request() -> None:
    m = _msg("dblreq.dat")
    assert isinstance(m, Request) and m.method == "REGISTER" and m.body == b""


def test_transports_and_broadcast_via() -> None:
    m = _msg("transports.dat")
    assert [v.transport for v in m.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    b = _msg("bcast.dat")
    assert isinstance(b, Response) and b.status == 200
    assert b.vias[1].host == "255.255.255.255"


def test_reason_phrases() -> None:
    n = _msg("noreason.dat")
    assert isinstance(n, Response) and (n.status, n.reason) == (100, "")
    u = _msg("unreason.dat")
    assert isinstance(u, Response) and u.status == 200
    assert u.reason.startswith("= 2**3 * 5**2 \u043d\u043e")


def test_semantic_cases_expose_what_the_proxy_needs() -> None:
    bad_branch = _msg("badbranch.dat").top_via
    assert bad_branch is not None and bad_branch.branch == "z9hG4bK"
    assert not bad_branch.is_rfc3261_branch
    for name in ("unkscm.dat", "novelsc.dat"):
        m = _msg(name)
        assert isinstance(m, Request) and isinstance(m.uri, AbsoluteUri)  # -> 416
    assert isinstance(_msg("unksm2.dat").to.uri, AbsoluteUri)
    assert _msg("bext01.dat").option_tags("Proxy-Require") == (
        "noProxiesSupportThis",
        "norDoAnyProxiesSupportThis",
    )  # -> 420 with Unsupported
    assert _msg("zeromf.dat").max_forwards == 0  # -> 483
    inv = _msg("inv2543.dat")
    assert inv.max_forwards is None and inv.top_via is not None
    assert inv.top_via.branch is None
    reg = _msg("regescrt.dat").contacts
    assert (
        reg != "*"
        and isinstance(reg[0].uri, SipUri)
        and reg[0].uri.headers == (("Route", "%3Csip:sip.example.com%3E"),)
    )


def test_baddn_over_a_stream_uses_the_terminated_variant() -> None:
    data = (DATA / "variants" / "baddn_terminated.dat").read_bytes()
    framer = StreamFramer()
    frames = framer.feed(data)
    assert len(frames) == 1
    with pytest.raises(SipParseError) as info:
        parse_message(frames[0])
    assert info.value.reason == "Bad From"
    assert "Bad Display Name" in info.value.detail


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_messages_over_a_stream(name: str) -> None:
    """The same torture messages through the TCP framer, one byte at a time."""
    data = (MESSAGES / name).read_bytes()
    msg = parse_message(data)
    if "content-length" not in msg.headers:
        framer = StreamFramer()
        with pytest.raises(SipParseError) as info:
            for i in range(len(data)):
                framer.feed(data[i : i + 1])
        assert info.value.reason == "Missing Content-Length"  # RFC 3261 §18.3
        return
    framer = StreamFramer()
    frames: list[bytes] = []
    if name == "dblreq.dat":
        # On a stream the "trailing octets" are a second request; its Content-Length is
        # shorter than its body, and the leftover bytes are not a message.
        with pytest.raises(SipParseError):
            for i in range(len(data)):
                frames += framer.feed(data[i : i + 1])
        assert [parse_message(f).cseq.method for f in frames] == ["REGISTER", "INVITE"]
        return
    for i in range(len(data)):
        frames += framer.feed(data[i : i + 1])
    assert frames and parse_message(frames[0]) == msg
