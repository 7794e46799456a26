"""RFC 8946 div PASSporTs: retargeted calls verify through a valid diversion chain only.

Scenario: A (12155551212) calls B (12155551213, the SHAKEN ``dest``); B's provider
forwards to C and adds a div PASSporT ``{orig: A, dest: [C], div: B}`` signed with its own
certificate; further hops may forward again (C → D …) up to ``div_max_depth``.
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from attestation.model import Verstat
from attestation.sign import Signer

from .stivs import DEST, KEY, NOW, ORIG, OTHER_KEY, X5U, StaticCerts, call, shaken, verifier

X5U_FWD = "https://cr.forwarder.example/fwd.pem"
FWD_KEY = ec.generate_private_key(ec.SECP256R1())
FWD = Signer(FWD_KEY, X5U_FWD)
C, D, E = "12155550003", "12155550004", "12155550005"


def certs() -> StaticCerts:
    return StaticCerts({X5U: KEY.public_key(), X5U_FWD: FWD_KEY.public_key()})


def div(dest: str, frm: str, *, orig: str = ORIG, iat: float = NOW, signer: Signer = FWD) -> str:
    return signer.div_identity(orig, (dest,), frm, int(iat))


def retargeted(*values: str, target: str = C, to: str | None = None, **kw: Any) -> Any:
    """The INVITE after retargeting: R-URI = new target; To also rewritten unless given."""
    to_uri = f"sip:+{to or target}@x"
    return call(*values, to_uri=to_uri, request_uri=f"sip:+{target}@10.0.0.9", **kw)


async def test_one_hop_diversion_passes_as_diverted() -> None:
    src = certs()
    v = await verifier(src).verify(retargeted(shaken(), div(C, DEST)))
    assert v.verstat is Verstat.PASSED and v.diverted and v.attest == "A"
    assert v.details["div"] == [{"div": DEST, "dest": [C], "x5u": X5U_FWD}]
    assert {x for x, _ in src.calls} == {X5U, X5U_FWD}  # both signatures checked


async def test_to_unchanged_and_rurI_retargeted_uses_the_div() -> None:
    v = await verifier(certs()).verify(retargeted(shaken(), div(C, DEST), to=DEST))
    assert v.valid and v.diverted


async def test_chain_of_five_passes_and_six_fails() -> None:
    tns = [DEST, C, D, E, "12155550006", "12155550007", "12155550008"]
    hops = [div(tns[i + 1], tns[i]) for i in range(6)]
    five = await verifier(certs()).verify(retargeted(shaken(), *hops[:5], target=tns[5]))
    assert five.valid and five.diverted and len(five.details["div"]) == 5
    six = await verifier(certs()).verify(retargeted(shaken(), *hops, target=tns[6]))
    assert (six.reason, six.sip_code) == ("div_invalid", 438)
    shallow = await verifier(certs(), div_max_depth=2).verify(
        retargeted(shaken(), *hops[:3], target=tns[3])
    )
    assert shallow.reason == "div_invalid"


async def test_headers_in_any_order() -> None:
    v = await verifier(certs()).verify(retargeted(div(D, C), shaken(), div(C, DEST), target=D))
    assert v.valid and [d["div"] for d in v.details["div"]] == [DEST, C]


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        # no div at all: plain dest mismatch
        ((shaken(),), "dest_mismatch"),
        # div.tn must be a TN the SHAKEN PASSporT was addressed to
        ((shaken(), div(C, "12155559999")), "div_invalid"),
        # orig must be identical to the SHAKEN orig
        ((shaken(), div(C, DEST, orig="12125550000")), "div_invalid"),
        # the div dest must be the new Request-URI target
        ((shaken(), div(D, DEST)), "div_invalid"),
        # the div signature must verify (forged with another key under the same x5u)
        ((shaken(), div(C, DEST, signer=Signer(OTHER_KEY, X5U_FWD))), "div_invalid"),
        # the div PASSporT must be fresh itself
        ((shaken(), div(C, DEST, iat=NOW - 120)), "div_invalid"),
        # the div x5u must yield a certificate
        (
            (shaken(), div(C, DEST, signer=Signer(FWD_KEY, "https://gone.example/x.pem"))),
            "div_invalid",
        ),
    ],
)
async def test_bad_diversions(values: tuple[str, ...], reason: str) -> None:
    v = await verifier(certs()).verify(retargeted(*values))
    assert v.verstat is Verstat.FAILED and (v.reason, v.sip_code) == (reason, 438), v.details
    assert not v.diverted


async def test_bad_div_with_to_still_bound_passes_undiverted() -> None:
    forged = div(C, DEST, signer=Signer(OTHER_KEY, X5U_FWD))
    v = await verifier(certs()).verify(retargeted(shaken(), forged, to=DEST))
    assert v.valid and not v.diverted and v.details["div_failures"]


async def test_bad_link_is_skipped_for_a_good_one() -> None:
    forged = div(C, DEST, signer=Signer(OTHER_KEY, X5U_FWD))
    v = await verifier(certs()).verify(retargeted(shaken(), forged, div(C, DEST)))
    assert v.valid and v.diverted


async def test_div_alone_is_not_an_attestation() -> None:
    v = await verifier(certs()).verify(retargeted(div(C, DEST)))
    assert v.verstat is Verstat.NONE and v.reason == "no_supported_ppt"


async def test_compact_div_is_refused() -> None:
    token = div(C, DEST).split(";", 1)[0]
    compact = "..{}".format(token.rsplit(".", 1)[1]) + f";info=<{X5U_FWD}>;ppt=div"
    v = await verifier(certs()).verify(retargeted(shaken(), compact))
    assert v.reason == "div_invalid"
    assert any(f["reason"] == "compact_form" for f in v.details["failures"])
