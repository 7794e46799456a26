"""What every end-to-end test bed needs: a local STI PKI served over HTTPS on 127.0.0.1,
and the config overrides that make a composed spitwall trust it and forward to a callee."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from attestation.certs.server import X5UServer, serve_pki
from attestation.pki import PkiManifest, init_pki
from tests.sipp.harness import free_port


async def local_pki(tmp_path: Path, spc: str = "SWTEST") -> tuple[PkiManifest, X5UServer]:
    """A fresh test PKI under ``tmp_path/pki``, its x5u chain served on a free port."""
    pki_dir = tmp_path / "pki"
    init_pki(pki_dir, spc, now=time.time(), base_url=f"https://127.0.0.1:{free_port()}")
    return PkiManifest.load(pki_dir), await serve_pki(pki_dir)


def overrides(
    tmp_path: Path, manifest: PkiManifest, uas_port: int, *, http: str = ""
) -> dict[str, Any]:
    """A composed spitwall on an ephemeral UDP port, fast timers, trusting ``manifest``."""
    return {
        "data_dir": str(tmp_path / "data"),
        "proxy.listen": ["udp:127.0.0.1:0"],
        "proxy.default_next_hop": f"sip:127.0.0.1:{uas_port}",
        "proxy.timers.t1": 0.1,
        "proxy.timers.t2": 0.4,
        "proxy.timers.t4": 0.5,
        "http.listen": http,
        "attestation.trust_anchors": [manifest.trust_anchors],
        "attestation.x5u_allow_hosts": ["127.0.0.1"],
        "attestation.x5u_ca_file": manifest.tls_cert,
    }
