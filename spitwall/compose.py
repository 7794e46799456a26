"""The composition root: every part of one running spitwall, built from config.

Only this module knows all the packages. It opens the reputation store and the
attestation log (one SQLite writer each), builds the certificate service, the STIR/SHAKEN
verifier and the scoring engine, puts them behind the proxy's screening seam
(``proxy.pipeline.CallScreener``), mounts the HTTP API on the shared aiohttp app, and
starts the challenge/voicemail UA as a second process when it is enabled.

For ``make run`` the default config sets ``attestation.dev_pki = true``: a test STI PKI is
created under ``<data_dir>/pki`` on first start (and reused after), served over HTTPS on
127.0.0.1:``dev_pki_port``, and its root becomes a trust anchor; without a ``signing_key``
the proxy's STI-AS signs with its leaf key and x5u. So a newcomer can sign (``spitwall
sign --key <data_dir>/pki/sp.key --x5u https://127.0.0.1:8443/sp.pem``) and verify calls
with nothing else installed. Production configs leave it off.

The STI-AS mode (``proxy.signing``) is on when there is a signer (``signing_key``, or the
dev PKI) and some signing trunk lists ``sources``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import logging
import os
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

from attestation.audit import AuditLog, open_audit_log
from attestation.certs import CertificateService
from attestation.config import AttestationConfig
from attestation.pki import PkiManifest, init_pki
from attestation.sign import Signer, load_private_key, signer_from_config
from attestation.verify import Verifier
from challenge.config import resolve_paths
from challenge.passtoken import PassClaims, PassVerifier, load_or_create_secret
from challenge.runner import report_token
from proxy.pipeline import CallScreener, DivertTargets, PipelineObserver
from proxy.server import Bound
from proxy.signing import OutboundSigning, compile_trunks
from proxy.sip import SipParseError, SipUri, parse_uri
from reputation.engine import ScoringEngine
from reputation.store import Store, store_path

from .config import SpitwallConfig
from .runtime import MULTIPROC_ENV, AppExtension, Runtime

log = logging.getLogger("spitwall.compose")

WORKER_SYNC_INTERVAL = 0.2
"""Seconds between a worker's reads of the store's change feed (``proxy.workers`` > 1):
a list change made over the API (worker 0) reaches the other workers' calls this fast."""
SINGLE_SYNC_INTERVAL = 1.0
"""One process alone only needs to see changes made by the command line (``users add``)."""

MAINTENANCE_INTERVAL = 3600.0
"""Seconds between the store's housekeeping runs (expired list entries, decayed counters,
old call history, the change feed, spent passes): worker 0 only, the file is shared."""

DEV_PKI_SPC = "SPITWALL-DEV"
DEV_PKI_MARGIN = 86400.0
"""Re-create the dev PKI when a certificate would expire within this many seconds."""


def challenge_secret_path(cfg: SpitwallConfig) -> Path:
    """The HMAC secret shared by the proxy (pass tokens), the API and the challenge UA."""
    return resolve_paths(cfg.challenge, cfg.data_dir).secret_file


def _resolve_attestation(cfg: SpitwallConfig) -> AttestationConfig:
    """Put the certificate cache under data_dir unless the config names a path of its own."""
    att = cfg.attestation
    cache = att.cert_cache_file
    if cache is not None and not cache.is_absolute() and cache.parent == Path("var"):
        att = dataclasses.replace(att, cert_cache_file=cfg.data_dir / cache.name)
    return att


