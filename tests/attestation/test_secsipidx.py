"""Interop with a third-party STIR/SHAKEN implementation: asipto's secsipidx (Debian
package ``secsipidx``), both ways, over the shared test PKI.

* secsipidx signs (``-sign-full``) with the SP key and our x5u; spitwall verifies through
  the real certificate service and HTTPS x5u server.
* spitwall signs; secsipidx checks the signature with the leaf certificate, validates the
  chain to the test root (``-cert-verify 15 -ca-file -ca-inter``) and the expiry
  (``-expire``), and refuses tampered or stale tokens, so the "ok" is not vacuous.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from attestation.certs.service import CertificateService
from attestation.model import IdentityInput
from attestation.passport import b64url_decode, b64url_encode
from attestation.sign import ShakenClaims, Signer
from attestation.verify import Verifier

pytestmark = pytest.mark.secsipidx

ORIG, DEST = "12155551212", "12155551213"
ORIGID = "123e4567-e89b-12d3-a456-426655440000"


@pytest.fixture(scope="module")
def secsipidx() -> str:
    path = shutil.which("secsipidx")
    if path is None:
        pytest.fail(
            "secsipidx binary not found: install the Debian package 'secsipidx' "
            "(make test installs it via tools/sysdeps.sh)"
        )
    return path


def run(binary: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=30)


@pytest.fixture(scope="module")
def files(sti_pki: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("secsipidx")
    out = {
        "key": d / "sp.key",
        "cert": d / "sp.crt",
        "root": d / "root.pem",
        "inter": d / "inter.pem",
    }
    out["key"].write_bytes(sti_pki.leaf.key_pem)
    out["cert"].write_bytes(sti_pki.leaf.cert_pem)
    out["root"].write_bytes(sti_pki.root.cert_pem)
    out["inter"].write_bytes(sti_pki.intermediate.cert_pem)
    return out


def secsipidx_sign(binary: str, files: dict[str, Path], x5u: str, attest: str = "A") -> str:
    args = ["-sign-full", "-k", str(files["key"]), "-o", ORIG, "-d", DEST, "-a", attest]
    out = run(binary, *args, "-x5u", x5u, "-orig-id", ORIGID)
    assert out.returncode == 0, out
    value = out.stdout.strip()
    assert value.count(";") >= 1 and "ppt=shaken" in value, out.stdout
    return value


def secsipidx_check(binary: str, files: dict[str, Path], value: str, expire: int = 60) -> bool:
    out = run(
        binary,
        "-check",
        "-identity",
        value,
        "-p",
        str(files["cert"]),
        "-cert-verify",
        "15",
        "-ca-file",
        str(files["root"]),
        "-ca-inter",
        str(files["inter"]),
        "-expire",
        str(expire),
    )
    ok = out.returncode == 0 and out.stdout.strip().endswith("ok") and "not-ok" not in out.stdout
    assert ok or "not-ok" in out.stdout, (out.returncode, out.stdout, out.stderr)
    return ok


async def spitwall_verify(sti_pki: Any, value: str, now: float | None = None) -> Any:
    config = sti_pki.config()
    certs = CertificateService(config)
    inp = IdentityInput(
        identity_headers=(value,),
        from_uri=f"sip:+{ORIG}@a.example",
        to_uri=f"sip:+{DEST}@b.example",
        request_uri=f"sip:+{DEST}@b.example",
        call_id="secsipidx-interop",
        now=now if now is not None else time.time(),
    )
    try:
        return await Verifier(config, certs).verify(inp)
    finally:
        await certs.close()


@pytest.mark.parametrize("attest", ["A", "B", "C"])
async def test_secsipidx_signed_verifies_in_spitwall(
    secsipidx: str, files: dict[str, Path], sti_pki: Any, attest: str
) -> None:
    value = secsipidx_sign(secsipidx, files, sti_pki.x5u(), attest)
    v = await spitwall_verify(sti_pki, value)
    assert v.valid, v.details
    assert (v.attest, v.origid, v.spc) == (attest, ORIGID, "1234")


async def test_secsipidx_signed_tampered_fails_in_spitwall(
    secsipidx: str, files: dict[str, Path], sti_pki: Any
) -> None:
    value = secsipidx_sign(secsipidx, files, sti_pki.x5u(), "C")
    token, params = value.split(";", 1)
    h, p, s = token.split(".")
    claims = (b64url_decode(p) or b"").replace(b'"attest":"C"', b'"attest":"A"')
    v = await spitwall_verify(sti_pki, f"{h}.{b64url_encode(claims)}.{s};{params}")
    assert (v.reason, v.sip_code) == ("bad_signature", 438)


def _spitwall_sign(sti_pki: Any, iat: int) -> str:
    signer = Signer(sti_pki.leaf.key, sti_pki.x5u())
    return signer.identity(ShakenClaims(ORIG, (DEST, "12155550000"), "A", ORIGID, iat))


def test_spitwall_signed_verifies_in_secsipidx(
    secsipidx: str, files: dict[str, Path], sti_pki: Any
) -> None:
    value = _spitwall_sign(sti_pki, int(time.time()))
    assert secsipidx_check(secsipidx, files, value)


def test_secsipidx_rejects_tampered_and_stale_spitwall_tokens(
    secsipidx: str, files: dict[str, Path], sti_pki: Any
) -> None:
    value = _spitwall_sign(sti_pki, int(time.time()))
    token, params = value.split(";", 1)
    h, p, s = token.split(".")
    forged = (b64url_decode(p) or b"").replace(ORIG.encode(), b"12125550000")
    assert not secsipidx_check(secsipidx, files, f"{h}.{b64url_encode(forged)}.{s};{params}")
    stale = _spitwall_sign(sti_pki, int(time.time()) - 600)
    assert not secsipidx_check(secsipidx, files, stale, expire=60)


def test_secsipidx_chain_check_is_real(
    secsipidx: str, files: dict[str, Path], sti_pki: Any, tmp_path: Path
) -> None:
    other = tmp_path / "other-root.pem"
    other.write_bytes(sti_pki.sti_pa.cert_pem)  # a trust anchor that did not issue the chain
    value = _spitwall_sign(sti_pki, int(time.time()))
    assert not secsipidx_check(secsipidx, files | {"root": other}, value)
