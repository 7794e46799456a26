"""Real SIPp peers: the bridged leg's ``X-Spitwall-Pass`` reaches the screener, not the callee.

The caller is ``tests/sipp/uac_call.xml`` with the pass header added; the callee is
``tests/sipp/uas_call.xml`` whose INVITE check fails the call if any ``X-Spitwall-Pass``
field arrives (SIPp ``check_it_inverse``). A control run sends the same caller straight to
that callee, so the check is shown to bite.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.screen import Action, Forward, InviteFacts
from tests.sipp.harness import HERE, Sipp, free_port, in_process_proxy, run_sipp

pytestmark = [pytest.mark.sipp, pytest.mark.timeout(90)]

TOKEN = "v1.1767225600.c2lnbmVk.abcdef0123456789"
PASS_LINE = f"X-Spitwall-Pass: {TOKEN}"


def _render(name: str, edits: list[tuple[str, str]], out: Path) -> Path:
    """A test-suite scenario with ``edits`` applied (each must match once)."""
    text = (HERE / name).read_text()
    for old, new in edits:
        assert text.count(old) == 1, f"{name} changed: {old!r} not found once"
        text = text.replace(old, new)
    out.write_text(text)
    return out


@pytest.fixture
def scenarios(tmp_path: Path) -> tuple[Path, Path]:
    uac = _render(
        "uac_call.xml",
        [("      User-Agent: sipp-uac\n", f"      User-Agent: sipp-uac\n      {PASS_LINE}\n")],
        tmp_path / "uac_pass.xml",
    )
    uas = _render(
        "uas_call.xml",
        [
            (
                '<recv request="INVITE" crlf="true"/>',
                '<recv request="INVITE" crlf="true"><action>'
                '<ereg regexp="X-Spitwall-Pass" search_in="msg" check_it_inverse="true" '
                'assign_to="leaked"/></action></recv>',
            ),
            ("</scenario>", '<Reference variables="leaked"/>\n</scenario>'),
        ],
        tmp_path / "uas_no_pass.xml",
    )
    return uac, uas


class _Recorder:
    def __init__(self) -> None:
        self.tokens: list[str | None] = []

    async def screen(self, facts: InviteFacts) -> Action:
        self.tokens.append(facts.pass_token)
        return Forward(note="pass test")


async def test_callee_never_sees_the_pass_token_but_the_screener_does(
    scenarios: tuple[Path, Path],
) -> None:
    uac, uas_scen = scenarios
    port = free_port()
    uas = await Sipp.start(uas_scen, port=port)
    screener = _Recorder()
    async with in_process_proxy(
        {"proxy.default_next_hop": f"sip:127.0.0.1:{port}"}, screener=screener
    ) as p:
        res = await run_sipp(uac, target=p.udp)
        uas_res = await uas.wait(30)
    assert res.ok, res.why
    assert uas_res.ok, uas_res.why  # the callee's check found no X-Spitwall-Pass
    assert screener.tokens == [TOKEN]


async def test_control_the_callee_check_fails_a_leaked_token(scenarios: tuple[Path, Path]) -> None:
    uac, uas_scen = scenarios
    port = free_port()
    uas = await Sipp.start(uas_scen, port=port)
    await run_sipp(uac, target=f"127.0.0.1:{port}", timeout=5)
    uas_res = await uas.wait(30)
    assert not uas_res.ok, "the callee scenario did not notice the pass header"
    assert "Regexp matched but should not" in uas_res.why