class Spitwall:
    """One process's spitwall: proxy, pipeline, stores, HTTP, and the challenge UA child."""

    def __init__(
        self,
        cfg: SpitwallConfig,
        *,
        worker: int = 0,
        cfg_path: Path | None = None,
        metrics_dir: Path | None = None,
    ) -> None:
        self.cfg = cfg
        self.worker = worker
        self.metrics_dir = metrics_dir
        """Several workers: where their metric files are merged (``Runtime.metrics_dir``)."""
        self.cfg_path = cfg_path
        """The config file, handed to the challenge UA process so both read the same."""
        self.store: Store | None = None
        self.audit: AuditLog | None = None
        self.certs: CertificateService | None = None
        self.screener: CallScreener | None = None
        self.runtime: Runtime | None = None
        self.x5u_server: Any = None
        self.challenge_proc: subprocess.Popen[bytes] | None = None
        self.dev_pki: Any = None
        self._follow: asyncio.Task[None] | None = None
        self._maintain: asyncio.Task[None] | None = None

    async def start(self, http: bool = True) -> list[Bound]:
        cfg = self.cfg
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        att = _resolve_attestation(cfg)
        if att.dev_pki:
            att = await self._start_dev_pki(att)
        try:
            signing = self._outbound_signing(att)
        except Exception:  # a bad signing_key or trunk table fails the start; free the port
            if self.x5u_server is not None:
                await self.x5u_server.stop()
                self.x5u_server = None
            raise
        self.store = Store.open(
            store_path(cfg.data_dir, cfg.reputation.store), cfg.reputation.store
        )
        # Lists, users, tokens and counters live in memory; other processes change the file
        # too (worker 0's API and challenge reports for the other workers; `spitwall users
        # add` run beside a live server): follow the shared file's change feed.
        interval = WORKER_SYNC_INTERVAL if cfg.proxy.workers > 1 else SINGLE_SYNC_INTERVAL
        self._follow = asyncio.create_task(self.store.follow(interval))
        if self.worker == 0:
            self._maintain = asyncio.create_task(_maintenance(self.store, MAINTENANCE_INTERVAL))
        self.audit = open_audit_log(att, cfg.data_dir, logger=logging.getLogger("spitwall.audit"))
        await self.audit.start()
        verifier: Verifier | None = None
        if att.enabled:
            self.certs = CertificateService(att)
            verifier = Verifier(att, self.certs)
        engine = ScoringEngine(
            cfg.reputation,
            lists=self.store.lists,
            book=self.store.book,
            learned=self.store.learned,
        )
        secret = load_or_create_secret(challenge_secret_path(cfg))
        # a token's id is spent once across every worker: the shared file decides
        passes = PassVerifier(secret, shared=self.store.spend_pass)

        targets = DivertTargets()
        if cfg.challenge.enabled:
            uri = f"sip:challenge@{cfg.challenge.listen}"
            targets = DivertTargets(challenge=uri, voicemail=uri)
        self.screener = CallScreener(
            engine=engine,
            verifier=verifier,
            store=self.store,
            audit=self.audit,
            targets=targets,
            passes=_PassCheck(passes),
            reason_form=att.reason_form,
            signing=signing,
        )
        self.runtime = Runtime(
            cfg,
            screener=self.screener,
            observer=PipelineObserver(self.screener),
            worker=self.worker,
            metrics_dir=self.metrics_dir,
        )
        # the API's stats sample what /metrics shows: every worker's counts
        self.runtime.extensions.append(self._api_extension(secret, self.runtime.exposed_registry))
        bound = await self.runtime.start(http=http)
        if cfg.challenge.enabled and self.worker == 0:
            for problem in challenge_wiring_problems(cfg, bound, self.runtime.http_bound):
                log.warning("challenge UA misconfigured: %s", problem)
            self._start_challenge()
        return bound

    def _api_extension(self, secret: bytes, registry: Any) -> AppExtension:
        """The HTTP API and web page on the shared aiohttp app (``/api/v1``, ``/``)."""
        from api.app import build_api
        from attestation.audit import (
            AuditReader,
            audit_db_path,
            checkpoint_key_path,
            load_public_key,
        )

        assert self.store is not None and self.screener is not None
        cfg = self.cfg
        keys = []
        pub = checkpoint_key_path(cfg.attestation, cfg.data_dir).with_suffix(".key.pub")
        if pub.exists():
            keys.append(load_public_key(pub.read_bytes()))
        screener = self.screener

        def on_pass(caller: str, callee: str, until: float) -> None:
            screener.remember_pass(caller, callee, until)

        return build_api(
            self.store,
            AuditReader(audit_db_path(cfg.attestation, cfg.data_dir)),
            cfg.http,
            data_dir=cfg.data_dir,
            reputation=cfg.reputation,
            challenge_token=report_token(cfg.challenge, secret),
            audit_keys=keys,
            registry=registry,
            on_challenge_pass=on_pass,
        )

    def _outbound_signing(self, att: AttestationConfig) -> OutboundSigning | None:
        """The proxy's STI-AS step, or None. A bad ``signing_key`` or an ambiguous trunk
        prefix fails the start (SigningError/ValueError naming it), not each call."""
        trunks = compile_trunks(att.signing_trunks)
        signer = signer_from_config(att) if att.signing_key is not None else self._dev_signer()
        if not trunks:
            return None
        if signer is None:
            log.warning(
                "signing trunks have sources but there is no signing_key: calls from them "
                "are forwarded unsigned and screened like inbound calls"
            )
            return None
        return OutboundSigning(signer, trunks, country_code=att.country_code)

    def _dev_signer(self) -> Signer | None:
        """The development PKI's leaf key and x5u (``dev_pki`` without ``signing_key``)."""
        if self.dev_pki is None:
            return None
        key = load_private_key(Path(self.dev_pki.leaf_key).read_bytes())
        return Signer(key, self.dev_pki.x5u_url)

    async def _start_dev_pki(self, att: AttestationConfig) -> AttestationConfig:
        """Create (once) and serve the development STI PKI; trust its root."""
        from attestation.certs.server import serve_pki

        directory = self.cfg.data_dir / "pki"
        base_url = f"https://127.0.0.1:{att.dev_pki_port}"
        manifest = await asyncio.to_thread(_ensure_dev_pki, directory, base_url)
        if self.worker == 0:  # one server for all workers: they share data_dir
            try:
                self.x5u_server = await serve_pki(directory)
                log.info(
                    "development x5u server",
                    extra={"url": manifest.x5u_url, "key": manifest.leaf_key},
                )
            except OSError as exc:
                log.warning(
                    "development x5u server not started: calls signed with the dev PKI "
                    "will fail verification (436)",
                    extra={"port": att.dev_pki_port, "error": str(exc)},
                )
        self.dev_pki = manifest
        ca_file = Path(manifest.tls_cert)
        if att.x5u_ca_file is not None:  # keep trusting the configured servers too
            ca_file = directory / "x5u-ca-bundle.pem"
            ca_file.write_bytes(Path(manifest.tls_cert).read_bytes() + att.x5u_ca_file.read_bytes())
        return dataclasses.replace(
            att,
            trust_anchors=(*att.trust_anchors, Path(manifest.root_cert)),
            x5u_allow_hosts=tuple(dict.fromkeys((*att.x5u_allow_hosts, "127.0.0.1"))),
            x5u_ca_file=ca_file,
        )

    def _start_challenge(self) -> None:
        cmd = [sys.executable, "-m", "spitwall", "challenge"]
        if self.cfg_path is not None:
            cmd += ["--config", str(self.cfg_path)]
        cmd += ["--data-dir", str(self.cfg.data_dir)]
        env = dict(os.environ)
        # the UA child is no proxy worker: its metrics (if any) must not join /metrics
        env.pop(MULTIPROC_ENV, None)
        self.challenge_proc = subprocess.Popen(cmd, env=env)
        log.info("challenge UA started", extra={"pid": self.challenge_proc.pid})

    @property
    def http_bound(self) -> tuple[str, int] | None:
        return self.runtime.http_bound if self.runtime else None

    async def stop(self, grace: float = 3.0) -> None:
        if self.challenge_proc is not None:
            self.challenge_proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(self.challenge_proc.wait, 5.0)
            if self.challenge_proc.poll() is None:
                self.challenge_proc.kill()
        if self.runtime is not None:
            await self.runtime.stop(grace)
        for task in (self._follow, self._maintain):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.audit is not None:
            await self.audit.close()
        if self.certs is not None:
            await self.certs.close()
        if self.x5u_server is not None:
            with contextlib.suppress(Exception):
                await self.x5u_server.stop()
        if self.store is not None:
            await self.store.aclose()


