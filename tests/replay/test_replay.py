"""`spitwall replay` on pcaps built here with scapy: what is read, what is screened, and
what is named when a capture is damaged."""

from __future__ import annotations

import io
import json
import random
import struct
import uuid
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from attestation import pki
from attestation.sign import ShakenClaims, Signer, load_private_key
from spitwall.cli import main
from spitwall.config import load_config
from spitwall.replay import OfflineCertificates, read_sip, replay_capture

from .pcaps import (
    T0,
    Call,
    answered_call,
    from_caller,
    tcp_segments,
    to_caller,
    udp,
    write_pcap,
    write_pcapng,
)

STOPPED = {"challenge", "voicemail", "reject"}


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["replay", *argv])
    return code, out.getvalue()


def jsonl(text: str) -> tuple[list[dict], list[dict], dict]:
    rows = [json.loads(line) for line in text.splitlines()]
    calls = [r for r in rows if r["type"] == "call"]
    problems = [r for r in rows if r["type"] == "problem"]
    (summary,) = [r for r in rows if r["type"] == "summary"]
    return calls, problems, summary


def legit_calls() -> list:
    """Three answered calls over UDP/IPv4 and one over IPv6, from different callers and
    sources, to unrelated callees."""
    packets = []
    callees = ["+16095552000", "+17185553141", "+13125559876"]
    for i, callee in enumerate(callees):
        c = Call(caller=f"+1215555{1000 + i:04d}", callee=callee, src=f"192.0.2.{10 + i}")
        packets += answered_call(c, T0 + 40 * i, talk=90)
    v6 = Call(caller="+14155557123", callee="+12025550175", src="2001:db8::10", dst="2001:db8::1")
    packets += answered_call(v6, T0 + 200, talk=45)
    return packets


def test_valid_calls_udp_ipv4_ipv6(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "ok.pcap", legit_calls())
    code, text = run_cli(str(path), "--format", "jsonl")
    assert code == 0
    calls, problems, summary = jsonl(text)
    assert problems == []
    assert [c["callee"] for c in calls] == [
        "+16095552000",
        "+17185553141",
        "+13125559876",
        "+12025550175",
    ]
    assert all(c["action"] == "forward" and c["outcome"] == "answered" for c in calls)
    assert calls[0]["duration"] == pytest.approx(90.0)
    assert calls[3]["source"] == "[2001:db8::10]:5060"
    assert all(c["verstat"] == "No-TN-Validation" and c["score"] < 25 for c in calls)
    assert calls[0]["time"] == pytest.approx(T0)  # the clock is the packet time
    assert summary["calls"] == 4 and summary["complete"] is True
    assert summary["actions"] == {"forward": 4}
    assert summary["sip_messages"] == 16


def test_text_report_has_lines_and_summary(tmp_path: Path) -> None:
    path = write_pcapng(tmp_path / "ok.pcapng", legit_calls())
    code, text = run_cli(str(path))
    assert code == 0
    assert "(pcapng, 16 packets, 16 SIP messages, 4 calls)" in text
    assert "+12155551000 -> +16095552000" in text
    assert "forward" in text and "answered" in text
    assert "the whole capture was read" in text


def robocall_burst() -> list:
    """A campaign: 40 calls in 4 minutes from one source, a fresh caller ID per call,
    callees dialled in ascending order, answered calls hung up within 3 s."""
    rnd = random.Random(7)
    packets = []
    for i in range(40):
        c = Call(
            caller=f"+1{rnd.choice(['469', '737', '832'])}{rnd.randint(2000000, 9999999)}",
            callee=f"+1609555{3000 + i * 3:04d}",
            src="203.0.113.66",
            sport=5060,
        )
        t = T0 + 6.0 * i
        if i % 3 == 0:
            packets += answered_call(c, t, talk=2.0)
        else:
            packets += [from_caller(c, c.invite(), t), to_caller(c, c.response(480, "Busy"), t + 1)]
    return packets


