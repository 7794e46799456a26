"""RFC 8224 §8.3 canonical TNs from the forms SIP requests carry them in."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from attestation.tn import canonicalize, is_anonymous, is_canonical, tn_from_uri


@pytest.mark.parametrize(
    ("uri", "cc", "expected"),
    [
        ("tel:+1-215-555-1212", "1", "12155551212"),
        ("tel:+1.215.555.1212", "1", "12155551212"),
        ("tel:+1(215)555-1212;ext=22", "1", "12155551212"),
        ("tel:5551212;phone-context=+1-215", "1", "12155551212"),
        ("tel:2155551212", "1", "12155551212"),
        ("sip:+12155551212@carrier.example;user=phone", "1", "12155551212"),
        ("sips:+12155551212@carrier.example", "1", "12155551212"),
        ("sip:+12155551212;npdi;rn=+12155550000@h;user=phone", "1", "12155551212"),
        ("sip:%2B12155551212@h", "1", "12155551212"),
        ('"Bob" <sip:2155551212@gw.example>;tag=a1', "1", "12155551212"),
        ("<sip:12155551212@gw.example>", "1", "12155551212"),  # NANP trunk prefix 1
        ("sip:+442079460000@uk.example", "1", "442079460000"),
        ("sip:02079460000@uk.example", "44", "442079460000"),  # national prefix 0 dropped
        ("sip:0301234567@de.example", "49", "49301234567"),
        ("+1 (215) 555-1212".replace(" ", ""), "1", "12155551212"),
        ("12155551212", None, "12155551212"),
    ],
)
def test_canonical_forms(uri: str, cc: str | None, expected: str) -> None:
    assert tn_from_uri(uri, cc) == expected


@pytest.mark.parametrize(
    "uri",
    [
        "sip:alice@example.com",
        "sip:example.com",
        "urn:service:sos",
        "mailto:bob@example.com",
        "tel:+",
        "tel:+1-215-555-121a",
        "sip:+1215555121299999999@h",  # longer than 15 digits
        "sip:+12 15@h",
        "",
    ],
)
def test_not_a_telephone_number(uri: str) -> None:
    assert tn_from_uri(uri, "1") is None


def test_canonical_is_digits_only() -> None:
    assert is_canonical("12155551212")
    for bad in ("+12155551212", "1-215-555-1212", "", "1" * 16, "121555512\uff112", "12155551212 "):
        assert not is_canonical(bad)


def test_anonymous_identities() -> None:
    assert is_anonymous('"Anonymous" <sip:anonymous@anonymous.invalid>;tag=1')
    assert is_anonymous("sip:restricted@carrier.example")
    assert not is_anonymous("sip:+12155551212@carrier.example")


@given(st.text(max_size=60), st.sampled_from(["1", "44", None, "x"]))
def test_never_raises_and_yields_canonical_or_none(text: str, cc: str | None) -> None:
    out = tn_from_uri(text, cc)
    assert out is None or is_canonical(out)
    out2 = canonicalize(text, cc)
    assert out2 is None or is_canonical(out2)