async def _maintenance(store: Store, interval: float) -> None:
    """``Store.maintain`` every ``interval`` seconds, for as long as the process serves."""
    while True:
        await asyncio.sleep(interval)
        try:
            purged, pruned = await store.maintain()
            log.info(
                "store housekeeping", extra={"list_entries_purged": purged, "keys_pruned": pruned}
            )
        except Exception:  # housekeeping must never stop the proxy; try again next time
            log.exception("store housekeeping failed")


def _ensure_dev_pki(directory: Path, base_url: str) -> PkiManifest:
    """The dev PKI in ``directory``, created when missing, unreadable, made for another
    port, or about to run out (a certificate within a day of notAfter, a CRL past its
    nextUpdate). Under a file lock: worker processes starting together create it once."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        why = _dev_pki_problem(directory, base_url)
        if why is None:
            return PkiManifest.load(directory)
        init_pki(directory, DEV_PKI_SPC, now=time.time(), base_url=base_url)
        log.warning(
            "created a development STI PKI (dev_pki: never in production)",
            extra={"path": str(directory), "why": why, "x5u": f"{base_url}/sp.pem"},
        )
        return PkiManifest.load(directory)


def _dev_pki_problem(directory: Path, base_url: str) -> str | None:
    """Why the dev PKI in ``directory`` cannot be reused, or None."""
    from cryptography import x509

    try:
        m = PkiManifest.load(directory)
        certs = [
            x509.load_pem_x509_certificate(Path(p).read_bytes())
            for p in (m.root_cert, m.intermediate_cert, m.leaf_cert)
        ]
        crl = x509.load_pem_x509_crl(Path(m.crl).read_bytes())
        load_private_key(Path(m.leaf_key).read_bytes())
        for p in (m.tls_cert, m.tls_key, m.chain):
            Path(p).stat()
    except (OSError, ValueError, TypeError, KeyError) as exc:
        return f"none usable yet ({type(exc).__name__})"
    if m.base_url != base_url:
        return f"made for {m.base_url}"
    now = time.time()
    if any(c.not_valid_after_utc.timestamp() - DEV_PKI_MARGIN < now for c in certs):
        return "a certificate expires"
    upd = crl.next_update_utc
    if upd is not None and upd.timestamp() < now:
        return "the CRL is past its nextUpdate"
    return None


def challenge_wiring_problems(
    cfg: SpitwallConfig, bound: list[Bound], http: tuple[str, int] | None
) -> list[str]:
    """Where ``[challenge]`` points somewhere this process does not listen.

    The UA child reads only the config file, so command-line overrides of the proxy's or
    the API's address (``--listen``, ``--http``) or a port-0 listen leave it sending the
    bridged leg and its outcome reports to the wrong place: calls that pass the challenge
    never ring and passes are never remembered. Said once at start, loudly."""
    out: list[str] = []
    ch = cfg.challenge
    udp_ports = {b.port for b in bound if b.transport == "udp"}
    try:
        uri = parse_uri(ch.outbound_proxy) if ch.outbound_proxy else None
    except SipParseError:
        uri = None
    if isinstance(uri, SipUri):
        port = uri.port or 5060
        if udp_ports and port not in udp_ports:
            out.append(
                f"[challenge] outbound_proxy {ch.outbound_proxy!r} uses port {port}, but the "
                f"proxy listens for UDP on {sorted(udp_ports)}: bridged calls will not arrive"
            )
    report = urllib.parse.urlsplit(ch.report_url)
    if http is None:
        out.append("[challenge] report_url: the HTTP API is off, so outcomes have nowhere to go")
    elif report.port is not None and report.port != http[1]:
        out.append(
            f"[challenge] report_url {ch.report_url!r} uses port {report.port}, but the API "
            f"listens on {http[0]}:{http[1]}: outcomes (and remembered passes) will be lost"
        )
    return out


class _PassCheck:
    """Adapts ``challenge.passtoken.PassVerifier`` to the pipeline's boolean check."""

    def __init__(self, verifier: PassVerifier) -> None:
        self.verifier = verifier

    async def __call__(self, token: str, caller: str, callee: str, now: float) -> bool:
        result = await self.verifier.acheck(token, caller or None, callee or None, now)
        if not isinstance(result, PassClaims):
            log.warning("pass token refused: %s", result.name, extra={"caller": caller})
        return isinstance(result, PassClaims)
