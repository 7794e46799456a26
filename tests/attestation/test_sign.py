"""STI-AS: the signing policy as a table, and the signed Identity header's exact shape."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from attestation.config import AttestationConfig, SigningTrunk
from attestation.identity import IdentityHeader, parse
from attestation.passport import Passport, b64url_decode, decode, verify_signature
from attestation.sign import (
    ShakenClaims,
    Signer,
    SigningError,
    attestation_level,
    load_private_key,
    shaken_claims,
    sign_call,
)
from spitwall.config import load_config

from .stivs import KEY, NOW, X5U, call, verifier

OWNER = SigningTrunk(kind="customer", owned_tns=("12155551212", "1303555*"), origid="")
FIXED = SigningTrunk(kind="customer", owned_tns=(), origid="3c2c5a0e-8c2f-4d51-9b6a-2f1f0b3f6a01")
GATEWAY = SigningTrunk(kind="gateway", owned_tns=("12155551212",))


@pytest.mark.parametrize(
    ("trunk", "orig", "level"),
    [
        (OWNER, "12155551212", "A"),  # the customer's own number
        (OWNER, "13035550000", "A"),  # inside an owned prefix
        (OWNER, "12155551213", "B"),  # known customer, number not theirs
        (OWNER, "1303555", "A"),
        (OWNER, "130355", "B"),
        (FIXED, "12155551212", "B"),
        (GATEWAY, "12155551212", "C"),  # gateway traffic is C even for listed numbers
        (GATEWAY, "19995550000", "C"),
    ],
)
def test_attestation_policy(trunk: SigningTrunk, orig: str, level: str) -> None:
    assert attestation_level(trunk, orig) == level
    claims = shaken_claims(trunk, orig, ["12155550000"], 1, new_origid="u")
    assert claims.attest == level


def test_origid_per_trunk_or_fresh() -> None:
    assert shaken_claims(FIXED, "1", ["2"], 1, new_origid="x").origid == FIXED.origid
    assert shaken_claims(OWNER, "1", ["2"], 1, new_origid="x").origid == "x"
    with pytest.raises(SigningError):
        shaken_claims(OWNER, "1", ["2"], 1)


@pytest.mark.parametrize(
    ("orig", "dest"),
    [("+12155551212", ["1"]), ("1", []), ("1", ["1-215"]), ("", ["1"])],
)
def test_non_canonical_tns_are_refused(orig: str, dest: list[str]) -> None:
    with pytest.raises(SigningError):
        shaken_claims(FIXED, orig, dest, 1)


def test_identity_header_shape() -> None:
    signer = Signer(KEY, X5U)
    claims = ShakenClaims("12155551212", ("12155551213", "12155551214"), "A", "o-1", 1800000000)
    value = signer.identity(claims)
    token, params = value.split(";", 1)
    assert params == f"info=<{X5U}>;alg=ES256;ppt=shaken"
    h64, p64, s64 = token.split(".")
    assert b64url_decode(h64) == (
        b'{"alg":"ES256","ppt":"shaken","typ":"passport","x5u":"' + X5U.encode() + b'"}'
    )
    assert json.loads(b64url_decode(p64) or b"") == {
        "attest": "A",
        "dest": {"tn": ["12155551213", "12155551214"]},
        "iat": 1800000000,
        "orig": {"tn": "12155551212"},
        "origid": "o-1",
    }
    assert len(b64url_decode(s64) or b"") == 64  # raw r||s, not DER
    hdr = parse(value)
    assert isinstance(hdr, IdentityHeader)
    pp = decode(hdr.token, expect_ppt="shaken")
    assert isinstance(pp, Passport) and verify_signature(pp, KEY.public_key()) is None


async def test_sign_call_verifies() -> None:
    value = sign_call(Signer(KEY, X5U), FIXED, "12155551212", ["12155551213"], NOW)
    v = await verifier().verify(call(value))
    assert v.valid and v.attest == "B" and v.origid == FIXED.origid


def test_signer_refuses_wrong_keys_and_urls(tmp_path: Path) -> None:
    with pytest.raises(SigningError):
        Signer(ec.generate_private_key(ec.SECP384R1()), X5U)
    with pytest.raises(SigningError):
        Signer(KEY, "http://cr.example/sp.pem")
    with pytest.raises(SigningError):
        load_private_key(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    p384 = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(SigningError):
        load_private_key(p384)
    sec1 = KEY.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert load_private_key(sec1).public_key() == KEY.public_key()


def test_trunk_config_from_toml(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    oid = str(uuid.uuid4())
    f.write_text(
        "[attestation]\n"
        'signing_trunks = { acme = { kind = "customer", owned_tns = ["1215555*"], '
        f'origid = "{oid}" }} }}\n'
    )
    cfg = load_config(f).attestation
    assert isinstance(cfg, AttestationConfig)
    assert cfg.signing_trunks["acme"] == SigningTrunk("customer", ("1215555*",), oid)
    f.write_text('[attestation.signing_trunks.bad]\norigid = "not-a-uuid"\n')
    with pytest.raises(Exception, match=r"signing_trunks\.bad"):
        load_config(f)


def test_signer_from_config(tmp_path: Path) -> None:
    from attestation.sign import signer_from_config

    assert signer_from_config(AttestationConfig()) is None
    key = tmp_path / "sp.key"
    key.write_bytes(
        KEY.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    signer = signer_from_config(AttestationConfig(signing_key=key, signing_x5u=X5U))
    assert signer is not None and signer.x5u == X5U
    with pytest.raises(SigningError, match="signing_key"):
        signer_from_config(AttestationConfig(signing_key=tmp_path / "nope", signing_x5u=X5U))
    with pytest.raises(SigningError, match="https"):
        signer_from_config(AttestationConfig(signing_key=key, signing_x5u=""))
