"""Numbers: canonical digits and named signals for every odd identity, never an exception."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberType

from reputation.numbers import (
    NumberFlag,
    canonical,
    dialled_digits,
    is_anonymous,
    is_emergency,
    read_number,
    same_number,
    uri_user,
)


@pytest.mark.parametrize(
    ("value", "user"),
    [
        ("sip:+12124561234@example.com", "+12124561234"),
        ("sips:+12124561234@example.com:5061;transport=tls", "+12124561234"),
        ('"Bob" <sip:+1-212-456-1234@host;user=phone>', "+1-212-456-1234"),
        ("tel:+12124561234;verstat=TN-Validation-Passed", "+12124561234"),
        ("<tel:+1.212.456.1234>", "+1.212.456.1234"),
        ("sip:alice@example.com", "alice"),
        ("sip:example.com", ""),
        ("+12124561234", "+12124561234"),
        ("sip:2124561234@h?subject=x", "2124561234"),
    ],
)
def test_uri_user(value: str, user: str) -> None:
    assert uri_user(value) == user


@pytest.mark.parametrize(
    ("value", "digits"),
    [
        ("+1 (212) 456-1234", "12124561234"),
        ("tel:+1-212-456-1234", "12124561234"),
        ("12124561234", "12124561234"),
        ("alice", ""),
        ("+", ""),
    ],
)
def test_canonical_atis_1000074(value: str, digits: str) -> None:
    assert canonical(value) == digits


@pytest.mark.parametrize(
    ("value", "digits", "flags"),
    [
        # a real-looking US number: no flags at all
        ("+12124561234", "12124561234", set()),
        # national form read in the default region (US)
        ("(212) 456-1234", "12124561234", set()),
        ("sip:2124561234@carrier.example", "12124561234", set()),
        # 555 is not an assigned area code
        ("+15551230001", "15551230001", {NumberFlag.UNALLOCATED}),
        # NPA starting with 1 is impossible in the NANP
        ("+11234567890", "11234567890", {NumberFlag.UNALLOCATED}),
        # N11 exchange / area code
        ("+12124115555", "12124115555", {NumberFlag.N11}),
        ("+19115550000", "19115550000", {NumberFlag.N11, NumberFlag.UNALLOCATED}),
        # 555-0100 … 0199 is reserved for fiction
        ("+12125550123", "12125550123", {NumberFlag.FICTION}),
        ("+12125550200", "12125550200", set()),
        ("+19005551234", "19005551234", {NumberFlag.PREMIUM_RATE}),
        ("+18005551234", "18005551234", {NumberFlag.TOLL_FREE}),
        ("+442079460000", "442079460000", set()),
        ("+4412", "4412", {NumberFlag.NOT_POSSIBLE}),
        ("12345678901234567890", "12345678901234567890", {NumberFlag.NOT_POSSIBLE}),
        ("alice", "", {NumberFlag.NOT_A_TN}),
        ("sip:bob@example.com", "", {NumberFlag.NOT_A_TN}),
    ],
)
def test_read_number_flags(value: str, digits: str, flags: set[NumberFlag]) -> None:
    info = read_number(value, "US")
    assert info.digits == digits
    assert set(info.flags) == flags
    if flags:
        assert info.detail, "every odd number explains itself"


def test_valid_number_details() -> None:
    info = read_number("+1 212 456 1234", "US")
    assert info.valid and info.possible and info.nanp
    assert info.country_code == 1 and info.national == "2124561234"
    assert info.area_code_len == 3 and info.region == "US"


def test_default_region_is_used_for_national_numbers() -> None:
    assert read_number("020 7946 0000", "GB").digits == "442079460000"
    assert read_number("+442079460000", "US").digits == "442079460000"


@pytest.mark.parametrize(
    ("value", "privacy"),
    [
        (None, None),
        ("", None),
        ("anonymous", None),
        ("Anonymous", None),
        ("sip:anonymous@anonymous.invalid", None),
        ('"Anonymous" <sip:anonymous@anonymous.invalid>;tag=1', None),
        ("sip:Restricted@carrier.example", None),
        ("unavailable", None),
        ("+12124561234", "id"),
        ("+12124561234", "header; id"),
        ("+12124561234", "user"),
    ],
)
def test_anonymous_forms(value: str | None, privacy: str | None) -> None:
    assert is_anonymous(value, privacy)
    info = read_number(value, "US", privacy)
    assert info.anonymous and info.flags == {NumberFlag.ANONYMOUS}
    assert not info.digits


def test_privacy_none_is_not_anonymous() -> None:
    assert not is_anonymous("+12124561234", "none")
    assert not read_number("+12124561234", "US", "none").anonymous


def test_same_number() -> None:
    a = read_number("tel:+1-212-456-1234", "US")
    b = read_number("sip:2124561234@h", "US")
    assert same_number(a, b)
    assert not same_number(read_number("alice"), read_number("alice"))


@pytest.mark.parametrize(
    ("callee", "emergency"),
    [
        ("911", True),
        ("sip:911@psap.example", True),
        ("+1911", True),
        ("112", True),
        ("tel:999", True),
        ("+12124561234", False),
        ("9110", False),
        ("sip:police@x", False),
        ("", False),
    ],
)
def test_emergency(callee: str, emergency: bool) -> None:
    assert is_emergency(callee, ("911", "112", "999"), "US") is emergency


def test_dialled_digits() -> None:
    assert dialled_digits("sip:+44-999@x") == "44999"


def test_overlong_identity_is_not_parsed() -> None:
    info = read_number("1" * 5000, "US")
    assert info.flags == {NumberFlag.NOT_A_TN} and len(info.raw) <= 256


@given(st.text(max_size=300), st.sampled_from(["US", "GB", "DE", "", "ZZ"]))
def test_arbitrary_strings_never_raise(value: str, region: str) -> None:
    info = read_number(value, region)
    assert isinstance(info.flags, frozenset)
    assert info.digits == "" or info.digits.isdigit()
    uri_user(value)
    canonical(value)
    is_emergency(value, ("911",), region)


@given(st.text(alphabet="+0123456789-() .", max_size=30))
def test_digit_soup_never_raises(value: str) -> None:
    info = read_number(value, "US")
    if info.digits and not info.flags:
        assert info.valid


@settings(max_examples=300)
@given(st.integers(200, 999), st.integers(200, 999), st.integers(0, 9999))
def test_nanp_fast_path_agrees_with_phonenumbers(npa: int, nxx: int, line: int) -> None:
    """The per-NPA-NXX classification must say what phonenumbers says for every line."""
    s = f"+1{npa}{nxx}{line:04d}"
    n = phonenumbers.parse(s)
    valid = phonenumbers.is_valid_number(n)
    ntype = phonenumbers.number_type(n)
    info = read_number(s, "US")
    assert info.valid == valid
    assert (NumberFlag.TOLL_FREE in info.flags) == (valid and ntype == PhoneNumberType.TOLL_FREE)
    assert (NumberFlag.PREMIUM_RATE in info.flags) == (
        valid and ntype == PhoneNumberType.PREMIUM_RATE
    )
