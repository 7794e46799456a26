"""The cheap paths of the message layer give the same values as the careful ones.

The parser checks a From/To with one regex (``address_fast``) and builds the NameAddr only
when asked, with its URI parsed on first access; a parsed sip: URI remembers its text for
``str()``; edited header blocks re-serialise the lines they did not change as received.
Each is checked here against the eager computation, for whatever the strategies generate.
"""

from __future__ import annotations

import dataclasses

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.sip import Headers, NameAddr, SipParseError, SipUri, parse_message, parse_uri
from proxy.sip.headers import (
    _parse_name_addr_slow,
    address_fast,
    address_from_match,
    parse_name_addr,
)
from proxy.sip.uri import _parse_uri

from .test_properties import _ANY_TEXT, HOST, MESSAGES, PARAMS, TOKEN, VALUE, sip_uris

DISPLAY = st.one_of(
    st.none(),
    TOKEN,
    st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters='"\\\r\n'), max_size=12
    ),
)


@st.composite
def addresses(draw: st.DrawFn) -> str:
    """From/To/Contact-like values: mostly well-formed, some mangled."""
    uri = draw(st.one_of(sip_uris().map(str), st.sampled_from(["tel:+1-212", "urn:x:y"])))
    disp = draw(DISPLAY)
    params = "".join(f";{n}" if v is None else f";{n}={v}" for n, v in draw(PARAMS))
    text = (f'"{disp}" ' if disp is not None else "") + f"<{uri}>{params}"
    if draw(st.booleans()):
        pos = draw(st.integers(0, len(text)))
        text = (
            text[:pos]
            + draw(st.sampled_from(["", " ", "%", "<", '"', ":99999", ";", "@"]))
            + text[pos:]
        )
    return text


def _eager(na: NameAddr) -> NameAddr:
    return NameAddr(parse_uri(na.uri_text), na.display_name, na.params, na.angle)


@settings(max_examples=500, deadline=None)
@given(st.one_of(addresses(), _ANY_TEXT))
def test_address_fast_agrees_with_parse_name_addr(value: str) -> None:
    m = address_fast(value)
    try:
        eager = parse_name_addr(value, "From")
    except SipParseError:
        assert m is None, value  # the one-regex check never passes what the parser refuses
        return
    if m is not None:
        lazy = address_from_match(m)
        assert lazy == eager
        assert lazy.uri == eager.uri and str(lazy) == str(eager) and lazy.tag == eager.tag
        # parse_name_addr is itself memoised and lazy: hold both to the careful parser too
        careful = _parse_name_addr_slow(value, "From")
        assert lazy == careful and str(lazy) == str(careful)
        assert lazy.uri == _parse_uri(lazy.uri_text)
    # parse_name_addr's own URI may be lazy: reading it gives the eager parse
    assert eager == _eager(eager)
    assert eager.uri == parse_uri(eager.uri_text)
    assert hash(eager) == hash(_eager(eager))


@settings(max_examples=300, deadline=None)
@given(sip_uris())
def test_remembered_uri_text_is_what_str_would_build(uri: SipUri) -> None:
    text = str(uri)
    parsed = parse_uri(text)
    assert parsed == uri
    rebuilt = dataclasses.replace(parsed)  # init=False text is not copied
    assert str(parsed) == str(rebuilt) == text
    assert str(parsed.with_param("lr")) == str(uri.with_param("lr"))  # edits rebuild


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MESSAGES)
def test_lazy_views_equal_eager_parses(msg: object) -> None:
    wire = msg.to_bytes()  # type: ignore[attr-defined]
    m = parse_message(wire)
    h = m.headers
    assert m.from_ == parse_name_addr(h.get("from") or "", "From")
    assert m.to == parse_name_addr(h.get("to") or "", "To")
    assert m.from_.uri == parse_uri(m.from_.uri_text)
    assert m.to.uri == parse_uri(m.to.uri_text)
    # the views above may be the very objects the memo holds: compare with fresh parses
    for view, name in ((m.from_, "from"), (m.to, "to")):
        careful = _parse_name_addr_slow(h.get(name) or "", "From")
        assert view == careful and str(view) == str(careful)
        assert view.uri == _parse_uri(view.uri_text)
    assert m.top_via == m.vias[0]
    assert m == parse_message(wire, deep=True)


