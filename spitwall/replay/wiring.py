"""The live path's config-driven parts, rebuilt for a replay without touching deployment data.

Why: ``spitwall replay`` promises "what the proxy would have done". The scoring engine and
policy come from config the same way in both, but the composition root (``spitwall.compose``)
and the proxy core wire more around them, and each piece changes decisions:

=========================================  ==============================================
live path                                  replay
=========================================  ==============================================
``[proxy.trunks]`` → ``InviteFacts.trunk``  the same table (``compile_trunk_names``) over
(``proxy.core`` → ``build.invite_facts``)   each INVITE's source address
rate limiter before parsing (shed = drop    :func:`proxy.ratelimit.limiter_for` over every
or 503, never screened)                     captured request, in packet time
signing trunks: an INVITE without Identity  :class:`RecordingSigning` (the production
from one is outbound: signed, not scored,   ``OutboundSigning``; with ``dev_pki`` and no
its callee becomes known to the caller      ``signing_key`` an ephemeral key stands in for
                                            the dev PKI's: the same decision, no files)
challenge pass tokens (``X-Spitwall-Pass``)  checked with the configured secret file when
                                            it exists (read only, never created)
``sw-*`` Request-URI parameters stripped    the same ``strip_divert_params``
``proxy.limits`` (message size, headers,    the same limits when reading the capture: a
line length): 400/513, not screened         message over them is a problem, not a call
monitor mode, per-user settings, lists      the engine and policy from config and the
                                            (copied) store, unchanged
=========================================  ==============================================

Not modelled: routing (a call with no route is answered 404 by the proxy before screening;
replay screens it), overload shedding (``max_transactions``, event-loop lag), screening
timeouts, what the challenge UA reports (pass/fail, remembered passes, voicemail) for a
call it would have taken. The rate limiter is the server's own (``limiter_for``), so a
flooding ``pbx`` trunk is shed here as it is there.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from attestation.config import AttestationConfig
from attestation.sign import Signer, SigningError, signer_from_config
from challenge.config import resolve_paths
from challenge.passtoken import PassClaims, PassVerifier
from proxy.pipeline import PassCheck
from proxy.screen import InviteFacts
from proxy.signing import NotSigned, OutboundSigning, Signed, compile_trunks

from ..config import SpitwallConfig
from ..settings import ConfigError

DEV_X5U = "https://replay.invalid/dev-pki/sp.pem"
"""x5u of the stand-in signer for ``dev_pki`` (the Identity never leaves the replay)."""


class RecordingSigning(OutboundSigning):
    """The production STI-AS step, remembering its last result for the report."""

    last: Signed | NotSigned | None = None

    def outbound(self, facts: InviteFacts) -> Signed | NotSigned | None:
        self.last = super().outbound(facts)
        return self.last


def outbound_signing(att: AttestationConfig) -> RecordingSigning | None:
    """What ``spitwall.compose`` would sign with, or None when calls from the signing trunks
    are screened like inbound ones (no trunk sources, or no signer). ConfigError naming
    the key when ``signing_key`` is unusable (the live start fails the same way)."""
    trunks = compile_trunks(att.signing_trunks)
    if not trunks:
        return None
    try:
        signer = signer_from_config(att)
    except SigningError as exc:
        raise ConfigError("attestation.signing_key", str(exc)) from None
    if signer is None and att.dev_pki:
        signer = Signer(ec.generate_private_key(ec.SECP256R1()), DEV_X5U)
    if signer is None:
        return None
    return RecordingSigning(signer, trunks, country_code=att.country_code)


def pass_check(cfg: SpitwallConfig) -> tuple[PassCheck | None, Path]:
    """The challenge pass-token check the proxy runs, from the configured secret file if it
    exists (read only: a replay never creates the deployment's secret), and that path."""
    path = resolve_paths(cfg.challenge, cfg.data_dir).secret_file
    try:
        secret = path.read_text(encoding="ascii").strip().encode("ascii")
    except (OSError, UnicodeError):
        return None, path
    if not secret:
        return None, path
    verifier = PassVerifier(secret)

    def check(token: str, caller: str, callee: str, now: float) -> bool:
        return isinstance(verifier.check(token, caller or None, callee or None, now), PassClaims)

    return check, path
