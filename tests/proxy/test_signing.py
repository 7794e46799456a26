"""The proxy's STI-AS mode as pure functions: which trunk a source address belongs to, and
what an outbound call from it is signed with (level, origid, orig/dest TNs)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from attestation import pki
from attestation.config import AttestationConfig, SigningTrunk
from attestation.passport import b64url_decode
from attestation.sign import Signer
from proxy.screen import InviteFacts
from proxy.signing import (
    NotSigned,
    OutboundSigning,
    Signed,
    TrunkTable,
    compile_trunks,
    parse_source,
    trunk_for_source,
)
from spitwall.settings import ConfigError, build

ORIGID = "3c2c5a0e-8c2f-4d51-9b6a-2f1f0b3f6a01"
TRUNKS = {
    "acme": SigningTrunk(
        kind="customer",
        owned_tns=("1215555*",),
        origid=ORIGID,
        sources=("203.0.113.0/24", "127.0.0.1/32"),
    ),
    "acme-hq": SigningTrunk(kind="customer", sources=("203.0.113.128/25",)),
    "carrier": SigningTrunk(kind="gateway", sources=("127.0.0.0/8", "2001:db8::/32")),
    "v6host": SigningTrunk(kind="customer", sources=("2001:db8::10/128",)),
    "nosources": SigningTrunk(kind="customer", owned_tns=("1*",)),
}
TABLE = compile_trunks(TRUNKS)


@pytest.mark.parametrize(
    ("source", "trunk"),
    [
        ("203.0.113.7", "acme"),
        ("203.0.113.0", "acme"),
        ("203.0.113.127", "acme"),
        ("203.0.113.128", "acme-hq"),  # the /25 is more specific than acme's /24
        ("203.0.113.255", "acme-hq"),
        ("203.0.114.1", None),
        ("127.0.0.1", "acme"),  # /32 beats the gateway's /8
        ("127.0.0.2", "carrier"),
        ("127.255.255.255", "carrier"),
        ("::ffff:127.0.0.1", "acme"),  # IPv4-mapped IPv6 is the IPv4 address
        ("::ffff:127.0.0.9", "carrier"),
        ("2001:db8::10", "v6host"),
        ("[2001:db8::10]", "v6host"),
        ("2001:db8::11", "carrier"),
        ("2001:db8:ffff::1", "carrier"),
        ("2001:db9::1", None),
        ("fe80::1%eth0", None),
        ("::1", None),
        ("10.0.0.1", None),
        ("", None),
        ("not an address", None),
        ("203.0.113.7:5060", None),  # a host:port is not an address
        ("300.1.1.1", None),
    ],
)
def test_trunk_for_source(source: str, trunk: str | None) -> None:
    match = trunk_for_source(TABLE, source)
    assert (match.name if match else None) == trunk


def test_match_says_which_prefix() -> None:
    match = trunk_for_source(TABLE, "203.0.113.200")
    assert match is not None and (match.name, match.network) == ("acme-hq", "203.0.113.128/25")
    assert match.trunk is TRUNKS["acme-hq"]


def test_no_sources_no_table() -> None:
    table = compile_trunks({"x": SigningTrunk(owned_tns=("1*",))})
    assert not table and trunk_for_source(table, "127.0.0.1") is None
    assert not TrunkTable() and bool(TABLE)


def test_one_prefix_in_two_trunks_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"10\.0\.0\.0/8 is a source of both 'a' and 'b'"):
        compile_trunks(
            {"a": SigningTrunk(sources=("10.0.0.0/8",)), "b": SigningTrunk(sources=("10.0.0.0/8",))}
        )
    # the same prefix twice in one trunk is harmless
    assert trunk_for_source(
        compile_trunks({"a": SigningTrunk(sources=("10.0.0.0/8", "10.0.0.0/8"))}), "10.1.1.1"
    )


@pytest.mark.parametrize("bad", ["10.0.0.1/8", "10.0.0.0/33", "example.com", "", "10.0.0.0/"])
def test_bad_cidr_is_a_config_error_naming_the_key(bad: str) -> None:
    with pytest.raises(ConfigError) as exc:
        build(AttestationConfig, {"signing_trunks": {"acme": {"sources": [bad]}}})
    assert "signing_trunks.acme" in str(exc.value) and "sources" in str(exc.value)


def test_sources_from_toml_shape() -> None:
    cfg = build(
        AttestationConfig,
        {"signing_trunks": {"acme": {"sources": ["203.0.113.0/24", "127.0.0.1"]}}},
    )
    table = compile_trunks(cfg.signing_trunks)
    assert trunk_for_source(table, "127.0.0.1") is not None  # a bare address is a /32


@pytest.mark.parametrize(
    ("text", "want"),
    [("127.0.0.1", "127.0.0.1"), ("[::1]", "::1"), ("::ffff:10.1.2.3", "10.1.2.3"), ("x", None)],
)
def test_parse_source(text: str, want: str | None) -> None:
    got = parse_source(text)
    assert (str(got) if got is not None else None) == want


# -- signing ---------------------------------------------------------------------------------

X5U = "https://127.0.0.1:8443/sp.pem"


@pytest.fixture(scope="module")
def signing() -> OutboundSigning:
    key = pki.new_key()
    return OutboundSigning(
        Signer(key, X5U), TABLE, country_code="1", new_origid=lambda: "fresh-origid"
    )


def facts(
    source: str = "127.0.0.1",
    frm: str = "sip:+12155550100@pbx.example",
    ruri: str = "sip:+13105550123@carrier.example",
    to: str = "sip:+13105550123@carrier.example",
    pai: tuple[str, ...] = (),
    identity: tuple[str, ...] = (),
) -> InviteFacts:
    return InviteFacts(
        call_id="c1",
        request_uri=ruri,
        from_uri=frm,
        to_uri=to,
        time=1_800_000_000.7,
        source_ip=source,
        source_port=5060,
        transport="udp",
        pai_uris=pai,
        identity=identity,
    )


def claims(value: str) -> dict[str, Any]:
    token = value.split(";", 1)[0]
    payload = b64url_decode(token.split(".")[1])
    assert payload is not None
    result: dict[str, Any] = json.loads(payload)
    return result


@pytest.mark.parametrize(
    ("kw", "attest", "orig", "dest", "origid"),
    [
        ({}, "A", "12155550100", "13105550123", ORIGID),  # owned number on acme
        ({"frm": "sip:+13125550100@pbx.example"}, "B", "13125550100", "13105550123", ORIGID),
        ({"source": "127.0.0.2"}, "C", "12155550100", "13105550123", "fresh-origid"),
        (  # PAI wins over From
            {"frm": "sip:alice@pbx.example", "pai": ("tel:+1-215-555-0199",)},
            "A",
            "12155550199",
            "13105550123",
            ORIGID,
        ),
        (  # national numbers completed with the country code; dest from the R-URI
            {"frm": "sip:2155550100@pbx.example", "ruri": "sip:3105550123@carrier.example"},
            "A",
            "12155550100",
            "13105550123",
            ORIGID,
        ),
        (  # R-URI without a TN: To gives the dest
            {"ruri": "sip:trunk@carrier.example", "to": "<tel:+13105550177>"},
            "A",
            "12155550100",
            "13105550177",
            ORIGID,
        ),
        ({"source": "203.0.113.130"}, "B", "12155550100", "13105550123", "fresh-origid"),
    ],
)
def test_outbound_is_signed(
    signing: OutboundSigning,
    kw: dict[str, Any],
    attest: str,
    orig: str,
    dest: str,
    origid: str,
) -> None:
    got = signing.outbound(facts(**kw))
    assert isinstance(got, Signed), got
    assert (got.attest, got.orig_tn, got.dest_tn, got.origid) == (attest, orig, dest, origid)
    c = claims(got.identity)
    assert c == {
        "attest": attest,
        "dest": {"tn": [dest]},
        "iat": 1_800_000_000,
        "orig": {"tn": orig},
        "origid": origid,
    }
    assert got.identity.endswith(f";info=<{X5U}>;alg=ES256;ppt=shaken")
    fwd = got.forward("d1")
    assert fwd.headers == (("Identity", got.identity),) and fwd.verstat is None


@pytest.mark.parametrize(
    "kw",
    [
        {"source": "10.0.0.1"},  # not a trunk
        {"source": "garbage"},
        {"identity": ("eyJ...;info=<https://x.example/a.pem>",)},  # already signed: verify it
    ],
)
def test_not_ours_to_sign(signing: OutboundSigning, kw: dict[str, Any]) -> None:
    assert signing.outbound(facts(**kw)) is None


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"frm": "sip:alice@pbx.example"}, "no_orig_tn"),
        ({"frm": "sip:anonymous@anonymous.invalid"}, "no_orig_tn"),
        ({"ruri": "sip:bob@carrier.example", "to": "sip:bob@carrier.example"}, "no_dest_tn"),
        ({"frm": "sip:+1-215-CALL-NOW@pbx.example"}, "no_orig_tn"),
    ],
)
def test_unsignable_outbound_goes_unsigned(
    signing: OutboundSigning, kw: dict[str, Any], reason: str
) -> None:
    got = signing.outbound(facts(**kw))
    assert isinstance(got, NotSigned) and got.reason == reason and got.trunk == "acme"
    fwd = got.forward("d2")
    assert fwd.headers == () and fwd.verstat is None and reason in fwd.note
    entry = signing.audit_entry(facts(**kw), got, 0.1)
    assert (entry.kind, entry.action) == ("signing", "forward_unsigned")
    assert entry.details["unsigned"] == reason


def test_audit_entry_of_a_signed_call(signing: OutboundSigning) -> None:
    f = facts()
    got = signing.outbound(f)
    assert isinstance(got, Signed)
    entry = signing.audit_entry(f, got, 0.25)
    assert (entry.kind, entry.action, entry.attest, entry.origid) == (
        "signing",
        "signed",
        "A",
        ORIGID,
    )
    assert entry.identity_headers == (got.identity,) and entry.x5u == X5U
    assert entry.passport_claims == claims(got.identity)
    assert entry.source == "127.0.0.1:5060" and entry.details == {"trunk": "acme"}
