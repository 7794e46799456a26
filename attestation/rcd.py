"""Rich Call Data (RFC 9795) from a verified PASSporT: what may be shown to the callee."""

from __future__ import annotations

from typing import Any


def rich_call_data(claims: dict[str, Any]) -> dict[str, Any]:
    """RFC 9795 Rich Call Data of a PASSporT that *verified*, reduced to what may be shown.

    Only reached for valid verdicts (RCD from an unverified PASSporT must never reach the
    callee). ``nam`` is required when ``rcd`` is present; ``crn`` (call reason) is a
    top-level claim. Integrity of *referenced* content (``jcl``, ``icn``) is asserted by
    ``rcdi`` digests that need the content fetched: this package opens no sockets for it,
    so such RCD is marked ``integrity: "unverified"`` and a renderer should show ``nam``
    and ``crn`` only. Certificate JWT claim constraints (RFC 8226 §8, RFC 9118) are not
    evaluated. A malformed ``rcd`` is reported, never shown."""
    rcd = claims.get("rcd")
    if not isinstance(rcd, dict) or not isinstance(rcd.get("nam"), str) or not rcd["nam"]:
        return {"valid": False, "problem": "rcd.nam missing or not a non-empty string"}
    out: dict[str, Any] = {"valid": True, "nam": rcd["nam"][:256]}
    crn = claims.get("crn")
    if isinstance(crn, str) and crn:
        out["crn"] = crn[:256]
    referenced = [k for k in ("jcl", "icn") if isinstance(rcd.get(k), str)]
    if referenced:
        out["referenced"] = {k: rcd[k] for k in referenced}
    out["integrity"] = "unverified" if referenced or "jcd" in rcd else "signed"
    if "rcdi" in claims and not isinstance(claims["rcdi"], dict):
        return {"valid": False, "problem": "rcdi is not a JSON object"}
    return out
