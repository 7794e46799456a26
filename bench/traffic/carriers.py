"""The originating networks' STIR/SHAKEN credentials: one test STI PKI, one signing
certificate per carrier, chains served over real HTTPS on 127.0.0.1.

Why real: the benchmark's signed calls must cost and behave like production ones — the
verifier fetches each carrier's x5u once from a TLS server, validates the chain against the
trust anchor, caches it, and verifies an ES256 signature per call.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from attestation import pki
from attestation.certs.server import Route, X5UServerThread, tls_context
from attestation.config import AttestationConfig
from attestation.sign import ShakenClaims, Signer

from .model import CallSpec


@dataclass
class CarrierPki:
    directory: Path
    trust_anchors: Path
    tls_cert: Path
    server: X5UServerThread
    signers: dict[str, Signer] = field(default_factory=dict)
    spcs: dict[str, str] = field(default_factory=dict)

    def attestation(self, base: AttestationConfig | None = None) -> AttestationConfig:
        """The verifier's config: trust our root, allow the local server, no disk cache."""
        return replace(
            base or AttestationConfig(),
            trust_anchors=(self.trust_anchors,),
            x5u_allow_hosts=("127.0.0.1",),
            x5u_ca_file=self.tls_cert,
            cert_cache_file=None,
            crl_fetch=False,
        )

    def identity(self, spec: CallSpec) -> str | None:
        """The Identity header value the originating carrier would add (None: unsigned)."""
        if spec.level not in ("A", "B", "C"):
            return None
        claims = ShakenClaims(spec.caller, (spec.callee,), spec.level, spec.origid, int(spec.time))
        return self.signers[spec.carrier].identity(claims)

    def close(self) -> None:
        self.server.stop()


def start_pki(carriers: tuple[str, ...], directory: Path, now: float) -> CarrierPki:
    """Create the PKI (valid from ``now`` - 1 day for a year) and start the x5u server."""
    directory.mkdir(parents=True, exist_ok=True)
    root = pki.make_root(now=now)
    inter = pki.make_intermediate(root, now=now)
    tls = pki.make_tls_cert(now=now)
    anchors = directory / "trust-anchors.pem"
    anchors.write_bytes(root.cert_pem)
    cert, key = directory / "tls.crt", directory / "tls.key"
    cert.write_bytes(tls.cert_pem)
    key.write_bytes(tls.key_pem)
    server = X5UServerThread(tls_context(cert, key)).start()
    out = CarrierPki(directory, anchors, cert, server)
    for i, name in enumerate(carriers):
        spc = f"{700 + i}"
        leaf = pki.make_leaf(inter, (spc,), now=now, cn=f"SHAKEN {spc}")
        url = server.set_route(f"/{name}.pem", Route(pki.pem_chain(leaf.cert, inter.cert)))
        out.signers[name] = Signer(leaf.key, url)
        out.spcs[name] = spc
    return out
