"""``[attestation] dev_pki = true`` (what ``make run`` uses): the composed spitwall makes a
test STI PKI under ``<data_dir>/pki`` once, serves it over HTTPS on 127.0.0.1, trusts its
root, and signs with its leaf when no ``signing_key`` is configured.

What a newcomer does: start spitwall, sign a PASSporT with ``spitwall sign --key
<data_dir>/pki/sp.key --x5u https://127.0.0.1:<port>/sp.pem`` and call through it with
SIPp: the callee sees ``verstat=TN-Validation-Passed``. After a restart the same PKI is
served (tokens and certificates handed out before still work); a PKI that would run out,
or was made for another port, is replaced.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from attestation.model import IdentityInput
from attestation.pki import PkiManifest, init_pki
from spitwall.compose import Spitwall, _dev_pki_problem
from spitwall.config import load_config
from tests.sipp.harness import Sipp, free_port, scenario

from .test_screening_e2e import ACK_BYE

HERE = Path(__file__).resolve().parent
CALLEE = "12155550123"
CALLER = "+12155550100"


def _config(data_dir: Path, pki_port: int, uas_port: int, **extra: Any) -> Any:
    return load_config(
        None,
        {
            "data_dir": str(data_dir),
            "proxy.listen": ["udp:127.0.0.1:0"],
            "proxy.default_next_hop": f"sip:127.0.0.1:{uas_port}",
            "proxy.timers.t1": 0.1,
            "proxy.timers.t2": 0.4,
            "proxy.timers.t4": 0.5,
            "http.listen": "",
            "attestation.dev_pki": True,
            "attestation.dev_pki_port": pki_port,
            **extra,
        },
    )


class Running:
    def __init__(self, sw: Spitwall, proxy: str) -> None:
        self.sw, self.proxy = sw, proxy


async def _start(cfg: Any) -> Running:
    sw = Spitwall(cfg)
    bound = await sw.start(http=False)
    udp = next(b for b in bound if b.transport == "udp")
    return Running(sw, f"127.0.0.1:{udp.port}")


@pytest.fixture
def ports() -> tuple[int, int]:
    return free_port(), free_port()


async def _spitwall_sign(pki_dir: Path, pki_port: int, orig: str = CALLER) -> str:
    """The documented ``spitwall sign`` example, against the dev PKI."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "spitwall",
        "sign",
        "--key",
        str(pki_dir / "sp.key"),
        "--x5u",
        f"https://127.0.0.1:{pki_port}/sp.pem",
        "--orig",
        orig,
        "--dest",
        CALLEE,
        "--attest",
        "A",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode().strip()


async def _call(r: Running, uas_port: int, identity: str, trace: Path) -> str:
    """One SIPp call carrying ``identity``; the INVITE the callee received."""
    uas = await Sipp.start(
        HERE / "uas_trace.xml", port=uas_port, extra=("-trace_msg", "-message_file", str(trace))
    )
    await asyncio.sleep(0.2)
    uac_xml = scenario(
        "../integration/uac_expect.xml",
        caller=CALLER,
        code=200,
        identity_header=f"Identity: {identity}",
        after=ACK_BYE.replace("@CALLER@", CALLER),
    )
    uac = await Sipp.start(uac_xml, port=free_port(), target=r.proxy, service=CALLEE)
    res = await uac.wait(30)
    assert res.ok, res.why
    got = await uas.wait(30)
    assert got.ok, got.why
    text = trace.read_text(errors="replace")
    return text[text.index("INVITE sip:") :].split("\n\n", 1)[0]


async def test_dev_pki_signed_call_verifies_and_restart_reuses_the_pki(
    tmp_path: Path, ports: tuple[int, int]
) -> None:
    pki_port, uas_port = ports
    data = tmp_path / "data"
    pki_dir = data / "pki"
    cfg = _config(data, pki_port, uas_port)
    r = await _start(cfg)
    try:
        m = PkiManifest.load(pki_dir)
        assert m.x5u_url == f"https://127.0.0.1:{pki_port}/sp.pem"
        first_root = Path(m.root_cert).read_bytes()
        identity = await _spitwall_sign(pki_dir, pki_port)
        invite = await _call(r, uas_port, identity, tmp_path / "uas-1.log")
        assert "verstat=TN-Validation-Passed" in invite, invite
    finally:
        await r.sw.stop(0.2)

    r = await _start(cfg)  # restart: same data_dir, same port
    try:
        again = PkiManifest.load(pki_dir)
        assert again == m and Path(again.root_cert).read_bytes() == first_root
        identity = await _spitwall_sign(pki_dir, pki_port)
        invite = await _call(r, uas_port, identity, tmp_path / "uas-2.log")
        assert "verstat=TN-Validation-Passed" in invite, invite
    finally:
        await r.sw.stop(0.2)


