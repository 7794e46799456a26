"""RFC 4475 torture messages fed to the proxy core: what a proxy sends back (or on).

The parser's own verdicts live in tests/sip/test_rfc4475.py; here we check the proxy's
reaction, as RFC 4475 describes it for a proxy: valid requests are forwarded (INVITEs after
100 Trying and screening), invalid requests with a usable Via get the parser's status and
reason phrase, invalid ones without are dropped and counted, responses that match no
transaction are dropped, and the semantic cases get 416 / 420 / 483.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.screen import Forward
from proxy.sip import Request, SipParseError, error_response, parse_message

from .sim import Sim

MESSAGES = Path(__file__).resolve().parents[1] / "data" / "rfc4475" / "messages"
FILES = sorted(p.name for p in MESSAGES.glob("*.dat"))
# zeromf.dat is an OPTIONS with Max-Forwards 0: RFC 4475 §3.3.11 expects 483 from a proxy
# that would forward it, and RFC 3261 §16.3 item 3 lets the proxy answer an OPTIONS itself
# instead; spitwall answers it (200 with Allow), like the keep-alive pings it serves.
ANSWERED = {"unkscm.dat": 416, "novelsc.dat": 416, "bext01.dat": 420, "zeromf.dat": 200}


def _react(name: str) -> tuple[Sim, list]:
    sim = Sim()
    out = sim.feed((MESSAGES / name).read_bytes())
    if sim.screens:
        out += sim.screened(Forward())
    return sim, out


def test_corpus_present() -> None:
    assert len(FILES) == 50


@pytest.mark.parametrize("name", FILES)
def test_proxy_handles_torture_message(name: str) -> None:
    data = (MESSAGES / name).read_bytes()
    sim, out = _react(name)
    try:
        msg = parse_message(data)
    except SipParseError as err:
        reply = error_response(err)
        if reply is None:
            assert out == [], name  # nothing to answer: dropped and counted
            assert sim.drops("unparseable") + sim.drops("bad_response") == 1
        else:
            (o,) = out
            assert (o.msg.status, o.msg.reason) == (err.status, err.reason), name
        return
    if not isinstance(msg, Request):
        assert out == [] and sim.drops("stray_response") == 1, name  # stray response
        return
    if name in ANSWERED:
        (o,) = out
        assert o.msg.status == ANSWERED[name], name
        return
    forwarded = [o for o in out if isinstance(o.msg, Request)]
    assert len(forwarded) == 1, (name, out)
    fwd = forwarded[0].msg
    assert fwd.method == msg.method and fwd.vias[0].branch.startswith("z9hG4bKsw")
    assert fwd.max_forwards == (msg.max_forwards - 1 if msg.max_forwards is not None else 70)
    assert fwd.body == msg.body
