"""STIR/SHAKEN verification throughput: the full STI-VS against raw ES256, same run.

What it measures (all on 127.0.0.1, a generated test PKI, the real CertificateService):

* ``raw``: ``cryptography`` ES256 verifications per second (``public_key.verify`` over the
  signing input, DER signature prepared in advance): the ceiling for any verifier.
* ``warm``: ``Verifier.verify`` per second on distinct, valid SHAKEN PASSporTs with the
  certificate already cached — Identity parsing, strict decoding, claims, freshness,
  orig/dest binding, cache lookup, signature, replay cache. Goal: ≥ 70 % of ``raw``.
* ``cold``: milliseconds for one verification when the certificate is not cached (new
  service each time: HTTPS fetch with a TLS handshake, chain validation, TNAuthList, CRL
  file check).

Raw and warm are measured in alternating rounds (the ratio per round, median reported),
because a shared machine's load drifts between two long runs.

Usage: ``.venv/bin/python bench/verify_bench.py [--n 3000] [--rounds 20] [--cold 20] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from attestation import pki
from attestation.certs.result import CertResult
from attestation.certs.server import Route, X5UServerThread, tls_context
from attestation.certs.service import CertificateService
from attestation.config import AttestationConfig
from attestation.model import IdentityInput
from attestation.passport import b64url_decode
from attestation.sign import ShakenClaims, Signer
from attestation.verify import Verifier

ORIG, DEST = "12155551212", "12155551213"


def prepare_raw(tokens: list[str]) -> list[tuple[bytes, bytes]]:
    prepared = []
    for t in tokens:
        signing_input, sig64 = t.rsplit(".", 1)
        sig = b64url_decode(sig64) or b""
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        prepared.append((der, signing_input.encode()))
    return prepared


def raw_rate(pub: ec.EllipticCurvePublicKey, prepared: list[tuple[bytes, bytes]]) -> float:
    algo = ec.ECDSA(hashes.SHA256())
    start = time.perf_counter()
    for der, data in prepared:
        pub.verify(der, data, algo)
    return len(prepared) / (time.perf_counter() - start)


def inputs(values: list[str], now: float) -> list[IdentityInput]:
    return [
        IdentityInput(
            identity_headers=(v,),
            from_uri=f"sip:+{ORIG}@carrier.example;user=phone",
            to_uri=f"sip:+{DEST}@spitwall.example",
            request_uri=f"sip:+{DEST}@10.0.0.1",
            call_id=f"bench-{i}",
            now=now,
        )
        for i, v in enumerate(values)
    ]


async def warm_vs_raw(
    cfg: AttestationConfig,
    items: list[IdentityInput],
    pub: ec.EllipticCurvePublicKey,
    prepared: list[tuple[bytes, bytes]],
    rounds: int,
) -> tuple[list[float], list[float], list[float]]:
    """Alternate raw and warm chunks so that load changes on the machine hit both alike."""
    certs = CertificateService(cfg)
    ver = Verifier(cfg, certs)
    raws: list[float] = []
    warms: list[float] = []
    alone: list[float] = []
    try:
        first = await ver.verify(items[0])
        assert first.valid, first.details
        fixed = Verifier(cfg, _Fixed(await certs.get(first.x5u or "", items[0].now)))
        size = max(1, (len(items) - 1) // rounds)
        for r in range(rounds):
            chunk = items[1 + r * size : 1 + (r + 1) * size]
            raws.append(raw_rate(pub, prepared[: len(chunk)]))
            warms.append(await _rate(ver, chunk))
            alone.append(await _rate(fixed, chunk))
        return raws, warms, alone
    finally:
        await certs.close()


class _Fixed:
    """Answers every lookup with one prepared CertResult: the verifier's cost alone."""

    def __init__(self, result: CertResult) -> None:
        self.result = result

    async def get(self, x5u: str, at: float) -> CertResult:
        return self.result


async def _rate(ver: Verifier, chunk: list[IdentityInput]) -> float:
    start = time.perf_counter()
    for inp in chunk:
        v = await ver.verify(inp)
        if not v.valid and v.reason != "replayed":
            raise SystemExit(f"bench input failed: {v.reason} {v.details.get('detail')}")
    return len(chunk) / (time.perf_counter() - start)


