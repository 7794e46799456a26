"""PASSporT decoding (RFC 8225/8588/8946): strict encoding, JOSE header, claims, signature."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given
from hypothesis import strategies as st

from attestation.failure import Failure
from attestation.passport import (
    Passport,
    b64url_decode,
    b64url_encode,
    canonical_json,
    decode,
    encode,
    raw_to_der,
    verify_signature,
)

from .stivs import KEY, OTHER_KEY, X5U

HEADER = {"alg": "ES256", "ppt": "shaken", "typ": "passport", "x5u": X5U}
CLAIMS = {
    "attest": "A",
    "dest": {"tn": ["12155551213"]},
    "iat": 1800000000,
    "orig": {"tn": "12155551212"},
    "origid": "123e4567-e89b-12d3-a456-426655440000",
}


def raw_token(header: bytes | dict[str, Any], payload: bytes | dict[str, Any]) -> str:
    """A token signed with KEY over arbitrary header/payload bytes."""
    hb = header if isinstance(header, bytes) else json.dumps(header).encode()
    pb = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return _sign(f"{b64url_encode(hb)}.{b64url_encode(pb)}")


def _sign(signing_input: str) -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    r, s = decode_dss_signature(KEY.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{b64url_encode(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def good() -> Passport:
    p = decode(encode(HEADER, CLAIMS, KEY), expect_ppt="shaken")
    assert isinstance(p, Passport), p
    return p


def test_round_trip_and_signature() -> None:
    p = good()
    assert (p.attest, p.origid, p.orig_tn, p.dest_tns, p.iat) == (
        "A",
        CLAIMS["origid"],
        "12155551212",
        ("12155551213",),
        1800000000.0,
    )
    assert verify_signature(p, KEY.public_key()) is None
    bad = verify_signature(p, OTHER_KEY.public_key())
    assert bad is not None and bad.reason == "bad_signature" and bad.sip_code == 438


def test_encode_is_rfc8225_deterministic_json() -> None:
    assert (
        canonical_json({"b": 1, "a": {"z": [1], "c": "é"}})
        == '{"a":{"c":"é","z":[1]},"b":1}'.encode()
    )
    h64 = encode(HEADER, CLAIMS, KEY).split(".")[0]
    assert (
        b64url_decode(h64)
        == b'{"alg":"ES256","ppt":"shaken","typ":"passport","x5u":"%s"}' % X5U.encode()
    )


def test_signature_over_received_bytes_with_extra_claims_and_other_order() -> None:
    # OpenSIPS re-serialises before verifying and fails on this; we must not.
    payload = (
        b'{"orig":{"tn":"12155551212"},  "iat":1800000000,'
        b'"dest":{"tn":["12155551213","12155550000"]},'
        b'"attest":"B","origid":"x","rcd":{"nam":"Bob"},"zz":[1,2]}'
    )
    p = decode(raw_token(HEADER, payload), expect_ppt="shaken")
    assert isinstance(p, Passport), p
    assert p.unknown_claims == ("rcd", "zz")
    assert p.dest_tns == ("12155551213", "12155550000")
    assert verify_signature(p, KEY.public_key()) is None


def test_tampered_payload_fails_signature() -> None:
    h, _, s = encode(HEADER, CLAIMS, KEY).split(".")
    forged = dict(CLAIMS, attest="A", orig={"tn": "12125550000"})
    p = decode(f"{h}.{b64url_encode(canonical_json(forged))}.{s}", expect_ppt="shaken")
    assert isinstance(p, Passport)
    assert verify_signature(p, KEY.public_key()) is not None


def test_div_passport() -> None:
    claims = {
        "dest": {"tn": ["12155559999"]},
        "div": {"tn": "12155551213"},
        "iat": 1,
        "orig": {"tn": "12155551212"},
    }
    p = decode(encode(dict(HEADER, ppt="div"), claims, KEY), expect_ppt="div")
    assert isinstance(p, Passport) and p.div_tn == "12155551213" and p.attest is None


def _claims(**changes: Any) -> dict[str, Any]:
    c = dict(CLAIMS)
    for k, v in changes.items():
        if v is ...:
            c.pop(k, None)
        else:
            c[k] = v
    return c


def _hdr(**changes: Any) -> dict[str, Any]:
    h = dict(HEADER)
    for k, v in changes.items():
        if v is ...:
            h.pop(k, None)
        else:
            h[k] = v
    return h


@pytest.mark.parametrize(
    ("header", "claims", "reason"),
    [
        # rule 7: ES256 only
        (_hdr(alg="none"), CLAIMS, "unsupported_alg"),
        (_hdr(alg="RS256"), CLAIMS, "unsupported_alg"),
        (_hdr(alg="HS256"), CLAIMS, "unsupported_alg"),
        (_hdr(alg="ES384"), CLAIMS, "unsupported_alg"),
        (_hdr(alg="es256"), CLAIMS, "unsupported_alg"),
        (_hdr(alg=...), CLAIMS, "unsupported_alg"),
        (_hdr(crit=["exp"]), CLAIMS, "unsupported_crit"),
        # rule 8: typ, ppt, x5u
        (_hdr(typ="JWT"), CLAIMS, "bad_typ"),
        (_hdr(typ=...), CLAIMS, "bad_typ"),
        (_hdr(ppt="div"), CLAIMS, "ppt_mismatch"),
        (_hdr(ppt=...), CLAIMS, "ppt_mismatch"),
        (_hdr(ppt=1), CLAIMS, "bad_ppt"),
        (_hdr(x5u=...), CLAIMS, "missing_x5u"),
        (_hdr(x5u=""), CLAIMS, "missing_x5u"),
        (_hdr(x5u=["https://a"]), CLAIMS, "missing_x5u"),
        # rule 9: base claims and types
        (HEADER, _claims(iat=...), "missing_claim"),
        (HEADER, _claims(iat="1800000000"), "bad_claim"),  # RFC 8588 erratum: quoted iat
        (HEADER, _claims(iat=True), "bad_claim"),
        (HEADER, _claims(iat=None), "bad_claim"),
        (HEADER, _claims(iat=10**400), "bad_claim"),  # would overflow float()
        (HEADER, _claims(iat=2**53 + 1), "bad_claim"),
        (HEADER, _claims(orig=...), "missing_claim"),
        (HEADER, _claims(orig="12155551212"), "bad_claim"),  # libstirshaken legacy strings
        (HEADER, _claims(orig={"tn": 12155551212}), "bad_claim"),
        (HEADER, _claims(orig={"tn": ["12155551212"]}), "bad_claim"),
        (HEADER, _claims(orig={}), "missing_claim"),
        (HEADER, _claims(orig={"uri": "sip:a@b"}), "missing_claim"),
        (HEADER, _claims(dest=...), "missing_claim"),
        (HEADER, _claims(dest="12155551213"), "bad_claim"),
        (HEADER, _claims(dest={"tn": "12155551213"}), "bad_claim"),
        (HEADER, _claims(dest={"tn": []}), "bad_claim"),
        (HEADER, _claims(dest={"tn": [1]}), "bad_claim"),
        (HEADER, _claims(dest={}), "missing_claim"),
        # rule 10: SHAKEN claims
        (HEADER, _claims(attest=...), "missing_claim"),
        (HEADER, _claims(attest="D"), "bad_attest"),
        (HEADER, _claims(attest="a"), "bad_attest"),
        (HEADER, _claims(attest=["A"]), "bad_attest"),
        (HEADER, _claims(origid=...), "missing_origid"),
        (HEADER, _claims(origid=""), "missing_origid"),
        (HEADER, _claims(origid=7), "missing_origid"),
        # rule 11: canonical TNs
        (HEADER, _claims(orig={"tn": "+12155551212"}), "non_canonical_tn"),
        (HEADER, _claims(orig={"tn": "1-215-555-1212"}), "non_canonical_tn"),
        (HEADER, _claims(dest={"tn": ["12155551213", "+1 215 555 0000"]}), "non_canonical_tn"),
        # div claims
        (_hdr(ppt="div"), _claims(div=...), "ppt_mismatch"),
    ],
)
def test_header_and_claim_violations(
    header: dict[str, Any], claims: dict[str, Any], reason: str
) -> None:
    out = decode(encode(header, claims, KEY), expect_ppt="shaken")
    assert isinstance(out, Failure), out
    assert out.reason == reason, out
    assert out.sip_code == 438


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"dest": {"tn": ["1"]}, "iat": 1, "orig": {"tn": "2"}}, "missing_claim"),
        ({"dest": {"tn": ["1"]}, "iat": 1, "orig": {"tn": "2"}, "div": "3"}, "bad_claim"),
        (
            {"dest": {"tn": ["1"]}, "iat": 1, "orig": {"tn": "2"}, "div": {"tn": "+3"}},
            "non_canonical_tn",
        ),
        ({"dest": {"tn": ["1"]}, "iat": 1, "orig": {"tn": "2"}, "div": {}}, "missing_claim"),
    ],
)
def test_div_claim_violations(claims: dict[str, Any], reason: str) -> None:
    out = decode(encode(_hdr(ppt="div"), claims, KEY), expect_ppt="div")
    assert isinstance(out, Failure) and out.reason == reason, out


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("..c2ln", "compact_form"),  # rule 2
        ("eyJhIjoxfQ..c2ln", "compact_form"),
        ("a.b", "malformed_header"),
        ("a.b.c.d", "malformed_header"),
        ("eyJhIjoxfQ=.eyJiIjoyfQ.c2ln", "bad_encoding"),  # padding (rule 6)
        ("eyJhIjoxfR.eyJiIjoyfQ.c2ln", "bad_encoding"),  # non-zero spare bits
        ("eyJh+joxfQ.eyJiIjoyfQ.c2ln", "bad_encoding"),  # standard alphabet
        ("eyJhIjoxfQ.eyJiIjoyfQ.c2l", "bad_encoding"),  # spare bits in the signature
        ("A.eyJiIjoyfQ.c2ln", "bad_encoding"),  # impossible length
    ],
)
def test_encoding_violations(token: str, reason: str) -> None:
    out = decode(token, expect_ppt="shaken")
    assert isinstance(out, Failure) and out.reason == reason, out


@pytest.mark.parametrize(
    "header_bytes",
    [
        b"not json",
        b"[1,2]",
        b'"str"',
        b'{"alg":"ES256","alg":"none","typ":"passport","ppt":"shaken","x5u":"h"}',  # duplicate
        b'{"alg":"ES256","n":NaN}',
        b'{"alg":"ES256","typ":"passport"',
        b"\xff\xfe{}",  # not UTF-8
    ],
)
def test_json_violations(header_bytes: bytes) -> None:
    out = decode(raw_token(header_bytes, CLAIMS), expect_ppt="shaken")
    assert isinstance(out, Failure) and out.reason == "bad_json", out


def test_duplicate_claim_is_refused() -> None:
    payload = json.dumps(CLAIMS)[:-1].encode() + b',"attest":"C"}'
    out = decode(raw_token(HEADER, payload), expect_ppt="shaken")
    assert isinstance(out, Failure) and out.reason == "bad_json"


def test_signature_length_and_key_checks() -> None:
    p = good()
    h, c, _ = p.token.split(".")
    der_like = decode(f"{h}.{c}.{b64url_encode(b'0' * 70)}", expect_ppt="shaken")
    assert isinstance(der_like, Passport)
    out = verify_signature(der_like, KEY.public_key())
    assert out is not None and out.reason == "bad_signature"
    zeros = decode(f"{h}.{c}.{b64url_encode(bytes(64))}", expect_ppt="shaken")
    assert isinstance(zeros, Passport)
    assert verify_signature(zeros, KEY.public_key()) is not None
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    out = verify_signature(p, p384)
    assert out is not None and out.reason == "bad_key" and out.sip_code == 437


@given(st.binary(min_size=64, max_size=64))
def test_raw_to_der_matches_the_asn1_encoder(sig: bytes) -> None:
    r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    if r and s:
        assert raw_to_der(sig) == encode_dss_signature(r, s)


@pytest.mark.parametrize("r", [1, 0x80, 0x7F << 248, 1 << 255, (1 << 256) - 1])
def test_raw_to_der_edges(r: int) -> None:
    sig = r.to_bytes(32, "big") + r.to_bytes(32, "big")
    assert raw_to_der(sig) == encode_dss_signature(r, r)


def test_strict_b64url() -> None:
    for data in (b"", b"a", b"ab", b"abc", bytes(range(256))):
        assert b64url_decode(b64url_encode(data)) == data


@given(st.text(max_size=200), st.sampled_from(["shaken", "div", None]))
def test_decode_never_raises_on_text(token: str, ppt: str | None) -> None:
    assert isinstance(decode(token, expect_ppt=ppt), Passport | Failure)


@given(st.binary(max_size=200), st.binary(max_size=200))
def test_decode_never_raises_on_any_segments(h: bytes, p: bytes) -> None:
    out = decode(
        f"{b64url_encode(h)}.{b64url_encode(p)}.{b64url_encode(b'x' * 64)}", expect_ppt="shaken"
    )
    assert isinstance(out, Passport | Failure)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


@given(
    st.dictionaries(st.sampled_from(["alg", "typ", "ppt", "x5u", "crit", "kid"]), json_values),
    st.dictionaries(
        st.sampled_from(["iat", "orig", "dest", "attest", "origid", "div", "x"]), json_values
    ),
)
def test_decode_never_raises_on_any_json(header: dict[str, Any], claims: dict[str, Any]) -> None:
    out = decode(raw_token(header, claims), expect_ppt="shaken")
    assert isinstance(out, Passport | Failure)
    if isinstance(out, Failure):
        assert out.sip_code == 438 and out.reason
