"""Property tests (hypothesis): round trip, chunking-independent framing, no crashes."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.sip import (
    Headers,
    Request,
    Response,
    SipParseError,
    SipUri,
    StreamFramer,
    header_key,
    parse_message,
)

from .msgs import invite

TOKEN = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~",
    min_size=1,
    max_size=12,
)
HOST = st.from_regex(r"[a-z][a-z0-9]{0,8}(\.[a-z][a-z0-9]{0,8}){0,3}", fullmatch=True)
USER = st.from_regex(r"[A-Za-z0-9\-_.!~*'()&=+$,;?/]{1,10}|%[0-9A-F]{2}", fullmatch=True)
PTOKEN = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!*_+~", min_size=1, max_size=8
)
PARAMS = st.lists(st.tuples(PTOKEN, st.one_of(st.none(), PTOKEN)), max_size=3).map(tuple)
_RESERVED = {
    "via",
    "from",
    "to",
    "call-id",
    "cseq",
    "max-forwards",
    "content-length",
    "contact",
    "route",
    "record-route",
    "require",
    "proxy-require",
    "supported",
    "unsupported",
    "expires",
}
EXTRA_NAME = TOKEN.filter(lambda n: header_key(n) not in _RESERVED)
VALUE = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=40
).map(lambda s: s.strip(" \t"))


@st.composite
def sip_uris(draw: st.DrawFn) -> SipUri:
    return SipUri(
        draw(HOST),
        draw(st.one_of(st.none(), USER)),
        None,
        draw(st.one_of(st.none(), st.integers(0, 65535))),
        draw(PARAMS),
        (),
        draw(st.sampled_from(["sip", "sips"])),
    )


@st.composite
def common_headers(draw: st.DrawFn, method: str, body: bytes) -> Headers:
    via = f"SIP/2.0/{draw(st.sampled_from(['UDP', 'TCP', 'TLS']))} {draw(HOST)}"
    via += f";branch=z9hG4bK{draw(TOKEN)}"
    fields = [
        (draw(st.sampled_from(["Via", "v", "VIA"])), via),
        ("From", f"<{draw(sip_uris())}>;tag={draw(TOKEN)}"),
        (draw(st.sampled_from(["To", "t"])), f"{draw(TOKEN)} <{draw(sip_uris())}>"),
        ("Call-ID", draw(TOKEN) + "@" + draw(HOST)),
        ("CSeq", f"{draw(st.integers(0, 2**32 - 1))} {method}"),
        ("Max-Forwards", str(draw(st.integers(0, 255)))),
    ]
    extras = draw(st.lists(st.tuples(EXTRA_NAME, VALUE), max_size=6))
    fields += extras
    fields = draw(st.permutations(fields))
    fields.append((draw(st.sampled_from(["Content-Length", "l"])), str(len(body))))
    return Headers(fields)


@st.composite
def requests(draw: st.DrawFn) -> Request:
    method = draw(st.one_of(st.sampled_from(["INVITE", "ACK", "BYE", "OPTIONS"]), TOKEN))
    body = draw(st.binary(max_size=64))
    return Request(method, draw(sip_uris()), draw(common_headers(method, body)), body)


@st.composite
def responses(draw: st.DrawFn) -> Response:
    body = draw(st.binary(max_size=64))
    reason = draw(st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20))
    return Response(
        draw(st.integers(100, 699)), reason, draw(common_headers(draw(TOKEN), body)), body
    )


MESSAGES = st.one_of(requests(), responses())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MESSAGES)
def test_parse_of_serialize_is_identity(msg: Request | Response) -> None:
    wire = msg.to_bytes()
    again = parse_message(wire, deep=True)
    assert again == msg
    assert again.to_bytes() == wire
    head, _, body = wire.partition(b"\r\n\r\n")
    assert parse_message(head.replace(b"\r\n", b"\n") + b"\n\n" + body) == msg  # bare LF


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(MESSAGES, st.sampled_from([b"", b"\r\n", b"\r\n\r\n"])), min_size=1, max_size=4
    ),
    st.lists(st.integers(1, 200), max_size=30),
)
def test_framer_is_independent_of_chunking(
    items: list[tuple[Request | Response, bytes]], cuts: list[int]
) -> None:
    stream = b"".join(keepalive + m.to_bytes() for m, keepalive in items)
    whole = StreamFramer()
    expected = whole.feed(stream)
    assert [parse_message(f) for f in expected] == [m for m, _ in items]
    chunked = StreamFramer()
    got: list[bytes] = []
    i = 0
    for n in cuts:
        got += chunked.feed(stream[i : i + n])
        i += n
    got += chunked.feed(stream[i:])
    assert got == expected
    assert chunked.take_pings() == whole.take_pings()


def _exercise(data: bytes) -> None:
    for deep in (False, True):
        try:
            m = parse_message(data, deep=deep)
        except SipParseError as exc:
            assert 400 <= exc.status <= 599
            continue
        m.to_bytes()
        for attr in (
            "vias",
            "top_via",
            "from_",
            "to",
            "cseq",
            "max_forwards",
            "contacts",
            "routes",
            "record_routes",
        ):
            try:
                getattr(m, attr)
            except SipParseError:
                pass
    framer = StreamFramer()
    try:
        framer.feed(data)
    except SipParseError:
        pass


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_sip_parse_error(data: bytes) -> None:
    _exercise(data)


BASE = invite(
    extra="Contact: <sip:a@192.0.2.1>;expires=60\nRoute: <sip:p;lr>\nRequire: x", body=b"v=0\r\n"
)


@settings(max_examples=2000, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, len(BASE)), st.binary(min_size=0, max_size=4), st.integers(0, 3)),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_messages_raise_only_sip_parse_error(edits: list[tuple[int, bytes, int]]) -> None:
    data = BASE
    for pos, insert, delete in edits:
        data = data[:pos] + insert + data[pos + delete :]
    _exercise(data)


@given(st.lists(st.tuples(st.sampled_from(["Via", "Route", "X"]), VALUE), max_size=6))
def test_remove_first_value_pops_one_element(fields: list[tuple[str, str]]) -> None:
    h = Headers(fields)
    for name in ("via", "route", "x"):
        before = h.values(name)
        after = h.remove_first_value(name).values(name)
        assert after == before[1:]


_PIECES = [*'<>";:,=?@%[]\\/ \t', "sip:", "tel:", "SIP/2.0/UDP ", "z9hG4bK"]
_ANY_TEXT = st.lists(
    st.one_of(st.sampled_from(_PIECES), st.characters(blacklist_categories=("Cs",))),
    max_size=40,
).map("".join)


@settings(max_examples=1000, deadline=None)
@given(_ANY_TEXT)
def test_field_grammars_raise_only_sip_parse_error(text: str) -> None:
    from proxy.sip import parse_cseq, parse_name_addr, parse_uri, parse_via
    from proxy.sip.grammar import split_commas, unescape
    from proxy.sip.headers import parse_contacts, parse_option_tags, parse_routes

    for fn in (parse_uri, parse_via, parse_name_addr, parse_cseq):
        try:
            fn(text)
        except SipParseError:
            pass
    for list_fn in (parse_contacts, parse_routes, parse_option_tags):
        try:
            list_fn(split_commas(text))
        except SipParseError:
            pass
    unescape(text)
