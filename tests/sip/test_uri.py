"""URIs: SIP/SIPS (RFC 3261 §19.1, RFC 5118 IPv6), tel (RFC 3966), others kept opaque."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.sip import AbsoluteUri, SipParseError, SipUri, TelUri, parse_uri
from proxy.sip.uri import _parse_sip, _parse_sip_slow, uri_equivalent

GOOD = [
    ("sip:alice@example.com", SipUri("example.com", "alice")),
    (
        "sips:alice:secret@example.com:5061",
        SipUri("example.com", "alice", "secret", 5061, scheme="sips"),
    ),
    (
        "sip:example.com;lr;transport=TCP",
        SipUri("example.com", params=(("lr", None), ("transport", "TCP"))),
    ),
    ("sip:[2001:db8::10]:5070", SipUri("[2001:db8::10]", port=5070)),
    ("sip:user@[::1];maddr=[::1]", SipUri("[::1]", "user", params=(("maddr", "[::1]"),))),
    (
        "sip:a%20b@h?subject=hi&priority=urgent",
        SipUri("h", "a%20b", headers=(("subject", "hi"), ("priority", "urgent"))),
    ),
    (
        "sip:+1212555@gw.example.net;user=phone",
        SipUri("gw.example.net", "+1212555", params=(("user", "phone"),)),
    ),
    ("SIP:Bob@EXAMPLE.com", SipUri("EXAMPLE.com", "Bob", scheme="SIP")),
    ("sip:192.0.2.4", SipUri("192.0.2.4")),
    ("tel:+1-201-555-0123", TelUri("+1-201-555-0123")),
    ("tel:7042;phone-context=example.com", TelUri("7042", (("phone-context", "example.com"),))),
    ("urn:service:sos", AbsoluteUri("urn", "service:sos")),
    ("soap.beep://192.0.2.103:3002", AbsoluteUri("soap.beep", "//192.0.2.103:3002")),
]


@pytest.mark.parametrize(("text", "uri"), GOOD, ids=[g[0] for g in GOOD])
def test_parse_and_str(text: str, uri: object) -> None:
    assert parse_uri(text) == uri
    assert str(uri) == text


BAD = [
    "sip:",
    "sip:user@",
    "sip:@host",
    "sip:host:99999",
    "sip:host:5x",
    "sip:[2001:db8::zz]",
    "sip:[::1",
    "sip:ho st",
    "sip:host;",
    "sip:host;a=",
    "sip:host?",
    "sip:host?a",
    "sip:a%zz@h",
    "sip:-bad-",
    "tel:",
    "tel:xyz;x",
    "tel:+",
    "nocolon",
    ":x",
    "1sip:x",
    "http://exa mple",
]


@pytest.mark.parametrize("text", BAD)
def test_rejects(text: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_uri(text)
    assert info.value.status == 400


def test_accessors_and_edits() -> None:
    u = parse_uri("sip:alice%40home@example.com;Transport=TLS;lr")
    assert isinstance(u, SipUri)
    assert u.user_unescaped == "alice@home"
    assert u.transport == "tls" and u.lr and u.param("TRANSPORT") == "TLS"
    assert str(u.with_param("lr")) == "sip:alice%40home@example.com;Transport=TLS;lr"
    assert str(u.without_param("transport")) == "sip:alice%40home@example.com;lr"
    assert str(u.with_param("maddr", "192.0.2.1")).endswith(";lr;maddr=192.0.2.1")
    assert parse_uri("sip:[::1]:5060").host_bare == "::1"  # type: ignore[union-attr]
    t = parse_uri("tel:+1-201-555-0123;ext=22")
    assert isinstance(t, TelUri) and t.is_global and t.param("ext") == "22"


_URI_CHARS = st.sampled_from([*list("abAZ09@:;=?&%[]._-+!~*'()$,/ \"<>"), "%41", "%4", "::"])


@given(st.lists(_URI_CHARS, max_size=30).map("".join))
def test_fast_path_agrees_with_the_step_by_step_path(rest: str) -> None:
    """The one-regex fast path must accept exactly what the careful path accepts."""
    try:
        fast: object = _parse_sip("sip", rest, "sip:" + rest)
    except SipParseError:
        fast = "error"
    try:
        slow: object = _parse_sip_slow("sip", rest, "sip:" + rest)
    except SipParseError:
        slow = "error"
    assert fast == slow
    if isinstance(fast, SipUri):
        assert str(fast) == "sip:" + rest


RFC5118_VALID = [
    # RFC 5118 §4.1-§4.10 shapes
    ("sip:[2001:db8::10]", "[2001:db8::10]", None),
    ("sip:[2001:db8::10:5070]", "[2001:db8::10:5070]", None),  # §4.2: all host, no port
    ("sip:[2001:db8::10]:5070", "[2001:db8::10]", 5070),
    ("sip:user@[::ffff:192.0.2.10]", "[::ffff:192.0.2.10]", None),  # §4.7 IPv4-mapped
    ("sip:[2001:db8:0:0:0:0:0:10]", "[2001:db8:0:0:0:0:0:10]", None),
]


@pytest.mark.parametrize(("text", "host", "port"), RFC5118_VALID)
def test_rfc5118_ipv6_references(text: str, host: str, port: int | None) -> None:
    u = parse_uri(text)
    assert isinstance(u, SipUri) and (u.host, u.port) == (host, port)
    assert str(u) == text


@pytest.mark.parametrize(
    "text", ["sip:2001:db8::10", "sip:[2001:db8:::192.0.2.1]", "sip:[2001:db8::10", "sip:[]"]
)
def test_rfc5118_invalid(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_uri(text)


def test_bare_ipv6_host_is_bracketed_on_output() -> None:
    assert str(SipUri("2001:db8::1", "u", port=5060)) == "sip:u@[2001:db8::1]:5060"


# RFC 3261 §19.1.4's own examples
EQUIVALENT = [
    ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
    ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
    (
        "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
        "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
    ),
    (
        "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
        "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
    ),
]
NOT_EQUIVALENT = [
    ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
    ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
    ("sip:a@b", "sips:a@b"),
    ("sip:a@b", "tel:+1"),
]


@pytest.mark.parametrize(("a", "b"), EQUIVALENT)
def test_rfc3261_equivalent(a: str, b: str) -> None:
    assert uri_equivalent(parse_uri(a), parse_uri(b))
    assert uri_equivalent(parse_uri(b), parse_uri(a))


@pytest.mark.parametrize(("a", "b"), NOT_EQUIVALENT)
def test_rfc3261_not_equivalent(a: str, b: str) -> None:
    assert not uri_equivalent(parse_uri(a), parse_uri(b))