def test_robocall_burst_is_stopped_after_its_first_calls(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "burst.pcap", legit_calls() + robocall_burst())
    code, text = run_cli(str(path), "--format", "jsonl")
    assert code == 0
    calls, _, summary = jsonl(text)
    burst = [c for c in calls if c["source"] == "203.0.113.66:5060"]
    assert len(burst) == 40
    later = burst[5:]
    stopped = [c for c in later if c["decision"] in STOPPED]
    assert len(stopped) >= 0.9 * len(later), [(c["score"], c["decision"]) for c in later]
    # the reasons name the call pattern, not luck
    signals = {r["signal"] for c in later for r in c["reasons"]}
    assert signals & {"pattern.fanout", "pattern.rate_minute", "pattern.sequential"}
    legit = [c for c in calls if c["source"] != "203.0.113.66:5060"]
    assert all(c["decision"] == "forward" for c in legit)
    assert summary["decisions"].get("forward", 0) >= 4


def test_tcp_invite_split_across_segments(tmp_path: Path) -> None:
    c = Call(caller="+12155558888", callee="+16095550002", transport="TCP", sport=40000)
    data = c.invite()
    packets = tcp_segments(c.src, c.sport, c.dst, c.dport, data, [7, 150, 151, 300], T0)
    items, problems, _, xs = read_sip(write_pcap(tmp_path / "tcp.pcap", packets))
    assert problems == []
    assert len(items) == 1 and xs.tcp_flows == 1
    assert items[0].message.to_bytes() == data
    assert items[0].time == pytest.approx(T0 + 0.005)  # completed by the last segment
    # the same over IPv6, one byte per segment
    v6 = Call(caller="+12155558888", callee="+16095550002", src="2001:db8::7", dst="2001:db8::1")
    data6 = v6.invite()
    cuts = list(range(1, len(data6)))
    packets6 = tcp_segments(v6.src, 40003, v6.dst, 5060, data6, cuts, T0, isn=0xFFFFFFF0)
    items, problems, _, _ = read_sip(write_pcapng(tmp_path / "tcp6.pcapng", packets6))
    assert problems == [] and len(items) == 1  # sequence numbers wrap past 2**32 too
    assert items[0].src == "2001:db8::7" and items[0].message.to_bytes() == data6


def test_tcp_out_of_order_and_retransmitted_segments(tmp_path: Path) -> None:
    calls = [
        Call(caller=f"+1215555{7000 + i}", callee="+16095550002", transport="TCP") for i in range(2)
    ]
    stream = calls[0].invite() + calls[1].invite()  # two messages on one connection
    segs = tcp_segments("192.0.2.50", 40001, "192.0.2.1", 5060, stream, [200, 400, 700], T0)
    syn, s1, s2, s3, s4 = segs
    retrans = s2.copy()
    retrans.time = T0 + 0.05
    for i, p in enumerate((s3, s2, s1, s4)):
        p.time = T0 + 0.01 * (i + 1)
    # no SYN captured either: the start comes from the lowest sequence number seen
    path = write_pcap(tmp_path / "ooo.pcap", [s3, s2, s1, retrans, s4])
    items, problems, _, _ = read_sip(path)
    assert problems == []
    assert [i.message.call_id for i in items] == [calls[0].call_id, calls[1].call_id]
    # and with the SYN, in another order again
    path = write_pcap(tmp_path / "ooo2.pcap", [syn, s4, s2, s3, s1])
    items, problems, _, _ = read_sip(path)
    assert problems == [] and len(items) == 2


def test_tcp_gap_is_named(tmp_path: Path) -> None:
    c = Call(caller="+12155558888", callee="+16095550002", transport="TCP")
    syn, s1, _s2, s3 = tcp_segments(c.src, 40002, c.dst, c.dport, c.invite(), [100, 200], T0)
    items, problems, _, _ = read_sip(write_pcap(tmp_path / "gap.pcap", [syn, s1, s3]))
    assert items == []
    (p,) = problems
    assert p.reason == "tcp_gap" and p.index == 3
    assert "100 bytes missing before packet 3" in p.detail