async def test_proxy_signs_with_the_dev_pki_without_a_signing_key(
    tmp_path: Path, ports: tuple[int, int]
) -> None:
    pki_port, uas_port = ports
    trunks = {"lab": {"kind": "customer", "owned_tns": ["1215555*"], "sources": ["127.0.0.1"]}}
    r = await _start(
        _config(tmp_path / "data", pki_port, uas_port, **{"attestation.signing_trunks": trunks})
    )
    try:
        screener = r.sw.screener
        assert screener is not None and screener.signing is not None
        assert screener.signing.signer.x5u == f"https://127.0.0.1:{pki_port}/sp.pem"
        from proxy.screen import InviteFacts

        facts = InviteFacts(
            call_id="dev-1",
            request_uri=f"sip:{CALLEE}@127.0.0.1",
            from_uri=f"sip:{CALLER}@127.0.0.1",
            to_uri=f"sip:{CALLEE}@127.0.0.1",
            time=time.time(),
            source_ip="127.0.0.1",
            source_port=5060,
            transport="udp",
        )
        action = await screener.screen(facts)
        (name, value), *_ = action.headers
        assert name == "Identity"
        assert screener.verifier is not None  # the dev root is trusted: it verifies here
        v = await screener.verifier.verify(
            IdentityInput(
                identity_headers=(value,),
                from_uri=facts.from_uri,
                to_uri=facts.to_uri,
                request_uri=facts.request_uri,
                call_id="dev-1-far-end",
                now=facts.time,
            )
        )
        assert v.valid and v.attest == "A" and v.spc == "SPITWALL-DEV", v.details
    finally:
        await r.sw.stop(0.2)


async def test_a_dev_pki_for_another_port_is_replaced(
    tmp_path: Path, ports: tuple[int, int]
) -> None:
    pki_port, uas_port = ports
    data = tmp_path / "data"
    old = init_pki(data / "pki", "SPITWALL-DEV", now=time.time(), base_url="https://127.0.0.1:1")
    r = await _start(_config(data, pki_port, uas_port))
    try:
        new = PkiManifest.load(data / "pki")
        assert new.x5u_url == f"https://127.0.0.1:{pki_port}/sp.pem" != old.x5u_url
        assert r.sw.x5u_server is not None and r.sw.x5u_server.port == pki_port
    finally:
        await r.sw.stop(0.2)


def test_reuse_rules(tmp_path: Path) -> None:
    base = "https://127.0.0.1:8443"
    assert _dev_pki_problem(tmp_path / "none", base) is not None
    init_pki(tmp_path / "fresh", "SPITWALL-DEV", now=time.time(), base_url=base)
    assert _dev_pki_problem(tmp_path / "fresh", base) is None
    assert _dev_pki_problem(tmp_path / "fresh", "https://127.0.0.1:9443") == (f"made for {base}")
    init_pki(tmp_path / "old", "SPITWALL-DEV", now=time.time() - 364.5 * 86400, base_url=base)
    assert _dev_pki_problem(tmp_path / "old", base) == "a certificate expires"
    init_pki(tmp_path / "crl", "SPITWALL-DEV", now=time.time() - 31 * 86400, base_url=base)
    assert _dev_pki_problem(tmp_path / "crl", base) == "the CRL is past its nextUpdate"
    (tmp_path / "fresh" / "sp.key").write_text("garbage")
    assert _dev_pki_problem(tmp_path / "fresh", base) is not None


async def test_an_unusable_signing_key_fails_the_start_and_frees_the_port(
    tmp_path: Path, ports: tuple[int, int]
) -> None:
    from attestation.sign import SigningError

    pki_port, uas_port = ports
    data = tmp_path / "data"
    bad = _config(data, pki_port, uas_port, **{"attestation.signing_key": str(tmp_path / "no.key")})
    with pytest.raises(SigningError, match=r"signing_key .*no\.key"):
        await _start(bad)
    r = await _start(_config(data, pki_port, uas_port))  # the dev x5u port is free again
    try:
        assert r.sw.x5u_server is not None and r.sw.x5u_server.port == pki_port
    finally:
        await r.sw.stop(0.2)
