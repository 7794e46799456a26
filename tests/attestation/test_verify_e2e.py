"""The verifier end to end: real CertificateService, real HTTPS x5u server on 127.0.0.1.

Certificate failure modes are the certificate service's own tests; here we check that the
verifier wires them through correctly (436 vs 437 and the reason), and that a valid call,
with and without a div PASSporT, verifies over the real chain with the SPC reported.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest

from attestation.certs.service import CertificateService
from attestation.model import IdentityInput, Verdict, Verstat
from attestation.passport import encode
from attestation.sign import ShakenClaims, Signer
from attestation.verify import Verifier

ORIG, DEST, FWD = "12155551212", "12155551213", "12155550003"
ORIGID = "123e4567-e89b-12d3-a456-426655440000"


def _inp(*values: str, now: float, to: str = DEST, ruri: str | None = None) -> IdentityInput:
    return IdentityInput(
        identity_headers=values,
        from_uri=f"sip:+{ORIG}@carrier.example;user=phone",
        to_uri=f"sip:+{to}@spitwall.example",
        request_uri=f"sip:+{ruri or to}@10.0.0.9",
        call_id=f"e2e-{time.monotonic_ns()}",
        now=now,
    )


async def _verify(
    sti_pki: Any, inp: IdentityInput, **cfg: Any
) -> tuple[Verdict, CertificateService]:
    config = sti_pki.config(**cfg)
    certs = CertificateService(config)
    try:
        return await Verifier(config, certs).verify(inp), certs
    finally:
        await certs.close()


def _identity(
    sti_pki: Any, variant: str = "good", x5u: str | None = None, attest: str = "A"
) -> str:
    now = int(time.time())
    claims = ShakenClaims(ORIG, (DEST,), attest, ORIGID, now)
    key, url = sti_pki.variants[variant].key, x5u or sti_pki.x5u(variant)
    if url.startswith("http:"):  # our Signer refuses http; a careless STI-AS might not
        header = {"alg": "ES256", "ppt": "shaken", "typ": "passport", "x5u": url}
        return f"{encode(header, claims.to_json(), key)};info=<{url}>;alg=ES256;ppt=shaken"
    return Signer(key, url).identity(claims)


async def test_valid_attest_a_over_the_real_chain(sti_pki: Any) -> None:
    v, certs = await _verify(sti_pki, _inp(_identity(sti_pki), now=time.time()))
    assert v.verstat is Verstat.PASSED, v
    assert (v.attest, v.origid, v.spc, v.x5u) == ("A", ORIGID, "1234", sti_pki.x5u())
    assert v.cert_fingerprint and len(v.cert_fingerprint) == 64
    assert v.issuer and "Intermediate" in v.issuer
    assert certs.stats["misses"] == 1


async def test_warm_cache_serves_repeat_calls(sti_pki: Any) -> None:
    config = sti_pki.config()
    certs = CertificateService(config)
    ver = Verifier(config, certs)
    try:
        for _ in range(3):
            assert (await ver.verify(_inp(_identity(sti_pki), now=time.time()))).valid
        assert certs.stats["misses"] == 1 and certs.stats["hits"] == 2
    finally:
        await certs.close()


async def test_valid_with_div_over_real_chains(sti_pki: Any) -> None:
    now = int(time.time())
    shaken = _identity(sti_pki)
    # the forwarding provider has its own certificate (a valid one with profile lints)
    fwd = Signer(
        sti_pki.variants["no_policy_cn_mismatch"].key, sti_pki.x5u("no_policy_cn_mismatch")
    )
    div = fwd.div_identity(ORIG, (FWD,), DEST, now)
    v, _ = await _verify(sti_pki, _inp(shaken, div, now=time.time(), to=FWD))
    assert v.valid and v.diverted and v.spc == "1234", v.details
    assert v.details["div"][0]["x5u"] == sti_pki.x5u("no_policy_cn_mismatch")
    # the same div signed under an untrusted certificate does not explain the retargeting
    bad = Signer(sti_pki.variants["untrusted"].key, sti_pki.x5u("untrusted")).div_identity(
        ORIG, (FWD,), DEST, now
    )
    v, _ = await _verify(sti_pki, _inp(shaken, bad, now=time.time(), to=FWD))
    assert (v.reason, v.sip_code, v.diverted) == ("div_invalid", 438, False)
    assert "cert_untrusted" in v.details["detail"]


@pytest.mark.parametrize(
    ("variant", "route", "reason", "code"),
    [
        ("good", {"status": 404}, "x5u_fetch_failed", 436),
        ("good", {"body": b"this is not PEM"}, "x5u_not_pem", 436),
        ("good", "http", "x5u_bad_url", 436),
        ("untrusted", None, "cert_untrusted", 437),
        ("expired", None, "cert_expired", 437),
        ("no_tnauthlist", None, "cert_no_tnauthlist", 437),
        ("two_spcs", None, "cert_multiple_spc", 437),
        ("revoked", None, "cert_revoked", 437),
    ],
)
async def test_certificate_failures_reach_the_verdict(
    sti_pki: Any, variant: str, route: Any, reason: str, code: int
) -> None:
    if route == "http":
        x5u = sti_pki.x5u(variant).replace("https://", "http://")
    elif route is not None:
        route = dict(route)
        x5u = sti_pki.serve(route.pop("body", b""), **route)
    else:
        x5u = sti_pki.x5u(variant)
    extra = {"crl_files": (sti_pki.revoked_crl,)} if variant == "revoked" else {}
    v, _ = await _verify(sti_pki, _inp(_identity(sti_pki, variant, x5u), now=time.time()), **extra)
    assert v.verstat is Verstat.FAILED
    assert (v.reason, v.sip_code) == (reason, code), v.details
    assert v.sip_text == ("Bad Identity Info" if code == 436 else "Unsupported Credential")
    assert v.failure_class == ("bad_identity_info" if code == 436 else "unsupported_credential")


async def test_cheap_failures_never_fetch(sti_pki: Any) -> None:
    x5u = sti_pki.serve(sti_pki.chain_pem)
    value = _identity(sti_pki, x5u=x5u)
    stale = _inp(value, now=time.time() + 120)
    v, _ = await _verify(sti_pki, stale)
    assert v.reason == "stale" and sti_pki.hits(x5u) == 0
    wrong_from = replace(_inp(value, now=time.time()), from_uri="sip:+19995550000@x")
    v, _ = await _verify(sti_pki, wrong_from)
    assert v.reason == "orig_mismatch" and sti_pki.hits(x5u) == 0
