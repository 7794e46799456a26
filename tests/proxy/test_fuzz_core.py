"""Property: whatever bytes arrive, in whatever order, the core never raises.

Mutations of valid requests and responses (bytes replaced, deleted, duplicated) are fed
to one core together with well-formed traffic and virtual time; the core may answer,
forward or drop, but an exception would be a crash path in production.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.screen import Divert, Forward, Reject

from .sim import CALLER, UAS, Sim, invite

BASE = [
    invite(),
    invite(method="CANCEL"),
    invite(method="ACK", to_tag="b1", routes="Route: <sip:10.0.0.1:5060;lr>\n"),
    invite(method="BYE", to_tag="b1", cseq=2, routes="Route: <sip:10.0.0.1:5060;lr>\n"),
    invite(method="OPTIONS", ruri="sip:10.0.0.1:5060"),
    "SIP/2.0 180 Ringing\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKswabc\n"
    "Via: SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bK-c1\nFrom: <sip:a@b>;tag=a1\n"
    "To: <sip:c@d>;tag=b1\nCall-ID: call-1@caller\nCSeq: 1 INVITE\nContent-Length: 0\n\n",
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(BASE)).replace("\n", "\r\n").encode())
    for _ in range(draw(st.integers(0, 6))):
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["replace", "delete", "dup", "insert"]))
        if op == "replace":
            data[i] = draw(st.sampled_from(b';:,<>" \t\r\n@=%0a9Z\x00\xff'))
        elif op == "delete":
            del data[i : i + draw(st.integers(1, 12))]
        elif op == "dup":
            data[i:i] = data[i : i + draw(st.integers(1, 40))]
        else:
            data[i:i] = draw(st.sampled_from([b"z9hG4bKsw", b"10.0.0.1:5060", b";lr", b",", b"0"]))
    return bytes(data)


ACTIONS = [
    Forward(),
    Forward(verstat="TN-Validation-Passed"),
    Reject(607, "Unwanted"),
    Divert("sip:ivr@10.0.0.9"),
    Divert("not a uri"),
    None,
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(mutated(), st.booleans(), st.floats(0, 40)), min_size=1, max_size=8),
    st.sampled_from(ACTIONS),
)
def test_core_never_raises(messages: list[tuple[bytes, bool, float]], action) -> None:
    sim = Sim()
    for data, from_uas, dt in messages:
        sim.feed(data, UAS if from_uas else CALLER)
        while sim.screens:
            sim.core.screened(sim.screens.pop().key, action, sim.now)
            sim._collect()
        sim.advance(dt)
