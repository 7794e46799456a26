"""RFC 8224 §4 Identity header parsing: forms seen in the wild, and every malformation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from attestation.failure import Failure
from attestation.identity import IdentityHeader, parse, split_values

TOKEN = "eyJhIjoxfQ.eyJiIjoyfQ.c2ln"
INFO = "https://cr.example.net/sp.pem"


def ok(value: str) -> IdentityHeader:
    out = parse(value)
    assert isinstance(out, IdentityHeader), out
    return out


def test_canonical_form() -> None:
    h = ok(f"{TOKEN};info=<{INFO}>;alg=ES256;ppt=shaken")
    assert (h.token, h.info, h.alg, h.ppt, h.compact) == (TOKEN, INFO, "ES256", "shaken", False)


@pytest.mark.parametrize(
    "value",
    [
        f'{TOKEN};info=<{INFO}>;alg=ES256;ppt="shaken"',  # quoted ppt (OpenSIPS)
        f"{TOKEN} ; info = <{INFO}> ; alg = ES256 ; ppt = shaken",  # SWS around ; and =
        f"{TOKEN};INFO=<{INFO}>;ALG=ES256;PPT=shaken",  # parameter names are case-insensitive
        f"{TOKEN};info=<{INFO}>;ppt=shaken;alg=ES256;foo=bar;flag",  # extension params
        f"  {TOKEN};info=<{INFO}>;alg=ES256;ppt=shaken\r\n",
        f"{TOKEN};ppt=shaken;info=<{INFO}>",  # info need not be first
    ],
)
def test_accepted_variants(value: str) -> None:
    h = ok(value)
    assert h.token == TOKEN and h.info == INFO and h.ppt == "shaken"


def test_info_uri_with_semicolon_and_equals() -> None:
    # secsipidx/Kamailio's naive split breaks on this; the URI is opaque inside <>.
    uri = "https://cr.example.net/cert;v=2.pem"
    assert ok(f"{TOKEN};info=<{uri}>;ppt=shaken").info == uri


def test_compact_form_is_recognised() -> None:
    assert ok(f"..c2ln;info=<{INFO}>;ppt=shaken").compact


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "malformed_header"),
        (f";info=<{INFO}>", "malformed_header"),
        (f"{TOKEN}", "missing_info"),
        (f"{TOKEN};alg=ES256;ppt=shaken", "missing_info"),
        (f"{TOKEN};info={INFO}", "bad_info_uri"),  # not bracketed
        (f"{TOKEN};info=<{INFO}", "bad_info_uri"),  # unterminated
        (f"{TOKEN};info=<>", "bad_info_uri"),
        (f"{TOKEN};info=<not a uri>", "bad_info_uri"),
        (f"{TOKEN};info=<cr.example.net/sp.pem>", "bad_info_uri"),  # not absolute
        (f"{TOKEN};info=<{INFO}>;info=<{INFO}>", "malformed_header"),
        (f"{TOKEN};info=<{INFO}>;ppt=shaken;ppt=div", "malformed_header"),
        (f"{TOKEN};info=<{INFO}>;alg=", "malformed_header"),
        (f"{TOKEN};info=<{INFO}>;ppt", "malformed_header"),
        (f'{TOKEN};info=<{INFO}>;ppt="shaken', "malformed_header"),
        (f"{TOKEN};info=<{INFO}>;", "malformed_header"),  # dangling ;
        (f"{TOKEN};info=<{INFO}> junk", "malformed_header"),
        (f"a.b;info=<{INFO}>", "malformed_header"),  # two segments
        (f"a.b.c.d;info=<{INFO}>", "malformed_header"),  # four segments (JWE-like)
        (f"eyJh+IjoxfQ.eyJiIjoyfQ.c2ln;info=<{INFO}>", "malformed_header"),  # not base64url
        (f"eyJhIjoxfQ==.eyJiIjoyfQ.c2ln;info=<{INFO}>", "malformed_header"),  # padding
        ("x" * 20000, "malformed_header"),
    ],
)
def test_malformed(value: str, reason: str) -> None:
    out = parse(value)
    assert isinstance(out, Failure), out
    assert out.reason == reason
    assert out.sip_code in (436, 438)
    assert out.detail


def test_missing_info_is_436_and_garbage_is_438() -> None:
    missing = parse(TOKEN)
    garbage = parse("not-a-passport")
    assert isinstance(missing, Failure) and missing.sip_code == 436
    assert isinstance(garbage, Failure) and garbage.sip_code == 438


def test_split_several_values_and_fields() -> None:
    a = f"{TOKEN};info=<{INFO}>;ppt=shaken"
    b = f"{TOKEN};info=<https://x.example/a,b.pem>;ppt=div"
    c = f'{TOKEN};info=<{INFO}>;ppt="a,b"'
    assert split_values((f"{a}, {b}", c, " ", "")) == [a, b, c]


@given(st.text(max_size=300))
def test_parse_never_raises(value: str) -> None:
    out = parse(value)
    assert isinstance(out, IdentityHeader | Failure)
    if isinstance(out, Failure):
        assert out.reason and out.sip_code in (436, 438)


@given(st.lists(st.text(alphabet=st.sampled_from('ab.;=<>",\\ '), max_size=40), max_size=4))
def test_split_never_raises(fields: list[str]) -> None:
    for v in split_values(fields):
        assert v == v.strip()
        assert isinstance(parse(v), IdentityHeader | Failure)
