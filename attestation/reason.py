"""The SIP ``Reason`` header values a STI-VS sends upstream when a call continues despite
an Identity failure (ATIS-1000074 §5.3.2 continue-with-reason; RFC 9410 ``STIR`` protocol).

Why separate from the verifier: the proxy renders these into provisional and final
responses long after verification, from the Verdict alone (it carries the failing
PASSporT and the per-header failures in ``details``).
"""

from __future__ import annotations

from typing import Literal

from .model import Verdict


def reason_header(verdict: Verdict, form: Literal["sip", "stir"] = "sip") -> str | None:
    """The ``Reason`` header value for continue-with-reason, or None when nothing failed.

    ``sip``: ``SIP ;cause=438 ;text="Invalid Identity Header"`` (ATIS-1000074 §5.3.2);
    ``stir``: RFC 9410 ``STIR ;cause=438 ;text="…" ;ppi="..<signature>"``, the ``ppi``
    naming the failing PASSporT by its compact form.
    """
    if verdict.sip_code is None or verdict.valid:
        return None
    token = verdict.details.get("failed_token")
    ppi = None
    if form == "stir" and isinstance(token, str) and token.count(".") == 2:
        ppi = ".." + token.rsplit(".", 1)[1]
    return _reason_value(
        "STIR" if form == "stir" else "SIP", verdict.sip_code, verdict.sip_text or "", ppi
    )


def stir_reason_headers(verdict: Verdict) -> list[str]:
    """RFC 9410 §4 (with RFC 9366 multiple values): one ``Reason: STIR`` value per Identity
    header that failed, each naming its PASSporT by ``ppi`` — also when the call as a whole
    verified through another Identity header. Empty when no value failed."""
    out: list[str] = []
    for f in verdict.details.get("failures", ()):
        code = f.get("sip_code")
        if isinstance(code, int) and 400 <= code < 500:
            out.append(_reason_value("STIR", code, str(f.get("sip_text") or ""), f.get("ppi")))
    return out


def _reason_value(proto: str, code: int, text: str, ppi: str | None) -> str:
    text = text.replace("\\", "").replace('"', "'")
    value = f'{proto} ;cause={code} ;text="{text}"'
    if ppi:
        value += f' ;ppi="{ppi}"'
    return value
