"""Typed header views: Via (RFC 3261 §20.42, RFC 3581, RFC 5118), NameAddr, CSeq, lists."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.sip import NameAddr, SipParseError, SipUri, Via, parse_cseq, parse_name_addr, parse_via
from proxy.sip.headers import parse_contacts, parse_option_tags, parse_routes


def test_via_parse() -> None:
    v = parse_via("SIP / 2.0 / tcp  client.example.com : 5070 ; branch = z9hG4bKa1 ;rport;ttl=16")
    assert (v.protocol_name, v.protocol_version, v.transport) == ("SIP", "2.0", "tcp")
    assert (v.host, v.port) == ("client.example.com", 5070)
    assert v.branch == "z9hG4bKa1" and v.is_rfc3261_branch
    assert v.has_rport and v.rport is None and v.ttl == 16
    assert v.sent_by == ("client.example.com", 5070)
    assert str(v) == "SIP/2.0/tcp client.example.com:5070;branch=z9hG4bKa1;rport;ttl=16"


def test_via_ipv6_rfc5118() -> None:
    v = parse_via("SIP/2.0/UDP [2001:db8::9:1]:5060;branch=z9hG4bKas3;received=2001:db8::9:255")
    assert v.host == "[2001:db8::9:1]" and v.host_bare == "2001:db8::9:1"
    assert v.received == "2001:db8::9:255"
    assert parse_via("SIP/2.0/TLS [::1];branch=z9hG4bKx").sent_by == ("::1", 5061)


@pytest.mark.parametrize(
    "value",
    [
        "SIP/2.0/UDP",
        "SIP/2.0 host",
        "SIP/2.0/UDP host:99999",
        "SIP/2.0/UDP host;ttl=300",
        "SIP/2.0/UDP host;rport=abc",
        "SIP/2.0/UDP host;branch",
        "SIP/2.0/UDP host;;",
        "SIP/2.0/UDP [::zz]",
        "SIP/2.0/UDP host;branch=a b",
    ],
)
def test_via_rejects(value: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_via(value)
    assert info.value.reason == "Bad Via"


def test_with_received_rport() -> None:
    v = parse_via("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKx;rport")
    stamped = v.with_received_rport("198.51.100.7", 31337)
    assert str(stamped) == (
        "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKx;rport=31337;received=198.51.100.7"
    )
    assert stamped.rport == 31337
    plain = parse_via("SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx")
    assert plain.with_received_rport("10.0.0.1", 5060) == plain  # same host: nothing to add
    assert plain.with_received_rport("192.0.2.9", 5060).received == "192.0.2.9"
    v6 = parse_via("SIP/2.0/UDP [2001:db8::1];branch=z9hG4bKx;rport")
    assert v6.with_received_rport("[2001:db8::2]", 5062).received == "2001:db8::2"


NAME_ADDRS = [
    ('"Alice \\"A\\"" <sip:alice@x>;tag=1', 'Alice "A"', "sip:alice@x", "1", True),
    ("Bob Smith <sip:bob@y;lr>", "Bob Smith", "sip:bob@y;lr", None, True),
    ("caller<sip:c@z>", "caller", "sip:c@z", None, True),
    ("<tel:+15551234>;tag=xyz", None, "tel:+15551234", "xyz", True),
    ("sip:d@w;tag=9", None, "sip:d@w", "9", False),  # addr-spec: ;tag belongs to the header
    ("sip:d@w ; tag = 9", None, "sip:d@w", "9", False),
    ("<urn:uuid:f81d4fae>", None, "urn:uuid:f81d4fae", None, True),
]


@pytest.mark.parametrize(("text", "display", "uri", "tag", "angle"), NAME_ADDRS)
def test_name_addr(text: str, display: str | None, uri: str, tag: str | None, angle: bool) -> None:
    na = parse_name_addr(text)
    assert na.display_name == display
    assert str(na.uri) == uri
    assert na.tag == tag and na.angle == angle
    assert parse_name_addr(str(na)) == na


@pytest.mark.parametrize(
    "text",
    [
        '"unterminated <sip:a@b>',
        "Bell, Alex <sip:a@b>",
        "< sip:a@b >",
        "<sip:a@b",
        "sip:a@b?x=y",
        "sip:a@b, sip:c@d",
        "<sip:a@b>, <sip:c@d>",
        "",
        "<>",
        "<sip:a@b>;=x",
    ],
)
def test_name_addr_rejects(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_name_addr(text, "To")


def test_name_addr_edits() -> None:
    na = parse_name_addr("sip:bob@example.com")
    tagged = na.with_tag("abc")
    assert str(tagged) == "sip:bob@example.com;tag=abc" and tagged.tag == "abc"
    assert str(NameAddr(SipUri("h", "u", params=(("lr", None),)), "Joe")) == "Joe <sip:u@h;lr>"
    assert str(NameAddr(SipUri("h"), "Doe, John")) == '"Doe, John" <sip:h>'


def test_cseq() -> None:
    c = parse_cseq(" 0009 \t INVITE ")
    assert (c.number, c.method, str(c)) == (9, "INVITE", "9 INVITE")
    for bad in ("", "1", "INVITE 1", "-1 INVITE", "1 INV ITE", "4294967296 BYE"):
        with pytest.raises(SipParseError):
            parse_cseq(bad)


def test_lists() -> None:
    assert parse_contacts(["*"]) == "*"
    with pytest.raises(SipParseError):
        parse_contacts(["*", "<sip:a@b>"])
    with pytest.raises(SipParseError):
        parse_contacts(["<sip:a@b>;expires=99999999999"])
    cs = parse_contacts(['"A" <sip:a@b>;q=0.7;expires=60', "sip:c@d"])
    assert cs != "*" and [c.param("q") for c in cs] == ["0.7", None]
    rr = parse_routes(["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr;transport=tcp>"])
    assert all(isinstance(r.uri, SipUri) and r.uri.lr for r in rr)
    assert parse_option_tags(["timer", "100rel"]) == ("timer", "100rel")
    with pytest.raises(SipParseError):
        parse_option_tags(["a b"])


def test_identity_values_are_kept_intact() -> None:
    from proxy.sip import Headers

    raw = (
        "eyJhbGciOiJFUzI1NiJ9.eyJhdHRlc3QiOiJBIn0.c2ln;"
        "info=<https://cert.example.org/a.pem>;alg=ES256;ppt=shaken"
    )
    h = Headers([("Identity", raw), ("y", raw + "2")])
    assert h.get_all("identity") == [raw, raw + "2"]
    assert h.values("Identity") == [raw, raw + "2"]


def test_via_str_round_trip() -> None:
    v = Via("UDP", "192.0.2.1", 5060, (("branch", "z9hG4bK1"),))
    assert parse_via(str(v)) == v


_VIA_BITS = st.sampled_from(
    [
        "SIP",
        "/",
        "2.0",
        "UDP",
        " ",
        "  ",
        "host.example",
        "[::1]",
        ":",
        "5060",
        ";",
        "=",
        "branch",
        "z9hG4bK",
        "rport",
        "ttl",
        "300",
        "received",
        "1.2.3.4",
        '"',
        ",",
        "\t",
        "x",
    ]
)
_NA_BITS = st.sampled_from(
    [
        '"',
        "A",
        " ",
        "Bob",
        "<",
        ">",
        "sip:",
        "a@b",
        "tel:+1",
        ";",
        "tag",
        "=",
        "x",
        "\\",
        ",",
        "\t",
        "lr",
        "?",
        "@",
    ]
)


@given(st.lists(_VIA_BITS, max_size=14).map("".join))
def test_via_fast_path_agrees_with_general_path(text: str) -> None:
    from proxy.sip.headers import _parse_via_slow

    assert _outcome(parse_via, text) == _outcome(_parse_via_slow, text)


@given(st.lists(_NA_BITS, max_size=14).map("".join))
def test_name_addr_fast_path_agrees_with_general_path(text: str) -> None:
    from proxy.sip.headers import _parse_name_addr_slow

    fast = _outcome(parse_name_addr, text)
    slow = _outcome(_parse_name_addr_slow, text)
    # parse_name_addr folds every error into "Bad <what>" (detail keeps the cause)
    assert fast == slow or (isinstance(fast, tuple) and isinstance(slow, tuple))


def _outcome(fn: Callable[[str], object], text: str) -> object:
    try:
        return fn(text)
    except SipParseError as exc:
        return ("error", exc.reason)