async def cold_ms(cfg: AttestationConfig, inp: IdentityInput, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        certs = CertificateService(cfg)
        try:
            start = time.perf_counter()
            v = await Verifier(cfg, certs).verify(inp)
            out.append((time.perf_counter() - start) * 1000.0)
            assert v.valid, v.details
        finally:
            await certs.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3000, help="PASSporTs for the rate runs")
    ap.add_argument("--cold", type=int, default=20, help="cold verifications")
    ap.add_argument("--rounds", type=int, default=20, help="alternating raw/warm rounds")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()

    now = time.time()
    tmp = Path(tempfile.mkdtemp(prefix="verify-bench-"))
    tls = pki.make_tls_cert(now=now)
    (tmp / "tls.crt").write_bytes(tls.cert_pem)
    (tmp / "tls.key").write_bytes(tls.key_pem)
    root = pki.make_root(now=now)
    inter = pki.make_intermediate(root, now=now)
    leaf = pki.make_leaf(inter, now=now)
    (tmp / "root.pem").write_bytes(root.cert_pem)
    server = X5UServerThread(tls_context(tmp / "tls.crt", tmp / "tls.key")).start()
    try:
        x5u = server.set_route("/sp.pem", Route(pki.pem_chain(leaf.cert, inter.cert)))
        cfg = AttestationConfig(
            trust_anchors=(tmp / "root.pem",),
            x5u_allow_hosts=("127.0.0.1",),
            x5u_ca_file=tmp / "tls.crt",
            cert_cache_file=None,
            crl_fetch=False,
        )
        signer = Signer(leaf.key, x5u)
        values = [
            signer.identity(
                ShakenClaims(ORIG, (DEST,), "A", f"00000000-0000-4000-8000-{i:012d}", int(now))
            )
            for i in range(args.n)
        ]
        tokens = [v.split(";", 1)[0] for v in values]
        pub = leaf.key.public_key()
        raws, warms, alone = asyncio.run(
            warm_vs_raw(cfg, inputs(values, now), pub, prepare_raw(tokens), args.rounds)
        )
        cold = asyncio.run(cold_ms(cfg, inputs(values[:1], now)[0], args.cold))
    finally:
        server.stop()
    ratios = [w / r for w, r in zip(warms, raws, strict=True)]
    alone_ratios = [a / r for a, r in zip(alone, raws, strict=True)]
    result = {
        "raw_es256_per_s": round(statistics.median(raws)),
        "warm_verify_per_s": round(statistics.median(warms)),
        "warm_vs_raw": round(statistics.median(ratios), 3),
        "warm_vs_raw_min": round(min(ratios), 3),
        "verifier_alone_per_s": round(statistics.median(alone)),
        "verifier_alone_vs_raw": round(statistics.median(alone_ratios), 3),
        "cold_ms_median": round(statistics.median(cold), 2),
        "cold_ms_p90": round(sorted(cold)[int(0.9 * (len(cold) - 1))], 2),
        "n": args.n,
        "rounds": args.rounds,
        "python": sys.version.split()[0],
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"raw cryptography ES256 verify : {result['raw_es256_per_s']:>8} /s")
        print(f"Verifier.verify, warm cache   : {result['warm_verify_per_s']:>8} /s")
        print(f"warm / raw (median of rounds) : {result['warm_vs_raw']:>8.1%}")
        print(f"warm / raw (worst round)      : {result['warm_vs_raw_min']:>8.1%}")
        print(f"verifier alone (fixed cert)   : {result['verifier_alone_per_s']:>8} /s")
        print(f"verifier alone / raw          : {result['verifier_alone_vs_raw']:>8.1%}")
        print(f"cold (fetch+TLS+chain), median: {result['cold_ms_median']:>8} ms")
        print(f"cold, p90                     : {result['cold_ms_p90']:>8} ms")
    return 0 if result["warm_vs_raw"] >= 0.70 else 1


if __name__ == "__main__":
    sys.exit(main())
