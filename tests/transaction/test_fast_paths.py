"""The shortcuts of the engine answer like the general code they skip."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from proxy.sip import StatusCode
from proxy.transaction import TimerConfig
from proxy.transaction.events import ResponseReceived, ResponseSent
from proxy.transaction.machine import _RECEIVED, _SENT, Ignored, _status_class, classify
from proxy.transaction.table import ClientKey, ServerKey, client_key, server_key
from proxy.transaction.timers import Timer

STATUSES = st.one_of(
    st.integers(-5, 800), st.booleans(), st.sampled_from(list(StatusCode)), st.just(200.0)
)


@given(STATUSES, st.booleans())
def test_classify_matches_the_status_classes(status: object, received: bool) -> None:
    inp = (ResponseReceived if received else ResponseSent)(status, b"")  # type: ignore[arg-type]
    cls = _status_class(status)  # type: ignore[arg-type]
    got = classify(inp)
    if cls is None:
        assert isinstance(got, Ignored)
    else:
        assert got is (_RECEIVED if received else _SENT)[cls]


@given(
    st.floats(0.001, 10),
    st.floats(0, 10),
    st.floats(0, 40),
    st.floats(0, 40),
    st.booleans(),
)
def test_kept_durations_are_the_computed_ones(
    t1: float, extra: float, t4: float, d: float, reliable: bool
) -> None:
    cfg = TimerConfig(t1=t1, t2=t1 + extra, t4=t4, timer_d=d)
    for timer in Timer:
        assert cfg.duration(timer, reliable=reliable) == cfg._duration(timer, reliable)


def test_keys_are_values_that_never_collide() -> None:
    assert client_key("z9hG4bK1", "INVITE") == ClientKey("z9hG4bK1", "INVITE")
    assert hash(client_key("z9hG4bK1", "INVITE")) == hash(ClientKey("z9hG4bK1", "INVITE"))
    assert server_key("z9hG4bK1", "H:5060", "ACK") == ServerKey("z9hG4bK1", "h:5060", "INVITE")
    assert client_key("z9hG4bK1", "INVITE") != server_key("z9hG4bK1", "", "INVITE")
