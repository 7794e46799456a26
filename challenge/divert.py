"""The divert Request-URI (see the package docstring): parse what the proxy sent, and format
it for the composition root. Pure; malformed input becomes a :class:`DivertError` value."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, unquote

Mode = Literal["challenge", "voicemail"]
_TOKEN = re.compile(r"^[A-Za-z0-9\-_.!~*'%+]{1,128}$")
_NUMBER = re.compile(r"^\+?[0-9]{1,20}$")


class DivertError(enum.IntEnum):
    """Why an INVITE is not a usable divert; the value is the SIP status to answer with."""

    NOT_DIVERTED = 404
    BAD_PARAMETER = 400


@dataclass(frozen=True, slots=True)
class Divert:
    callee: str
    decision: str
    mode: Mode
    voicemail: bool | None = None
    caller: str | None = None


@dataclass(frozen=True, slots=True)
class DivertProblem:
    error: DivertError
    detail: str


def _params(uri: str) -> dict[str, str]:
    uri = uri.strip().strip("<>")
    head, _, _headers = uri.partition("?")
    out: dict[str, str] = {}
    for part in head.split(";")[1:]:
        name, _, value = part.partition("=")
        out[name.strip().lower()] = value.strip()
    return out


def parse_divert(request_uri: str) -> Divert | DivertProblem:
    """Read the ``sw-*`` parameters of a Request-URI."""
    if not request_uri.lower().startswith(("sip:", "sips:", "<sip:", "<sips:")):
        return DivertProblem(DivertError.BAD_PARAMETER, f"not a SIP URI: {request_uri[:80]!r}")
    p = _params(request_uri)
    if "sw-callee" not in p and "sw-mode" not in p:
        return DivertProblem(DivertError.NOT_DIVERTED, "no sw-callee/sw-mode: not a divert")
    callee = unquote(p.get("sw-callee", ""))
    if not _NUMBER.match(callee):
        return DivertProblem(DivertError.BAD_PARAMETER, f"sw-callee: not a number: {callee!r}")
    decision = p.get("sw-decision", "")
    if not _TOKEN.match(decision):
        return DivertProblem(DivertError.BAD_PARAMETER, f"sw-decision: bad id {decision!r}")
    mode = p.get("sw-mode", "")
    if mode not in ("challenge", "voicemail"):
        return DivertProblem(DivertError.BAD_PARAMETER, f"sw-mode: unknown mode {mode!r}")
    vm: bool | None = None
    if "sw-vm" in p:
        if p["sw-vm"] not in ("0", "1"):
            return DivertProblem(
                DivertError.BAD_PARAMETER, f"sw-vm: expected 0 or 1, got {p['sw-vm']!r}"
            )
        vm = p["sw-vm"] == "1"
    caller = unquote(p["sw-caller"]) if "sw-caller" in p else None
    if caller is not None and not _TOKEN.match(caller.lstrip("+") or "-"):
        return DivertProblem(DivertError.BAD_PARAMETER, f"sw-caller: bad value {caller!r}")
    return Divert(callee, decision, mode, vm, caller)  # type: ignore[arg-type]


def format_divert(
    hostport: str,
    callee: str,
    decision: str,
    mode: Mode,
    voicemail: bool | None = None,
    caller: str | None = None,
) -> str:
    """The URI the proxy retargets a diverted INVITE to."""
    uri = (
        f"sip:challenge@{hostport};sw-callee={quote(callee, safe='')}"
        f";sw-decision={quote(decision, safe='')};sw-mode={mode}"
    )
    if voicemail is not None:
        uri += f";sw-vm={int(voicemail)}"
    if caller:
        uri += f";sw-caller={quote(caller, safe='')}"
    return uri


_USER = re.compile(r"<?\s*(?:sips?|tel):([^@;>?\s]+)", re.IGNORECASE)


def uri_user(value: str) -> str | None:
    """The user part of a name-addr/addr-spec header value (From, PAI), unescaped."""
    m = _USER.search(value)
    return unquote(m.group(1)) if m else None
