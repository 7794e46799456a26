"""The STI-VS rule by rule (checklist A-D, G, H, J): one passing case and a negative table.

Certificates come from an in-memory source here (chain validation is the certificate
service's own test suite); test_verify_e2e.py runs the same verifier against the real
certificate service and a local HTTPS x5u server.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attestation.config import AttestationConfig, FailurePolicy
from attestation.model import Verstat
from attestation.passport import b64url_encode, canonical_json, encode
from attestation.replay import ReplayCache
from attestation.sign import Signer
from attestation.tnauthlist import ServiceProviderCode, TelephoneNumber, TNAuthList
from attestation.verify import Verifier, reason_header, stir_reason_headers

from .stivs import (
    DEST,
    KEY,
    NOW,
    ORIG,
    ORIGID,
    OTHER_KEY,
    SIGNER,
    X5U,
    StaticCerts,
    StaticResult,
    call,
    shaken,
    verifier,
)

HEADER = {"alg": "ES256", "ppt": "shaken", "typ": "passport", "x5u": X5U}
CLAIMS: dict[str, Any] = {
    "attest": "A",
    "dest": {"tn": [DEST]},
    "iat": int(NOW),
    "orig": {"tn": ORIG},
    "origid": ORIGID,
}


def ident(
    header: dict[str, Any] | None = None, claims: dict[str, Any] | None = None, **params: str
) -> str:
    """An Identity value signed with KEY; ``params`` override info/alg/ppt (``""`` drops)."""
    token = encode(header or HEADER, claims or CLAIMS, KEY)
    p = {"info": f"<{X5U}>", "alg": "ES256", "ppt": "shaken"} | params
    return token + "".join(f";{k}={v}" for k, v in p.items() if v != "")


async def test_valid_call_passes_with_everything_the_audit_needs() -> None:
    certs = StaticCerts({X5U: KEY.public_key()})
    v = await verifier(certs).verify(call(shaken()))
    assert v.valid and v.verstat is Verstat.PASSED
    assert (v.attest, v.origid, v.spc, v.reason, v.sip_code) == ("A", ORIGID, "1234", None, None)
    assert (v.orig_tn, v.dest_tns, v.x5u) == (ORIG, (DEST,), X5U)
    assert v.cert_fingerprint == "ab" * 32 and v.issuer == "CN=Test CA"
    assert v.details["claims"]["origid"] == ORIGID and v.details["header"]["x5u"] == X5U
    assert "elapsed_ms" in v.details
    assert certs.calls == [(X5U, NOW)]  # certificate asked for at the verification time
    assert reason_header(v) is None


# -- negative table: (identity value(s), call overrides, expected reason, expected code) --

_h, _c, _s = encode(HEADER, CLAIMS, KEY).split(".")


def _swap_payload(claims: dict[str, Any]) -> str:
    return f"{_h}.{b64url_encode(canonical_json(claims))}.{_s};info=<{X5U}>;alg=ES256;ppt=shaken"


NEGATIVE: list[tuple[str, tuple[str, ...], dict[str, Any], str, int]] = [
    # A1 Identity header syntax
    ("1 no info", (f"{_h}.{_c}.{_s};alg=ES256;ppt=shaken",), {}, "missing_info", 436),
    ("1 info not bracketed", (f"{_h}.{_c}.{_s};info={X5U};ppt=shaken",), {}, "bad_info_uri", 436),
    ("1 garbage", ("garbage",), {}, "malformed_header", 438),
    ("1 bad params", (f"{_h}.{_c}.{_s};info=<{X5U}>;;ppt=shaken",), {}, "malformed_header", 438),
    # A2 compact form
    ("2 compact", (f"..{_s};info=<{X5U}>;alg=ES256;ppt=shaken",), {}, "compact_form", 438),
    # A4 parameter/PASSporT consistency
    ("4 ppt param differs", (ident(ppt="div"),), {}, "ppt_mismatch", 438),
    ("4 ppt param absent", (ident(ppt=""),), {}, "ppt_mismatch", 438),
    ("4 alg param differs", (ident(alg="ES384"),), {}, "alg_mismatch", 438),
    # A5 info == x5u
    ("5 info differs", (ident(info="<https://evil.example/sp.pem>"),), {}, "info_mismatch", 438),
    # A6 strict base64url / JSON
    ("6 padded", (f"{_h}=.{_c}.{_s};info=<{X5U}>;ppt=shaken",), {}, "malformed_header", 438),
    (
        "6 not json",
        (f"{b64url_encode(b'nope')}.{_c}.{_s};info=<{X5U}>;ppt=shaken",),
        {},
        "bad_json",
        438,
    ),
    # B7/B8 JOSE header
    ("7 alg none", (ident(HEADER | {"alg": "none"}, alg=""),), {}, "unsupported_alg", 438),
    ("7 alg RS256", (ident(HEADER | {"alg": "RS256"}, alg=""),), {}, "unsupported_alg", 438),
    ("8 typ", (ident(HEADER | {"typ": "JWT"}),), {}, "bad_typ", 438),
    ("8 no x5u", (ident({k: v for k, v in HEADER.items() if k != "x5u"}),), {}, "missing_x5u", 438),
    # C9-11 claims
    (
        "9 no iat",
        (ident(claims={k: v for k, v in CLAIMS.items() if k != "iat"}),),
        {},
        "missing_claim",
        438,
    ),
    ("9 string iat", (ident(claims=CLAIMS | {"iat": str(int(NOW))}),), {}, "bad_claim", 438),
    ("9 dest string", (ident(claims=CLAIMS | {"dest": {"tn": DEST}}),), {}, "bad_claim", 438),
    ("10 attest D", (ident(claims=CLAIMS | {"attest": "D"}),), {}, "bad_attest", 438),
    (
        "10 no origid",
        (ident(claims={k: v for k, v in CLAIMS.items() if k != "origid"}),),
        {},
        "missing_origid",
        438,
    ),
    (
        "11 orig with +",
        (ident(claims=CLAIMS | {"orig": {"tn": "+" + ORIG}}),),
        {},
        "non_canonical_tn",
        438,
    ),
    # D13 freshness (iat authoritative; the SIP Date header is not even an input)
    ("13 stale", (shaken(iat=NOW - 61),), {}, "stale", 403),
    ("13 future", (shaken(iat=NOW + 6),), {}, "future_iat", 403),
    # G25 signature over the received bytes
    ("25 other key", (shaken(signer=Signer(OTHER_KEY, X5U)),), {}, "bad_signature", 438),
    (
        "25 tampered attest",
        (_swap_payload(CLAIMS | {"attest": "A", "origid": "x"}),),
        {},
        "bad_signature",
        438,
    ),
    (
        "25 short sig",
        (f"{_h}.{_c}.{b64url_encode(b'x' * 63)};info=<{X5U}>;ppt=shaken",),
        {},
        "bad_signature",
        438,
    ),
    # H26 orig binding: PAI, else From
    ("26 From differs", (shaken(),), {"from_uri": "sip:+12125550000@x"}, "orig_mismatch", 438),
    ("26 PAI differs", (shaken(),), {"pai_uri": "sip:+12125550000@x"}, "orig_mismatch", 438),
    ("26 From not a TN", (shaken(),), {"from_uri": "sip:alice@example.com"}, "orig_mismatch", 438),
    # H28 anonymous caller-ID without PAI
    (
        "28 anonymous",
        (shaken(),),
        {"from_uri": "sip:anonymous@anonymous.invalid"},
        "anonymous_orig",
        433,
    ),
    # H27 dest binding
    ("27 dest differs", (shaken(),), {"to_uri": "sip:+12125550000@x"}, "dest_mismatch", 438),
    # J31 only unusable values → the first SHAKEN failure
    (
        "31 two bad",
        (shaken(iat=NOW - 100), shaken(signer=Signer(OTHER_KEY, X5U))),
        {},
        "stale",
        403,
    ),
]


@pytest.mark.parametrize(
    ("values", "overrides", "reason", "code"),
    [pytest.param(v, o, r, c, id=i) for i, v, o, r, c in NEGATIVE],
)
async def test_negative(
    values: tuple[str, ...], overrides: dict[str, Any], reason: str, code: int
) -> None:
    certs = StaticCerts({X5U: KEY.public_key()})
    v = await verifier(certs).verify(call(*values, **overrides))
    assert v.verstat is Verstat.FAILED, v
    assert (v.reason, v.sip_code) == (reason, code), v.details
    assert v.sip_text and v.details["detail"] and v.failure_class
    assert not v.valid and not v.reject
    if len(values) == 1 and reason != "bad_signature" and code not in (436, 437):
        assert certs.calls == [], "cheap checks must run before any certificate fetch"


async def test_sip_texts() -> None:
    texts = {}
    for _name, values, overrides, _, code in NEGATIVE:
        v = await verifier().verify(call(*values, **overrides))
        texts[code] = v.sip_text
    assert texts == {
        403: "Stale Date",
        433: "Anonymity Disallowed",
        436: "Bad Identity Info",
        438: "Invalid Identity Header",
    }


@pytest.mark.parametrize(
    ("age", "ok"), [(60, True), (61, False), (-5, True), (-6, False), (0, True)]
)
async def test_freshness_boundaries(age: int, ok: bool) -> None:
    v = await verifier().verify(call(shaken(iat=NOW - age)))
    assert v.valid is ok, v


async def test_non_uuid_origid_is_accepted_with_a_lint() -> None:
    v = await verifier().verify(call(ident(claims=CLAIMS | {"origid": "carrier-42"})))
    assert v.valid and v.origid == "carrier-42" and "origid" in v.details["lints"][0]
    assert "lints" not in (await verifier().verify(call(shaken()))).details


async def test_freshness_is_configurable() -> None:
    v = await verifier(freshness=300.0, future_skew=0.0).verify(call(shaken(iat=NOW - 200)))
    assert v.valid
    v = await verifier(future_skew=0.0).verify(call(shaken(iat=NOW + 1)))
    assert v.reason == "future_iat"


async def test_unknown_claims_ignored_and_other_member_order() -> None:
    claims = {"rcd": {"nam": "x"}, "origid": ORIGID, "orig": {"tn": ORIG}, "iat": int(NOW)}
    claims |= {"dest": {"tn": ["19995550000", DEST]}, "attest": "B", "zzz": [1]}
    token = encode(HEADER, claims, KEY)
    v = await verifier().verify(call(f"{token};info=<{X5U}>;alg=ES256;ppt=shaken"))
    assert v.valid and v.attest == "B" and v.details["unknown_claims"] == ["rcd", "zzz"]


@pytest.mark.parametrize(
    ("extra", "rcd"),
    [
        (
            {"rcd": {"nam": "Acme Pharmacy"}, "crn": "Prescription ready"},
            {
                "valid": True,
                "nam": "Acme Pharmacy",
                "crn": "Prescription ready",
                "integrity": "signed",
            },
        ),
        (
            {
                "rcd": {"nam": "Acme", "icn": "https://cdn.example/logo.png"},
                "rcdi": {"/icn": "sha256-x"},
            },
            {
                "valid": True,
                "nam": "Acme",
                "referenced": {"icn": "https://cdn.example/logo.png"},
                "integrity": "unverified",
            },
        ),
        (
            {"rcd": {"icn": "https://cdn.example/logo.png"}},
            {"valid": False, "problem": "rcd.nam missing or not a non-empty string"},
        ),
        ({"rcd": "Acme"}, {"valid": False, "problem": "rcd.nam missing or not a non-empty string"}),
    ],
)
async def test_rich_call_data_only_from_verified_passports(
    extra: dict[str, Any], rcd: dict[str, Any]
) -> None:
    v = await verifier().verify(call(ident(claims=CLAIMS | extra)))
    assert v.valid and v.details["rcd"] == rcd
    forged = await verifier().verify(call(ident(claims=CLAIMS | extra), from_uri="sip:+1999@x"))
    assert not forged.valid and "rcd" not in forged.details


@pytest.mark.parametrize(
    "params",
    [
        f';info=<{X5U}>;alg=ES256;ppt="shaken"',
        f";info=<{X5U}>;ppt=shaken",  # alg parameter is optional
        f" ; INFO = <{X5U}> ; PPT = shaken ; ALG = ES256 ; x-ext=1",
    ],
)
async def test_header_variants_accepted(params: str) -> None:
    token = shaken().split(";", 1)[0]
    assert (await verifier().verify(call(token + params))).valid


# -- A3 / J31: several Identity headers -------------------------------------------------


async def test_unsupported_ppt_is_ignored() -> None:
    rcd = f"{_h}.{_c}.{_s};info=<{X5U}>;ppt=rcd"
    v = await verifier().verify(call(rcd, shaken()))
    assert v.valid and v.details["ignored_ppts"] == ["rcd"]


async def test_only_unsupported_ppt_without_requirement_is_no_validation() -> None:
    v = await verifier().verify(call(f"{_h}.{_c}.{_s};info=<{X5U}>;ppt=foo"))
    assert v.verstat is Verstat.NONE and v.reason == "no_supported_ppt" and v.sip_code is None
    assert not v.reject


async def test_only_unsupported_ppt_with_requirement_is_428() -> None:
    cfg = {"require_identity": True, "on_failure": FailurePolicy(use_identity="reject")}
    v = await verifier(**cfg).verify(call(f"{_h}.{_c}.{_s};info=<{X5U}>;ppt=foo"))
    assert (v.verstat, v.reason, v.sip_code, v.sip_text) == (
        Verstat.NONE,
        "no_supported_ppt",
        428,
        "Use Identity Header",
    )
    assert v.reject and v.failure_class == "use_identity"


@pytest.mark.parametrize("required", [False, True])
async def test_no_identity(required: bool) -> None:
    v = await verifier(require_identity=required).verify(call())
    assert v.verstat is Verstat.NONE and v.reason == "no_identity"
    assert v.sip_code == (428 if required else None)


async def test_one_valid_among_invalid_passes() -> None:
    bad = shaken(signer=Signer(OTHER_KEY, X5U))
    v = await verifier().verify(call("garbage", bad, shaken()))
    assert v.valid
    assert [f["reason"] for f in v.details["failures"]] == ["malformed_header", "bad_signature"]


async def test_comma_joined_values_in_one_field() -> None:
    v = await verifier().verify(call(f"garbage, {shaken()}"))
    assert v.valid


# -- H26/H27: binding ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"from_uri": "tel:+1-215-555-1212"},
        {"from_uri": '"Alice" <sip:2155551212@gw.example;user=phone>;tag=9'},
        {"from_uri": "sip:anonymous@anonymous.invalid", "pai_uri": "<tel:+12155551212>"},
        {"from_uri": "sip:+19995550000@x", "pai_uri": "sip:+12155551212@x"},  # PAI wins
        {"to_uri": "sip:2155551213@spitwall.example"},
        {"to_uri": "sip:bob@example.com", "request_uri": "sip:+12155551213@10.0.0.1"},
        {"to_uri": "tel:+12155551213", "request_uri": "sip:voicemail@10.0.0.1"},
    ],
)
async def test_binding_accepts(overrides: dict[str, Any]) -> None:
    v = await verifier().verify(call(shaken(), **overrides))
    assert v.valid, v.details


async def test_national_numbers_use_the_configured_country_code() -> None:
    signer_claims = shaken(orig="442079460000", dest=("442079460001",))
    uk = {"from_uri": "sip:02079460000@gw", "to_uri": "sip:02079460001@x"}
    assert (await verifier(country_code="44").verify(call(signer_claims, **uk))).valid
    assert (
        await verifier(country_code="1").verify(call(signer_claims, **uk))
    ).reason == "orig_mismatch"


async def test_dest_uri_binds_a_non_tn_callee() -> None:
    claims = CLAIMS | {"dest": {"uri": ["sip:Bob@Example.com"]}}
    value = ident(claims=claims)
    v = await verifier().verify(call(value, to_uri="<sip:Bob@example.COM;transport=tcp>;tag=1"))
    assert v.valid, v.details
    v = await verifier().verify(call(value, to_uri="sip:alice@example.com"))
    assert v.reason == "dest_mismatch"


async def test_multi_dest_contains_target() -> None:
    v = await verifier().verify(call(shaken(dest=("19995550000", DEST))))
    assert v.valid and v.dest_tns == ("19995550000", DEST)


# -- D15 replay -------------------------------------------------------------------------


async def test_replay_in_another_dialog_is_flagged() -> None:
    ver = verifier(on_failure=FailurePolicy(replayed="reject"))
    h = shaken()
    assert (await ver.verify(call(h, call_id="a"))).valid
    assert (await ver.verify(call(h, call_id="a", now=NOW + 1))).valid  # spiral / fork
    again = await ver.verify(call(h, call_id="b", now=NOW + 2))
    assert (again.reason, again.sip_code, again.failure_class, again.reject) == (
        "replayed",
        438,
        "replayed",
        True,
    )
    assert again.attest == "A" and again.spc == "1234"  # the audit sees whose token it was


def test_replay_cache_forgets_after_the_window_and_is_bounded() -> None:
    c = ReplayCache(max_entries=2)
    assert not c.seen_elsewhere(b"s1", "a", NOW, NOW + 60)
    assert c.seen_elsewhere(b"s1", "b", NOW + 10, NOW + 70)
    assert not c.seen_elsewhere(b"s1", "b", NOW + 61, NOW + 121)  # forgotten, re-recorded
    assert not c.seen_elsewhere(b"s2", "x", NOW + 62, NOW + 122)
    assert not c.seen_elsewhere(b"s3", "x", NOW + 62, NOW + 122)
    assert len(c) == 2
    assert not c.seen_elsewhere(b"s4", "", NOW + 62, NOW + 122)  # no Call-ID: not judged


# -- certificate source outcomes pass through ----------------------------------------------


@pytest.mark.parametrize(
    ("result", "reason", "code"),
    [
        (
            StaticResult(False, "x5u_fetch_failed", 436, "Bad Identity Info"),
            "x5u_fetch_failed",
            436,
        ),
        (StaticResult(False, "cert_revoked", 437, "Unsupported Credential"), "cert_revoked", 437),
        (StaticResult(False), "cert_unavailable", 436),
        (StaticResult(True, public_key=OTHER_KEY.public_key()), "bad_signature", 438),
        (StaticResult(True, public_key="not a key"), "bad_key", 437),
    ],
)
async def test_certificate_outcomes(result: StaticResult, reason: str, code: int) -> None:
    v = await verifier(StaticCerts({X5U: result})).verify(call(shaken()))
    assert (v.reason, v.sip_code) == (reason, code)


async def test_certificate_source_exception_is_a_value() -> None:
    class Broken:
        async def get(self, x5u: str, at: float) -> StaticResult:
            raise OSError("boom")

    v = await Verifier(AttestationConfig(), Broken()).verify(call(shaken()))
    assert (v.reason, v.sip_code) == ("cert_unavailable", 436) and "boom" in v.details["detail"]


async def test_delegate_certificate_must_cover_orig() -> None:
    covering = TNAuthList((ServiceProviderCode("1234"), TelephoneNumber(ORIG)))
    other = TNAuthList((TelephoneNumber("19995550000"),))

    class WithTnAuth(StaticResult):
        pass

    for tnauth, ok in ((covering, True), (other, False)):
        res = replace(StaticResult(True, public_key=KEY.public_key()))
        res2 = _with_tnauth(res, tnauth)
        v = await verifier(StaticCerts({X5U: res2})).verify(call(shaken()))
        assert v.valid is ok, v
        if not ok:
            assert (v.reason, v.sip_code) == ("cert_tn_not_covered", 437)


def _with_tnauth(res: StaticResult, tnauth: TNAuthList) -> Any:
    class R:
        ok = True
        reason = sip_code = sip_text = None
        public_key = res.public_key
        spc = "1234"
        fingerprint_sha256 = issuer = None

    r = R()
    r.tnauth = tnauth  # type: ignore[attr-defined]
    return r


# -- J32: policy and Reason header -------------------------------------------------------


async def test_policy_per_failure_class() -> None:
    ver = verifier(on_failure=FailurePolicy(stale_date="reject", invalid_identity="continue"))
    stale = await ver.verify(call(shaken(iat=NOW - 100)))
    bad = await ver.verify(call(shaken(), from_uri="sip:+19995550000@x"))
    assert stale.reject and stale.failure_class == "stale_date"
    assert not bad.reject and bad.failure_class == "invalid_identity"


async def test_reason_header_forms() -> None:
    v = await verifier().verify(call(shaken(signer=Signer(OTHER_KEY, X5U))))
    assert reason_header(v) == 'SIP ;cause=438 ;text="Invalid Identity Header"'
    sig = v.details["failed_token"].rsplit(".", 1)[1]
    assert (
        reason_header(v, "stir")
        == f'STIR ;cause=438 ;text="Invalid Identity Header" ;ppi="..{sig}"'
    )
    stale = await verifier().verify(call(shaken(iat=NOW - 100)))
    assert reason_header(stale) == 'SIP ;cause=403 ;text="Stale Date"'
    none = await verifier().verify(call())
    assert reason_header(none) is None


async def test_rfc9410_reason_per_failing_identity_header_even_when_the_call_passes() -> None:
    bad = shaken(signer=Signer(OTHER_KEY, X5U))
    stale = shaken(iat=NOW - 100)
    v = await verifier().verify(call(bad, "garbage", shaken(), stale))
    assert v.valid and reason_header(v) is None
    sig = {t: t.split(";")[0].rsplit(".", 1)[1] for t in (bad, stale)}
    assert stir_reason_headers(v) == [
        f'STIR ;cause=438 ;text="Invalid Identity Header" ;ppi="..{sig[bad]}"',
        'STIR ;cause=438 ;text="Invalid Identity Header"',  # unparsable: nothing to name
        f'STIR ;cause=403 ;text="Stale Date" ;ppi="..{sig[stale]}"',
    ]
    assert stir_reason_headers(await verifier().verify(call(shaken()))) == []


# -- never an exception -------------------------------------------------------------------

_pieces = st.sampled_from(
    [
        _h,
        _c,
        _s,
        ".",
        ";",
        "=",
        "<",
        ">",
        '"',
        ",",
        " ",
        "info",
        "ppt",
        "alg",
        "shaken",
        "div",
        X5U,
        "ES256",
        "==",
    ]
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.lists(
        st.one_of(st.text(max_size=80), st.lists(_pieces, max_size=14).map("".join)), max_size=3
    ),
    st.text(max_size=40),
    st.text(max_size=40),
)
async def test_arbitrary_headers_and_uris_give_a_verdict(
    values: list[str], frm: str, to: str
) -> None:
    v = await verifier().verify(call(*values, from_uri=frm, to_uri=to, request_uri=to))
    assert v.reason != "internal_error", v.details
    assert v.valid or v.reason
    assert SIGNER  # the module-level signer stays usable


_VALID = shaken()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, len(_VALID) - 1),
    st.characters(codec="ascii"),
    st.sampled_from(["set", "del", "ins"]),
)
async def test_no_single_character_edit_forges_a_different_valid_verdict(
    pos: int, ch: str, op: str
) -> None:
    # Strict base64url (one spelling per token) + signature over the received bytes: an edit
    # either fails or leaves the signed content unchanged (e.g. a parameter name's case).
    if op == "set":
        value = _VALID[:pos] + ch + _VALID[pos + 1 :]
    elif op == "del":
        value = _VALID[:pos] + _VALID[pos + 1 :]
    else:
        value = _VALID[:pos] + ch + _VALID[pos:]
    v = await verifier().verify(call(value, call_id=f"m-{pos}-{op}-{ord(ch)}"))
    assert v.reason != "internal_error"
    if v.valid:
        assert v.details["claims"] == CLAIMS | {"origid": ORIGID}
        assert v.details["header"] == HEADER and v.x5u == X5U


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(st.text(max_size=60), st.lists(_pieces, max_size=10).map("".join)), max_size=4
    ),
    st.integers(0, 4),
)
async def test_one_valid_header_survives_any_junk_around_it(junk: list[str], at: int) -> None:
    # [31] fail only if none is valid: junk values (unparsable, unsupported ppt, bad
    # signatures) never spoil a valid SHAKEN value, wherever it sits among them.
    values = [j for j in junk if "," not in j]  # a comma would split a junk field in two
    values.insert(min(at, len(values)), _VALID)
    v = await verifier().verify(call(*values))
    assert v.valid, v.details


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.sampled_from([10**400, 2**53, NOW, -1, 0])
    | st.floats(allow_nan=False)
    | st.text(max_size=16)
    | st.sampled_from([ORIG, DEST, "A", "B", ORIGID, X5U]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["tn", "uri", "nam", "x"]), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(["iat", "orig", "dest", "attest", "origid", "div", "rcd", "crn", "rcdi"]),
        _json,
    ),
    st.sampled_from(["shaken", "div"]),
)
async def test_validly_signed_arbitrary_claims_give_a_verdict(
    claims: dict[str, Any], ppt: str
) -> None:
    # The signature is good, so every check before and after it sees attacker-chosen
    # content: none of them may raise (the internal_error guard must stay unused).
    value = ident(HEADER | {"ppt": ppt}, CLAIMS | claims, ppt=ppt)
    v = await verifier().verify(call(value))
    assert v.reason != "internal_error", v.details
