"""Certificates for replay without the network: a local directory instead of x5u fetches.

Why: a replay runs on an operator's laptop, days after the calls, often without access to
the certificate repositories the captured PASSporTs name (and it must not hammer them for
a week of traffic). So by default nothing is fetched. An ``x5u`` URL is looked up in the
``--cert-dir`` directory as a file named after the URL's last path segment
(``https://cr.example/sp/shaken.pem`` → ``shaken.pem``) or after the SHA-256 hex of the
whole URL plus ``.pem`` (when last segments collide); the chain found there is validated
against the trust anchors at the verification time exactly like a fetched one. Without a
local copy the result is the honest ``x5u_fetch_failed`` (436), which the report counts.
Revocation (CRLs) is not checked offline.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509

from attestation.certs import CertReason, CertResult
from attestation.certs.chain import ValidChain, parse_pem_chain, validate
from attestation.certs.result import CertFailure


class OfflineCertificates:
    """A ``CertificateSource`` reading chains from a directory; never opens a socket."""

    def __init__(
        self,
        anchors: Sequence[x509.Certificate],
        cert_dir: Path | None = None,
        *,
        max_chain: int = 5,
    ) -> None:
        self.anchors = list(anchors)
        self.cert_dir = cert_dir
        self.max_chain = max_chain
        self._valid: dict[str, ValidChain] = {}
        self.missing: set[str] = set()
        """x5u URLs for which no local copy existed."""

    def _file_for(self, x5u: str) -> Path | None:
        if self.cert_dir is None:
            return None
        digest = self.cert_dir / (hashlib.sha256(x5u.encode()).hexdigest() + ".pem")
        if digest.is_file():
            return digest
        name = urlsplit(x5u).path.rsplit("/", 1)[-1]
        if name and name not in (".", ".."):
            p = self.cert_dir / name
            if p.is_file():
                return p
        return None

    async def get(self, x5u: str, at: float) -> CertResult:
        chain = self._valid.get(x5u)
        if chain is None:
            path = self._file_for(x5u)
            if path is None:
                self.missing.add(x5u)
                where = f"in {self.cert_dir}" if self.cert_dir else "(no --cert-dir given)"
                return CertResult.failure(
                    CertReason.X5U_FETCH_FAILED,
                    f"offline replay: no local copy of {x5u} {where}; x5u fetching is off",
                    x5u=x5u,
                )
            certs = parse_pem_chain(path.read_bytes(), self.max_chain)
            if isinstance(certs, CertFailure):
                return CertResult.failure(certs.reason, f"{path}: {certs.detail}", x5u=x5u)
            valid = validate(certs, self.anchors, at)
            if isinstance(valid, CertFailure):
                leaf = certs[0]
                return CertResult.failure(
                    valid.reason,
                    valid.detail,
                    x5u=x5u,
                    leaf=leaf,
                    issuer=leaf.issuer.rfc4514_string(),
                    chain=tuple(certs),
                )
            chain = self._valid[x5u] = valid
        fields = {
            "x5u": x5u,
            "leaf": chain.leaf,
            "spc": chain.spc,
            "tnauth": chain.tnauth,
            "fingerprint_sha256": chain.fingerprint_sha256,
            "issuer": chain.leaf.issuer.rfc4514_string(),
            "chain": chain.path,
        }
        late = chain.check_time(at)
        if late is not None:
            return CertResult.failure(late.reason, late.detail, **fields)  # type: ignore[arg-type]
        return CertResult(ok=True, public_key=chain.public_key, details={"offline": True}, **fields)  # type: ignore[arg-type]