def test_truncated_file_reports_what_was_read(tmp_path: Path) -> None:
    packets = legit_calls()
    full = write_pcap(tmp_path / "full.pcap", packets)
    data = full.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[:-40])  # the last record (a BYE) loses its end
    code, text = run_cli(str(cut), "--format", "jsonl")
    assert code == 1
    calls, problems, summary = jsonl(text)
    assert len(calls) == 4 and summary["complete"] is False
    assert calls[3]["outcome"] == "answered" and calls[3]["duration"] is None
    (p,) = problems
    assert p["reason"] == "truncated_record" and p["packet"] == 16
    # cut inside a record header: the record index and its offset are named
    cut.write_bytes(data[: len(data) - len(packets[-1]) - 16 + 5])
    code, text = run_cli(str(cut))
    assert code == 1
    assert "packet 16: truncated_record: the file ends inside record 16" in text


def test_snapped_packet_is_named(tmp_path: Path) -> None:
    """A record captured with a small snaplen (caplen < wire length)."""
    c = Call(caller="+12155551234", callee="+16095550003")
    frame = bytes(from_caller(c, c.invite(), T0))
    head = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 200, 1)
    rec = struct.pack("<IIII", int(T0), 0, 200, len(frame)) + frame[:200]
    path = tmp_path / "snap.pcap"
    path.write_bytes(head + rec)
    items, problems, _, _ = read_sip(path)
    assert items == []
    assert [(p.index, p.reason) for p in problems] == [(1, "truncated_packet")]


def test_garbage_and_empty_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"GET / HTTP/1.1\r\n" + bytes(range(256)) * 10)
    code, text = run_cli(str(junk), "--format", "jsonl")
    assert code == 1
    calls, problems, summary = jsonl(text)
    assert calls == [] and summary["calls"] == 0
    assert problems[0]["reason"] == "not_a_capture" and problems[0]["packet"] is None
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    code, text = run_cli(str(empty))
    assert code == 1 and "empty_file" in text
    assert run_cli(str(tmp_path / "missing.pcap"))[0] == 2
    folder = tmp_path / "folder.pcap"
    folder.mkdir()
    code, text = run_cli(str(folder))
    assert code == 1 and "cannot_open" in text and "Is a directory" in text


def test_non_sip_and_malformed_sip(tmp_path: Path) -> None:
    c = Call(caller="+12155551234", callee="+16095550003")
    bad = c.invite().replace(b"Call-ID:", b"Call-Idx:")
    packets = [
        udp("192.0.2.9", 53, "192.0.2.1", 5353, b"\x12\x34\x01\x00" + b"\x00" * 20, T0),
        udp("192.0.2.9", 4000, "192.0.2.1", 4002, b"\x80\x00" + b"\x00" * 170, T0 + 1),
        from_caller(c, bad, T0 + 2),
        from_caller(c, b"\r\n\r\n", T0 + 3),  # keep-alive
    ]
    items, problems, _, xs = read_sip(write_pcap(tmp_path / "mixed.pcap", packets))
    assert items == [] and xs.non_sip_datagrams == 2
    assert [(p.index, p.reason) for p in problems] == [(3, "sip_parse_error")]
    assert "Missing Call-ID" in problems[0].detail


def test_cancel_and_607_are_outcomes(tmp_path: Path) -> None:
    a = Call(caller="+12155551111", callee="+16095550004")
    b = Call(caller="+12155552222", callee="+17185550005", src="192.0.2.77")
    packets = [
        from_caller(a, a.invite(), T0),
        from_caller(a, a.invite(), T0 + 0.5),  # retransmission: not screened twice
        from_caller(a, a.cancel(), T0 + 2),
        to_caller(a, a.response(487, "Request Terminated"), T0 + 2.1),
        from_caller(b, b.invite(), T0 + 5),
        to_caller(b, b.response(607, "Unwanted"), T0 + 9),
    ]
    code, text = run_cli(str(write_pcap(tmp_path / "o.pcap", packets)), "--format", "jsonl")
    calls, _, _ = jsonl(text)
    assert [c["outcome"] for c in calls] == ["cancelled", "failed:607"]
    assert code == 0


