"""The test STI PKI: profile of the generated certificates, `spitwall pki init`, and the
local HTTPS x5u server the other attestation tests fetch from."""

from __future__ import annotations

import argparse
import json
import ssl
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from attestation import pki
from attestation.certs import CertificateService
from attestation.certs.server import manifest_port, serve_pki
from attestation.config import AttestationConfig
from attestation.tnauthlist import OID_TNAUTHLIST, TNAuthList, decode
from spitwall.commands import pki as pki_command

from .conftest import VARIANTS, StiPki


def cli_main(argv: list[str]) -> int:
    """Run `spitwall pki ...` through its own parser (other commands are not needed)."""
    parser = argparse.ArgumentParser(prog="spitwall")
    pki_command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


SERVE = (
    "import sys; from tests.attestation.test_pki import cli_main; sys.exit(cli_main(sys.argv[1:]))"
)


def _tnauth(cert: x509.Certificate) -> TNAuthList:
    ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(OID_TNAUTHLIST))
    assert isinstance(ext.value, x509.UnrecognizedExtension)
    value = decode(ext.value.value)
    assert isinstance(value, TNAuthList)
    return value


def test_leaf_has_the_shaken_profile(sti_pki: StiPki) -> None:
    leaf = sti_pki.leaf.cert
    assert leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "SHAKEN 1234"
    assert _tnauth(leaf).spcs == ("1234",)
    key = leaf.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    policies = leaf.extensions.get_extension_for_class(x509.CertificatePolicies).value
    assert [p.policy_identifier.dotted_string for p in policies] == [pki.SHAKEN_POLICY_OID]
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert leaf.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    dp = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert dp[0].full_name is not None
    assert dp[0].full_name[0].value == sti_pki.server.url("/ca.crl")
    leaf.verify_directly_issued_by(sti_pki.intermediate.cert)
    sti_pki.intermediate.cert.verify_directly_issued_by(sti_pki.root.cert)


def test_every_variant_is_served(sti_pki: StiPki) -> None:
    assert set(sti_pki.chains) == set(VARIANTS)
    assert _tnauth(sti_pki.variants["two_spcs"].cert).spcs == ("1234", "5678")
    p384 = sti_pki.variants["p384"].cert.public_key()
    assert isinstance(p384, ec.EllipticCurvePublicKey) and p384.curve.name == "secp384r1"


async def test_local_https_server_serves_chain_and_counts_hits(sti_pki: StiPki) -> None:
    ctx = ssl.create_default_context(cafile=str(sti_pki.tls_ca))
    url = sti_pki.serve(sti_pki.chain_pem)
    async with aiohttp.ClientSession() as s:
        async with s.get(url, ssl=ctx) as r:
            assert r.status == 200
            body = await r.read()
        async with s.get(sti_pki.server.url("/nope"), ssl=ctx) as r:
            assert r.status == 404
    assert x509.load_pem_x509_certificates(body)[0] == sti_pki.leaf.cert
    assert sti_pki.hits(url) == 1


def test_pki_init_writes_a_complete_pki(tmp_path: Path) -> None:
    d = tmp_path / "pki"
    rc = cli_main(["pki", "init", str(d), "--spc", "777", "--tn", "12155551212"])
    assert rc == 0
    m = pki.PkiManifest.load(d)
    assert m.spc == "777" and m.x5u_url == "https://127.0.0.1:8443/sp.pem"
    chain = x509.load_pem_x509_certificates(Path(m.chain).read_bytes())
    assert len(chain) == 2
    leaf, inter = chain
    root = x509.load_pem_x509_certificate(Path(m.trust_anchors).read_bytes())
    leaf.verify_directly_issued_by(inter)
    inter.verify_directly_issued_by(root)
    tn = _tnauth(leaf)
    assert tn.spcs == ("777",) and tn.covers_tn("12155551212")
    crl = x509.load_pem_x509_crl(Path(m.crl).read_bytes())
    assert crl.is_signature_valid(inter.public_key()) and len(crl) == 0
    key = Path(m.leaf_key).read_bytes()
    assert b"PRIVATE KEY" in key and (Path(m.leaf_key).stat().st_mode & 0o077) == 0
    assert json.loads((d / "manifest.json").read_text())["crl_url"].endswith("/ca.crl")
    # a second init refuses to clobber; bad input is a usage error
    assert cli_main(["pki", "init", str(d), "--spc", "777"]) == 2
    assert cli_main(["pki", "init", str(tmp_path / "x"), "--spc", "1", "--tn", "12x"]) == 2
    assert (
        cli_main(["pki", "init", str(tmp_path / "y"), "--spc", "1", "--base-url", "http://a"]) == 2
    )


def test_pki_serve_publishes_the_directory(tmp_path: Path) -> None:
    d = tmp_path / "pki"
    assert cli_main(["pki", "init", str(d), "--spc", "1", "--base-url", "https://127.0.0.1:1"]) == 0
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE, "pki", "serve", str(d), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "serving" in line, line
        base = line.split(" at ")[1].split()[0]
        ctx = ssl.create_default_context(cafile=str(d / "tls.crt"))
        import urllib.request

        with urllib.request.urlopen(base + "/sp.pem", context=ctx, timeout=5) as r:
            assert r.read() == (d / "sp.pem").read_bytes()
    finally:
        proc.terminate()
        proc.wait(5)


async def test_pki_init_output_verifies_through_the_certificate_service(tmp_path: Path) -> None:
    m = pki.init_pki(tmp_path / "p", "4242", now=time.time(), base_url="https://127.0.0.1:1")
    server = await serve_pki(m.directory, port=0)
    cfg = AttestationConfig(
        trust_anchors=(Path(m.trust_anchors),),
        x5u_allow_hosts=("127.0.0.1",),
        x5u_ca_file=Path(m.tls_cert),
        cert_cache_file=None,
        x5u_timeout=0.5,
    )
    svc = CertificateService(cfg)
    try:
        r = await svc.get(server.url("/sp.pem"), time.time())
        assert r.ok and r.spc == "4242", r.details
        assert "ca.crl" in str(r.details["crl_unavailable"])  # its DP names port 1
        crl = await svc.get(server.url("/ca.crl"), time.time())
        assert crl.reason == "x5u_not_pem"  # a CRL is not a certificate chain
    finally:
        await svc.close()
        await server.stop()


def test_manifest_port() -> None:
    assert manifest_port("https://127.0.0.1:8443") == 8443
    assert manifest_port("https://cr.example.com") == 443
    assert manifest_port("https://[::1]:9443/x") == 9443
    assert manifest_port("https://[::1]") == 443