EDITS = st.lists(
    st.one_of(
        st.tuples(st.just("prepend"), st.sampled_from(["Via", "Record-Route", "X-A"]), VALUE),
        st.tuples(st.just("add"), st.sampled_from(["Route", "X-B"]), VALUE),
        st.tuples(st.just("replace"), st.sampled_from(["Max-Forwards", "To", "X-A"]), VALUE),
        st.tuples(st.just("remove_first_value"), st.sampled_from(["via", "route"]), st.just("")),
        st.tuples(st.just("replace_first_value"), st.just("via"), VALUE),
        st.tuples(st.just("remove"), st.sampled_from(["x-a", "route"]), st.just("")),
    ),
    max_size=5,
)


def _edit(h: Headers, op: str, name: str, value: str) -> Headers:
    if op in ("remove", "remove_first_value"):
        return getattr(h, op)(name)  # type: ignore[no-any-return]
    return getattr(h, op)(name, value)  # type: ignore[no-any-return]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MESSAGES, EDITS, st.booleans())
def test_edited_parsed_headers_serialise_like_built_ones(
    msg: object, edits: list[tuple[str, str, str]], odd_spacing: bool
) -> None:
    wire = msg.to_bytes()  # type: ignore[attr-defined]
    if odd_spacing:  # a peer's spelling the proxy must pass through untouched
        wire = wire.replace(b": ", b" :  ", 2)
    parsed = parse_message(wire).headers
    built = Headers(parsed.fields)
    for op, name, value in edits:
        parsed = _edit(parsed, op, name, value)
        built = _edit(built, op, name, value)
    assert parsed == built
    assert parsed.lookup_keys == Headers(parsed.fields).lookup_keys
    out = parsed.to_bytes()
    if not odd_spacing:
        assert out == built.to_bytes()
    # what goes out parses back to the same fields
    lines = out.split(b"\r\n")[:-1]
    assert len(lines) == len(parsed)
    for line, (n, v) in zip(lines, parsed.fields, strict=True):
        name, _, value = line.decode("utf-8", "surrogateescape").partition(":")
        assert (name.strip(), value.strip(" \t")) == (n, v)


@settings(max_examples=300, deadline=None)
@given(st.one_of(addresses(), _ANY_TEXT, sip_uris().map(str)))
def test_memoised_parses_equal_fresh_ones(text: str) -> None:
    from proxy.sip.headers import _parse_cseq, _parse_name_addr, _parse_via, parse_cseq, parse_via
    from proxy.sip.uri import _parse_uri

    for memoised, fresh in (
        (parse_via, _parse_via),
        (parse_cseq, _parse_cseq),
        (parse_uri, _parse_uri),
        (lambda t: parse_name_addr(t, "To"), lambda t: _parse_name_addr(t, "To")),
    ):
        try:
            expected = fresh(text)
        except SipParseError as exc:
            for _ in range(2):  # a refused value is refused again, the same way
                try:
                    memoised(text)
                except SipParseError as again:
                    assert (again.status, again.reason) == (exc.status, exc.reason)
                else:
                    raise AssertionError(f"{memoised} accepted {text!r}")
            continue
        assert memoised(text) == expected
        assert memoised(text) == expected  # from the memo


def test_memo_is_bounded() -> None:
    from proxy.sip.grammar import Memo

    memo: Memo[int] = Memo(3)
    for i in range(10):
        memo.put(str(i), i)
        assert len(memo) <= 3
    assert memo.get("9") == 9
    long = Memo[int](3, max_key=4)
    assert long.put("12345", 5) == 5 and "12345" not in long  # parsed, not kept


CASED_PARAMS = st.lists(
    st.tuples(
        st.sampled_from(["branch", "Branch", "rport", "RPORT", "tag", "lr", "x"]),
        st.one_of(st.none(), TOKEN),
    ),
    max_size=5,
).map(tuple)


@given(CASED_PARAMS, st.sampled_from(["branch", "BRANCH", "rport", "tag", "Tag", "lr", "x", "y"]))
def test_kept_parameter_maps_answer_like_get_param(params: tuple, name: str) -> None:
    from proxy.sip import Via
    from proxy.sip.grammar import get_param, has_param

    expected = get_param(params, name)
    for view in (
        Via("UDP", "h", None, params),
        SipUri("h", params=params),
        NameAddr(SipUri("h"), None, params),
    ):
        assert view.param(name) == expected
        assert view.param(name) == expected  # from the kept map
    assert SipUri("h", params=params).has_param(name) == has_param(params, name)
    assert Via("UDP", "h", None, params).has_rport == has_param(params, "rport")
    assert NameAddr(SipUri("h"), None, params).tag == (get_param(params, "tag") or None)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MESSAGES)
