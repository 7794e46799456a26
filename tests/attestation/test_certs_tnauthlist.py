"""RFC 8226 TNAuthList DER: known vectors, round trips, and strict rejection of bad DER."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from attestation.tnauthlist import (
    ServiceProviderCode,
    TelephoneNumber,
    TelephoneNumberRange,
    TNAuthList,
    TNAuthListError,
    decode,
    encode,
    encode_spcs,
)


def test_asterisk_testsuite_vector() -> None:
    # asterisk/testsuite stir_shaken certificates: SPC "1", EXPLICIT [0] around IA5String.
    assert decode(bytes.fromhex("3005a003160131")) == TNAuthList((ServiceProviderCode("1"),))
    assert encode_spcs("1") == bytes.fromhex("3005a003160131")


def test_deployed_untagged_printablestring_spc_is_named() -> None:
    # TNAuthList of a production certificate listed in martinisecurity/shaken-pki-reports
    # (Telonium, "SHAKEN 755J"): the SPC as a bare PrintableString, without the [0] tag.
    result = decode(bytes.fromhex("300613043735354a"))
    assert isinstance(result, TNAuthListError)
    assert "untagged PrintableString entry" in result.message


def test_all_three_choices_round_trip() -> None:
    value = TNAuthList(
        (
            ServiceProviderCode("1234"),
            TelephoneNumberRange("12155551000", 100),
            TelephoneNumber("12155551212"),
        )
    )
    der = encode(value)
    assert der.hex() == (
        "302ba006160431323334a1123010160b3132313535353531303030020164a20d160b3132313535353531323132"
    )
    assert decode(der) == value
    assert value.spcs == ("1234",)


def test_long_form_length_round_trips() -> None:
    value = TNAuthList(tuple(ServiceProviderCode(f"{i:04d}") for i in range(20)))
    der = encode(value)
    assert der[:2] == b"\x30\x81"
    assert decode(der) == value


def test_range_and_tn_coverage() -> None:
    parent = TNAuthList((TelephoneNumberRange("12155551000", 100),))
    assert parent.covers_tn("12155551099")
    assert not parent.covers_tn("12155551100")
    assert not parent.covers_tn("2155551000")
    child = TNAuthList((TelephoneNumber("12155551050"), TelephoneNumberRange("12155551010", 5)))
    assert child.within(parent)
    assert not TNAuthList((TelephoneNumberRange("12155551090", 20),)).within(parent)
    assert not TNAuthList((ServiceProviderCode("1"),)).within(parent)


@pytest.mark.parametrize(
    ("hexder", "fragment"),
    [
        ("", "truncated"),
        ("30", "truncated"),
        ("3000", "empty TNAuthList"),
        ("3105a003160131", "expected SEQUENCE"),
        ("3005a0031601", "runs past the end"),
        ("3005a00316013100", "trailing bytes"),
        ("3080a0031601310000", "indefinite length"),
        ("308105a003160131", "non-minimal length"),
        ("30820005a003160131", "non-minimal length"),
        ("3006a00416013100", "stray bytes inside a TNEntry"),
        ("3003160131", "untagged IA5String entry"),
        ("3003800131", "unknown TNEntry tag"),
        ("3005a0030c0131", "expected IA5String"),
        ("3005a003160181", "non-ASCII"),
        ("3005a203160141", "may hold only 0-9"),
        ("3004a2021600", "1-15 characters"),
        ("3005a103160131", "range: expected SEQUENCE"),
        ("300aa1083006160131020101", "count must be >= 2"),
        ("300ba109300716013102020002", "non-minimal INTEGER"),
        ("300aa1083006160131040102", "expected INTEGER"),
        ("30031f0100", "high-tag-number"),
    ],
)
def test_malformed_der_is_a_specific_error(hexder: str, fragment: str) -> None:
    result = decode(bytes.fromhex(hexder))
    assert isinstance(result, TNAuthListError), result
    assert fragment in result.message, str(result)
    assert str(result).startswith("TNAuthList: ")


def test_encoder_refuses_values_the_asn1_forbids() -> None:
    with pytest.raises(ValueError):
        encode([])
    with pytest.raises(ValueError):
        encode([TelephoneNumber("12a")])
    with pytest.raises(ValueError):
        encode([TelephoneNumberRange("1215", 1)])
    with pytest.raises(ValueError):
        encode([ServiceProviderCode("é")])


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    result = decode(data)
    assert isinstance(result, TNAuthList | TNAuthListError)
    if isinstance(result, TNAuthList):
        assert encode(result) == data  # DER is canonical: whatever decodes re-encodes exactly


_tn = st.text(alphabet="0123456789#*", min_size=1, max_size=15)
_entry = st.one_of(
    st.builds(ServiceProviderCode, st.text(alphabet=st.characters(max_codepoint=127))),
    st.builds(TelephoneNumber, _tn),
    st.builds(TelephoneNumberRange, _tn, st.integers(min_value=2, max_value=2**40)),
)


@given(st.lists(_entry, min_size=1, max_size=8))
def test_encode_decode_round_trip(entries: list[object]) -> None:
    value = TNAuthList(tuple(entries))  # type: ignore[arg-type]
    assert decode(encode(value)) == value


@given(st.lists(_entry, min_size=1, max_size=4), st.data())
def test_single_byte_corruption_never_raises(entries: list[object], data: st.DataObject) -> None:
    der = bytearray(encode(TNAuthList(tuple(entries))))  # type: ignore[arg-type]
    i = data.draw(st.integers(0, len(der) - 1))
    der[i] = data.draw(st.integers(0, 255))
    assert isinstance(decode(bytes(der)), TNAuthList | TNAuthListError)
