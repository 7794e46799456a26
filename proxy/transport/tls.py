"""TLS contexts for SIP over TLS (RFC 3261 §26.2.1; RFC 5630 for the sips: nuances).

Server side presents ``proxy.tls.cert_file``/``key_file``; client side (outgoing TLS to a
next hop) presents the same certificate and verifies the peer only when ``verify_peer`` is
set with a CA file — trunk peers in test beds commonly use self-signed certificates.
"""

from __future__ import annotations

import ssl

from ..config import TlsConfig


class TlsSetupError(ValueError):
    """The certificate or key cannot be loaded; the message names the file."""


def server_context(cfg: TlsConfig) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    _load(ctx, cfg)
    if cfg.verify_peer:
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_context(cfg: TlsConfig) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cfg.cert_file is not None and cfg.key_file is not None:
        _load(ctx, cfg)
    if cfg.verify_peer and cfg.ca_file is not None:
        ctx.load_verify_locations(cafile=str(cfg.ca_file))
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _load(ctx: ssl.SSLContext, cfg: TlsConfig) -> None:
    if cfg.cert_file is None or cfg.key_file is None:
        raise TlsSetupError("proxy.tls.cert_file and proxy.tls.key_file are required for TLS")
    try:
        ctx.load_cert_chain(str(cfg.cert_file), str(cfg.key_file))
    except (OSError, ssl.SSLError) as exc:
        raise TlsSetupError(
            f"proxy.tls.cert_file/key_file: cannot load {cfg.cert_file}: {exc}"
        ) from None
    if cfg.ca_file is not None:
        try:
            ctx.load_verify_locations(cafile=str(cfg.ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise TlsSetupError(f"proxy.tls.ca_file: cannot load {cfg.ca_file}: {exc}") from None