def test_bare_lf_header_section_before_crlf_in_body(msg: object) -> None:
    """The fast path looks for a bare-LF header end only when it fails; a message whose
    LF-only header section is followed by a body holding CRLF CRLF still splits there."""
    wire = msg.to_bytes()  # type: ignore[attr-defined]
    head, _, _ = wire.partition(b"\r\n\r\n")
    body = b"x\r\n\r\ny"
    head = head.replace(b"\r\n", b"\n")
    lines = [
        ln for ln in head.split(b"\n") if not ln.lower().startswith((b"content-length", b"l:"))
    ]
    data = b"\n".join(lines) + b"\nContent-Length: %d\n\n" % len(body) + body
    m = parse_message(data)
    assert m.body == body
    assert m.headers.get("via") == msg.headers.get("via")  # type: ignore[attr-defined]


@given(
    st.sampled_from(["UDP", "TCP", "TLS", "SCTP"]),
    HOST,
    st.one_of(st.none(), st.integers(0, 65535)),
    st.lists(
        st.sampled_from(
            [
                ("branch", "z9hG4bK1"),
                ("Branch", "x.y"),
                ("rport", None),
                ("rport", "5060"),
                ("lr", None),
                ("x", "1"),
                ("TAG", "a-b"),
            ]
        ),
        max_size=4,
    ).map(tuple),
)
def test_views_built_by_slot_setters_equal_constructed_ones(
    transport: str, host: str, port: int | None, params: tuple
) -> None:
    from proxy.sip import Via, parse_via
    from proxy.sip.headers import _parse_via

    via = Via(transport, host, port, params)
    for parsed in (_parse_via(str(via)), parse_via(str(via))):
        assert parsed == via and hash(parsed) == hash(via) and repr(parsed) == repr(via)
    uri = SipUri(host, "u", None, port, params, ())
    from proxy.sip.uri import _parse_uri

    got = _parse_uri(str(uri))
    assert got == uri and hash(got) == hash(uri) and repr(got) == repr(uri)
    assert str(got) == str(uri)


@given(st.one_of(_ANY_TEXT, TOKEN, st.tuples(TOKEN, HOST).map("@".join)))
def test_call_id_memo_refuses_what_the_grammar_refuses(value: str) -> None:
    from proxy.sip.headers import _CALL_ID_RE, check_call_id

    for _ in range(2):  # fresh, then from the memo
        if _CALL_ID_RE.match(value):
            assert check_call_id(value) == value
        else:
            try:
                check_call_id(value)
            except SipParseError as exc:
                assert exc.reason == "Bad Call-ID"
            else:
                raise AssertionError(value)


@settings(max_examples=1000, deadline=None)
@given(
    st.sampled_from(["SIP/2.0 ", "SIP/2.0", "sip/2.0 ", "SIP/2.1 ", "SIP/2.0  "]),
    st.text("0123456789²a ", min_size=0, max_size=4),
    st.one_of(st.just(""), st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)),
)
def test_status_line_fast_path_reads_like_the_regex(prefix: str, code: str, rest: str) -> None:
    from proxy.sip.parser import _BAD_TEXT_RE, _STATUS_RE, _response

    line = prefix + code + rest
    h = Headers(())
    m = _STATUS_RE.match(line)
    try:
        got = _response(line, h)
    except SipParseError as exc:
        assert m is None or m.group(1)[4:] != "2.0" or _BAD_TEXT_RE.search(m.group(3) or ""), (
            line,
            exc,
        )
        return
    assert m is not None and m.group(1)[4:] == "2.0"
    assert (got.status, got.reason, got.version) == (int(m.group(2)), m.group(3) or "", m.group(1))


@given(st.one_of(_ANY_TEXT, addresses(), st.lists(addresses(), max_size=3).map(", ".join)))
def test_split_commas_shortcut_matches_the_scanner(value: str) -> None:
    from proxy.sip.grammar import comma_spans, split_commas

    expected = [value[a:b].strip() for a, b in comma_spans(value) if value[a:b].strip()]
    assert split_commas(value) == expected


@given(
    st.lists(
        st.sampled_from(
            [
                "",
                "  ",
                " \t",
                "SIP/2.0/UDP a;branch=z9hG4bK1",
                " SIP/2.0/UDP b ",
                "SIP/2.0/UDP c, SIP/2.0/UDP d",
                " , SIP/2.0/UDP e",
            ]
        ),
        min_size=1,
        max_size=3,
    )
)
def test_top_via_is_the_first_of_vias(values: list[str]) -> None:
    from proxy.sip import Request

    h = Headers([("Via", v) for v in values])
    vias = Request("OPTIONS", SipUri("x"), h).vias
    assert Request("OPTIONS", SipUri("x"), h).top_via == (vias[0] if vias else None)
