"""Shared attestation fixtures: a generated STI PKI served over real HTTPS on 127.0.0.1.

``sti_pki`` (session scope) gives every attestation test the same PKI and server:

* ``sti_pki.root`` / ``.intermediate`` / ``.leaf`` — :class:`attestation.pki.Issued`
  (``.cert``, ``.key``, ``.cert_pem``, ``.key_pem``); the leaf is ``CN=SHAKEN 1234`` with
  TNAuthList SPC ``1234`` (``sti_pki.spc``), signed by the intermediate.
* ``sti_pki.x5u()`` — URL of the good chain (leaf + intermediate);
  ``sti_pki.x5u(name)`` — URL of a bad variant, ``sti_pki.variants[name]`` its leaf
  (with key, so a PASSporT can be signed with it). Names: see ``VARIANTS``.
* ``sti_pki.trust_anchors`` (PEM file), ``sti_pki.tls_ca`` (CA file of the server's TLS
  certificate), ``sti_pki.revoked_crl`` (CRL file revoking ``variants["revoked"]``).
* ``sti_pki.config(**overrides)`` — an AttestationConfig that trusts the anchors, allows
  127.0.0.1 and trusts the server's TLS; in-memory cache unless overridden.
* ``sti_pki.serve(body, **route) -> url`` — serve anything at a fresh path (hit counting via
  ``sti_pki.server.hits(path_of(url))``).
* ``sti_pki.now`` — the time the PKI was made; certificates are valid from now-1 day.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from attestation import pki
from attestation.certs.server import Route, X5UServerThread, tls_context
from attestation.config import AttestationConfig

SPC = "1234"

VARIANTS = (
    "good",  # leaf + intermediate, SPC 1234, CRL DP -> /ca.crl (empty CRL)
    "expired",  # leaf notAfter in the past
    "not_yet_valid",  # leaf notBefore in the future
    "expired_intermediate",  # intermediate notAfter in the past
    "untrusted",  # chain to a root that is not a trust anchor
    "impostor_root",  # chain to a root with the trusted root's name but another key
    "revoked",  # revoked by sti_pki.revoked_crl (a CRL *file*)
    "revoked_dp",  # revoked by the CRL at its own distribution point
    "revoked_indirect",  # revoked by an indirect CRL signed by the STI-PA anchor (at its DP)
    "no_tnauthlist",
    "two_spcs",
    "bad_tnauthlist",  # TNAuthList extension holding malformed DER
    "tn_only",  # TNAuthList with a TN entry but no SPC
    "p384",  # EC P-384 leaf key
    "wrong_key",  # leaf signature made with a key other than the intermediate's
    "ca_false",  # intermediate with basicConstraints CA:false
    "no_keycertsign",  # intermediate keyUsage without keyCertSign
    "leaf_no_digital_signature",  # leaf keyUsage without digitalSignature
    "no_policy_cn_mismatch",  # valid, but lints: no SHAKEN policy OID, CN not "SHAKEN 1234"
)


@dataclass
class StiPki:
    now: float
    directory: Path
    server: X5UServerThread
    root: pki.Issued
    intermediate: pki.Issued
    sti_pa: pki.Issued
    leaf: pki.Issued
    trust_anchors: Path
    tls_ca: Path
    revoked_crl: Path
    spc: str = SPC
    variants: dict[str, pki.Issued] = field(default_factory=dict)
    chains: dict[str, bytes] = field(default_factory=dict)
    _counter: Iterator[int] = field(default_factory=itertools.count)

    @property
    def leaf_key_pem(self) -> bytes:
        return self.leaf.key_pem

    @property
    def chain_pem(self) -> bytes:
        return self.chains["good"]

    def x5u(self, name: str = "good") -> str:
        if name not in self.chains:
            raise KeyError(f"unknown PKI variant {name!r}; known: {', '.join(self.chains)}")
        return self.server.url(f"/{name}.pem")

    def serve(self, body: bytes = b"", **route: Any) -> str:
        """Serve ``body`` (or a misbehaving Route) at a fresh path; return its URL."""
        path = f"/t{next(self._counter)}.pem"
        return self.server.set_route(path, Route(body=body, **route))

    def hits(self, url: str) -> int:
        return self.server.hits(path_of(url))

    def config(self, **overrides: Any) -> AttestationConfig:
        base = AttestationConfig(
            trust_anchors=(self.trust_anchors,),
            x5u_allow_hosts=("127.0.0.1",),
            x5u_ca_file=self.tls_ca,
            cert_cache_file=None,
        )
        return replace(base, **overrides)


def path_of(url: str) -> str:
    return urlsplit(url).path


def _build(directory: Path, server: X5UServerThread, now: float) -> StiPki:
    base = server.base_url
    day = dt.timedelta(days=1)
    t = pki.utc(now)
    root = pki.make_root(now=now)
    inter = pki.make_intermediate(root, now=now)
    sti_pa = pki.make_root("SPITWALL Test STI-PA", now=now)
    ok_dp = f"{base}/ca.crl"

    def leaf(issuer: pki.Issued = inter, **kw: Any) -> pki.Issued:
        kw.setdefault("crl_url", ok_dp)
        return pki.make_leaf(issuer, (SPC,), now=now, **kw)

    good = leaf()
    v: dict[str, tuple[pki.Issued, tuple[pki.Issued, ...]]] = {}
    v["good"] = (good, (inter,))
    v["expired"] = (leaf(not_before=t - 30 * day, not_after=t - day), (inter,))
    v["not_yet_valid"] = (leaf(not_before=t + day, not_after=t + 30 * day), (inter,))
    old_inter = pki.make_intermediate(root, now=now, not_before=t - 30 * day, not_after=t - day)
    v["expired_intermediate"] = (leaf(old_inter), (old_inter,))
    other_root = pki.make_root("Some Other Root", now=now)
    other_inter = pki.make_intermediate(other_root, now=now)
    v["untrusted"] = (leaf(other_inter), (other_inter,))
    impostor = pki.make_root(now=now)  # same name as the trusted root, other key
    imp_inter = pki.make_intermediate(impostor, now=now)
    v["impostor_root"] = (leaf(imp_inter), (imp_inter,))
    v["revoked"] = (leaf(), (inter,))
    v["revoked_dp"] = (leaf(crl_url=f"{base}/revoked-dp.crl"), (inter,))
    v["revoked_indirect"] = (leaf(crl_url=f"{base}/sti-pa.crl"), (inter,))
    v["no_tnauthlist"] = (pki.make_leaf(inter, None, now=now, crl_url=ok_dp), (inter,))
    v["two_spcs"] = (pki.make_leaf(inter, (SPC, "5678"), now=now, crl_url=ok_dp), (inter,))
    v["bad_tnauthlist"] = (leaf(tnauthlist_der=b"\x30\x05\xa0\x03\x16\x05\x31"), (inter,))
    from attestation.tnauthlist import TelephoneNumber, encode

    v["tn_only"] = (leaf(tnauthlist_der=encode([TelephoneNumber("12155551212")])), (inter,))
    v["p384"] = (leaf(curve="P-384"), (inter,))
    v["wrong_key"] = (leaf(signing_key=pki.new_key()), (inter,))
    ca_false = pki.make_intermediate(root, "Not A CA", now=now, ca=False)
    v["ca_false"] = (leaf(ca_false), (ca_false,))
    no_kcs = pki.make_intermediate(root, "No keyCertSign", now=now, key_cert_sign=False)
    v["no_keycertsign"] = (leaf(no_kcs), (no_kcs,))
    v["leaf_no_digital_signature"] = (leaf(digital_signature=False), (inter,))
    v["no_policy_cn_mismatch"] = (leaf(policy=False, cn="SHAKEN 9999"), (inter,))

    directory.mkdir(parents=True, exist_ok=True)
    anchors = directory / "trust-anchors.pem"
    anchors.write_bytes(root.cert_pem + sti_pa.cert_pem)
    revoked_crl = directory / "revoked.crl"
    revoked_crl.write_bytes(pki.crl_pem(pki.make_crl(inter, [v["revoked"][0].cert], now=now)))
    server.set_route("/ca.crl", Route(pki.crl_pem(pki.make_crl(inter, (), now=now))))
    server.set_route(
        "/revoked-dp.crl",
        Route(pki.crl_pem(pki.make_crl(inter, [v["revoked_dp"][0].cert], now=now))),
    )
    server.set_route(
        "/sti-pa.crl",
        Route(
            pki.crl_pem(
                pki.make_crl(sti_pa, [v["revoked_indirect"][0].cert], now=now, indirect=True)
            )
        ),
    )
    chains: dict[str, bytes] = {}
    for name, (lf, issuers) in v.items():
        chains[name] = pki.pem_chain(lf.cert, *(i.cert for i in issuers))
        server.set_route(f"/{name}.pem", Route(chains[name]))
        (directory / f"{name}.pem").write_bytes(chains[name])
        (directory / f"{name}.key").write_bytes(lf.key_pem)
    return StiPki(
        now=now,
        directory=directory,
        server=server,
        root=root,
        intermediate=inter,
        sti_pa=sti_pa,
        leaf=good,
        trust_anchors=anchors,
        tls_ca=directory / "tls.crt",
        revoked_crl=revoked_crl,
        variants={k: lf for k, (lf, _) in v.items()},
        chains=chains,
    )


@pytest.fixture(scope="session")
def sti_pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StiPki]:
    now = time.time()
    directory = tmp_path_factory.mktemp("sti-pki")
    tls = pki.make_tls_cert(now=now)
    (directory / "tls.crt").write_bytes(tls.cert_pem)
    (directory / "tls.key").write_bytes(tls.key_pem)
    server = X5UServerThread(tls_context(directory / "tls.crt", directory / "tls.key")).start()
    try:
        yield _build(directory, server, now)
    finally:
        server.stop()
