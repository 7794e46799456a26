"""The benchmark's metrics on a mini scenario small enough to check by hand."""

from __future__ import annotations

import pytest

from bench.traffic.metrics import CallResult, calls_to_detect, compute, percentile


def calls() -> list[CallResult]:
    """10 human calls (1 rejected, 1 challenged, 1 tagged), 4 wanted (1 voicemail),
    and two campaigns: A rotating (8 calls, stopped from call 3 on except call 7) and
    B pool (3 calls, never stopped)."""
    out: list[CallResult] = []
    human = ["forward"] * 7 + ["reject", "challenge", "forward_tagged"]
    for i, d in enumerate(human):
        out.append(CallResult(i, "human", d, latency_ms=float(i + 1)))
    for i, d in enumerate(["forward", "forward", "forward", "voicemail"]):
        out.append(CallResult(100 + i, "wanted", d, latency_ms=1.0))
    a = ["forward", "forward", "challenge", "reject", "reject", "voicemail", "forward", "reject"]
    for i, d in enumerate(a):
        out.append(CallResult(200 + i, "robocall", d, campaign=1, seq=i + 1, cli_policy="fresh"))
    for i in range(3):
        out.append(
            CallResult(300 + i, "robocall", "forward", campaign=2, seq=i + 1, cli_policy="pool")
        )
    return out


def test_rates_by_hand() -> None:
    m = compute(calls())
    assert m.by_kind == {"human": 10, "wanted": 4, "robocall": 11}
    # robocalls: rejected 3 (A4, A5, A8), stopped 5 (+A3 challenge, A6 voicemail)
    assert m.block_recall == pytest.approx(3 / 11)
    assert m.block_precision == pytest.approx(3 / 4)  # plus one human reject
    assert m.stop_recall == pytest.approx(5 / 11)
    assert m.human_block == pytest.approx(0.1)
    assert m.human_divert == pytest.approx(0.1)
    assert m.human_tagged == pytest.approx(0.1)
    assert m.wanted_block == 0.0 and m.wanted_divert == pytest.approx(0.25)


def test_stop_precision_counts_every_stopped_call() -> None:
    m = compute(calls())
    stopped = 5 + 2 + 1  # robocalls, humans (reject + challenge), wanted (voicemail)
    assert m.stop_precision == pytest.approx(5 / stopped)


def test_campaign_detection_by_hand() -> None:
    m = compute(calls())
    a, b = m.campaigns
    # A: from call 3, 5 of the 6 calls (3..8) are stopped = 83 % < 90 %; from call 4:
    # 4 of 5 = 80 %; from 8: 1 of 1 → k = 8
    assert a.calls_to_detect == 8
    assert a.after5 == pytest.approx(2 / 3)  # calls 6, 7, 8: voicemail, forward, reject
    assert b.calls_to_detect is None and b.after5 is None
    assert m.after5 == {"all": pytest.approx(2 / 3), "fresh": pytest.approx(2 / 3)}
    assert m.undetected == 1 and m.detect_median == 8
    assert m.targets()["rotating_after5>=90%"] is False
    assert m.targets()["wrongful_block_human<=0.01%"] is False


def test_calls_to_detect_and_percentile() -> None:
    assert calls_to_detect(["reject"] * 4) == 1
    assert calls_to_detect(["forward"] * 3 + ["challenge"] * 20) == 4
    # 9 of 10 stopped from the first stopped call on is enough (90 %)
    assert calls_to_detect(["reject"] * 5 + ["forward"] + ["reject"] * 4) == 1
    assert calls_to_detect(["forward"] * 3) is None
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 0.99) == 99.0
    assert percentile([], 0.5) == 0.0
    m = compute(calls())
    assert m.latency_p50 == 1.0  # 17 of the 25 latencies are 0 or 1 ms