def _signed_capture(tmp_path: Path) -> tuple[Path, pki.PkiManifest]:
    m = pki.init_pki(tmp_path / "pki", "1234", now=T0 - 3600, base_url="https://cr.example.net")
    signer = Signer(load_private_key(Path(m.leaf_key).read_bytes()), m.x5u_url)
    c = Call(caller="+12155551234", callee="+16095550009")
    claims = ShakenClaims("12155551234", ("16095550009",), "A", str(uuid.uuid4()), int(T0))
    c.identity = signer.identity(claims)
    return write_pcap(tmp_path / "signed.pcap", answered_call(c, T0, talk=30)), m


def test_signed_call_verified_offline_from_cert_dir(tmp_path: Path) -> None:
    path, m = _signed_capture(tmp_path)
    _, text = run_cli(
        str(path),
        "--format",
        "jsonl",
        "--trust-anchors",
        m.trust_anchors,
        "--cert-dir",
        m.directory,
    )
    (call,), _, summary = jsonl(text)
    assert call["verstat"] == "TN-Validation-Passed" and call["attest"] == "A"
    assert any(r["signal"] == "shaken.attest_a" for r in call["reasons"])
    assert summary["attestation"] == {"verified A": 1}
    # without the chain: honest x5u_fetch_failed, and the report says what to do
    _code, text = run_cli(str(path), "--trust-anchors", m.trust_anchors)
    assert "x5u_fetch_failed" in text and "--cert-dir" in text


async def test_replay_api_learns_in_capture_order(tmp_path: Path) -> None:
    """The 607s answered to a caller count against its next call (feedback in order)."""
    packets = []
    for i in range(6):
        c = Call(
            caller="+12155557199",
            callee=f"+1{[609, 718, 312, 415, 202, 646][i]}5550{i}00",
            src="198.51.100.7",
        )
        t = T0 + 900 * i
        packets += [from_caller(c, c.invite(), t), to_caller(c, c.response(607, "Unwanted"), t + 3)]
    path = write_pcap(tmp_path / "607.pcap", packets)
    result, summary = await replay_capture(path, load_config(None), OfflineCertificates([]))
    scores = [c.score or 0.0 for c in result.calls]
    assert scores[-1] > scores[0]
    assert any(
        r["signal"].startswith("feedback") or r["signal"].startswith("source")
        for r in result.calls[-1].reasons
    )
    assert summary.outcome_by_action


async def _seed_store(path: Path) -> None:
    from reputation.lists import Invalid, ListKind, ListScope, NewListEntry, parse_pattern
    from reputation.store import Store

    store = Store.open(path)
    try:
        made = await store.add_user("alice", tns=["+16095550042"])
        assert isinstance(made, tuple)
        pat = parse_pattern("+12155557777")
        assert not isinstance(pat, Invalid)
        entry = NewListEntry(ListScope.USER, made[0].id, ListKind.BLOCK, pat)
        await store.add_entries([entry])
    finally:
        await store.aclose()


def test_store_copy_brings_users_and_lists(tmp_path: Path) -> None:
    """--store: the callee's own block list decides, and the original file is untouched."""
    import asyncio

    db = tmp_path / "reputation.sqlite3"
    asyncio.run(_seed_store(db))
    before = db.read_bytes()
    c = Call(caller="+12155557777", callee="+16095550042")
    path = write_pcap(tmp_path / "blocked.pcap", [from_caller(c, c.invite(), T0)])
    code, text = run_cli(str(path), "--format", "jsonl", "--store", str(db))
    (call,), _, _ = jsonl(text)
    assert code == 0
    assert call["decision"] == "reject" and call["code"] == 607
    assert call["reasons"][0]["signal"] == "list.user_block"
    assert db.read_bytes() == before
    # without the store the same call is an ordinary one
    _, text = run_cli(str(path), "--format", "jsonl")
    (call,), _, _ = jsonl(text)
    assert call["decision"] == "forward"
