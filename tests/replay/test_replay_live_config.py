"""`spitwall replay` honours the live path's config that changes decisions: the trunk table
(``[proxy.trunks]``, its ``kind``), the rate limiter, STI-AS signing trunks, monitor mode,
challenge pass tokens. Each test replays one capture twice and shows the decision move."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from attestation import pki
from challenge.passtoken import mint
from spitwall.config import load_config
from spitwall.replay import OfflineCertificates, replay_capture
from spitwall.settings import ConfigError

from .pcaps import T0, Call, answered_call, from_caller, to_caller, write_pcap
from .test_replay import STOPPED, jsonl, robocall_burst, run_cli

CARRIER = "198.51.100.20"
TRUNK_TOML = """
[proxy.trunks.interconnect]
sources = ["198.51.100.0/24"]
kind = "{kind}"
"""


def carrier_traffic(n: int = 60, gap: float = 5.0) -> list:
    """One interconnect carrying ``n`` unrelated callers to unrelated callees, every call
    answered for a normal length: busy, not suspicious."""
    rnd = random.Random(3)
    packets = []
    for i in range(n):
        c = Call(
            caller=f"+1{rnd.choice(['215', '267', '484', '610'])}555{rnd.randint(1000, 9999)}",
            callee=f"+1{rnd.choice(['609', '856', '732'])}{rnd.randint(2000000, 9999999)}",
            src=CARRIER,
        )
        packets += answered_call(c, T0 + gap * i, talk=rnd.uniform(40, 400))
    return packets


def test_carrier_trunk_changes_the_decision_and_the_report_names_it(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "carrier.pcap", carrier_traffic())
    # without [proxy.trunks]: the interconnect's address looks like one huge caller
    code, text = run_cli(str(path), "--format", "jsonl")
    calls, _, summary = jsonl(text)
    assert code == 0 and len(calls) == 60
    stopped = [c for c in calls if c["decision"] in STOPPED]
    assert len(stopped) >= 40, summary["decisions"]
    assert all(c["trunk"] is None for c in calls)
    # with the trunk configured, what the proxy would do: every call forwarded
    cfg = tmp_path / "trunk.toml"
    cfg.write_text(TRUNK_TOML.format(kind="carrier"))
    code, text = run_cli(str(path), "--format", "jsonl", "--config", str(cfg))
    calls, _, summary = jsonl(text)
    assert code == 0
    assert summary["decisions"] == {"forward": 60}
    assert {(c["trunk"], c["trunk_kind"]) for c in calls} == {("interconnect", "carrier")}
    assert summary["trunks"] == {"interconnect (carrier)": 60}
    _, text = run_cli(str(path), "--config", str(cfg))
    assert "via interconnect (carrier):" in text
    assert "trunks: interconnect (carrier) 60; no trunk 0" in text


PBX_TOML = """
[proxy.rate_limit]
action = "503"

[proxy.trunks.acme-pbx]
sources = ["203.0.113.7", "203.0.113.8"]
kind = "{kind}"
{extra}
"""


def pbx_flood() -> tuple[list, list[Call]]:
    """A hijacked PBX: 30 INVITEs in 1.5 s alternating between its two addresses (15 from
    each, far below the per-address limit), then, 15 s later, a retransmission of call 15."""
    calls = [
        Call(caller="+12155550100", callee=f"+1900555{i:04d}", src=f"203.0.113.{7 + i % 2}")
        for i in range(30)
    ]
    packets = [from_caller(c, c.invite(), T0 + 0.05 * i) for i, c in enumerate(calls)]
    packets.append(from_caller(calls[15], calls[15].invite(), T0 + 15.0))
    return packets, calls


def test_pbx_trunk_is_one_flood_budget_a_carrier_none(tmp_path: Path) -> None:
    packets, calls = pbx_flood()
    path = write_pcap(tmp_path / "flood.pcap", packets)
    pbx = tmp_path / "pbx.toml"
    pbx.write_text(PBX_TOML.format(kind="pbx", extra="max_requests = 10"))
    code, text = run_cli(str(path), "--format", "jsonl", "--config", str(pbx))
    rows, _, summary = jsonl(text)
    assert code == 0 and len(rows) == 30
    by_id = {r["call_id"]: r for r in rows}
    shed = [r for r in rows if r["action"] == "shed"]
    # 10 requests per 2 s for the whole trunk: the 11th INVITE starts a 10 s block
    assert len(shed) == 19 and summary["shed_requests"] == 20
    assert all(r["code"] == 503 and r["score"] is None for r in shed)
    assert all((r["trunk"], r["trunk_kind"]) == ("acme-pbx", "pbx") for r in rows)
    assert "trunk:acme-pbx over 10 requests in 2 s" in shed[0]["reasons"][0]["detail"]
    # the retransmission after the block is let in, and the proxy screens it then
    again = by_id[calls[15].call_id]
    assert again["action"] != "shed" and again["packet"] == 31
    assert summary["actions"]["shed"] == 19
    _, text = run_cli(str(path), "--config", str(pbx))
    assert "shed 503" in text and "would have been shed" in text
    # the same traffic from a carrier trunk, or from no trunk: nothing shed
    carrier = tmp_path / "carrier.toml"
    carrier.write_text(PBX_TOML.format(kind="carrier", extra=""))
    for args in (["--config", str(carrier)], []):
        _, text = run_cli(str(path), "--format", "jsonl", *args)
        rows, _, summary = jsonl(text)
        assert summary["shed_requests"] == 0 and "shed" not in summary["actions"]


def test_max_requests_only_for_pbx_trunks() -> None:
    trunk = {"sources": ["203.0.113.7"], "kind": "carrier", "max_requests": 5}
    with pytest.raises(ConfigError, match="max_requests"):
        load_config(None, {"proxy.trunks": {"gw": trunk}})
    with pytest.raises(ConfigError, match="max_requests"):
        load_config(None, {"proxy.trunks": {"gw": {**trunk, "kind": "pbx", "max_requests": 0}}})


SIGNING_TOML = """
[attestation]
dev_pki = {dev_pki}
{key}
[attestation.signing_trunks.acme]
kind = "customer"
owned_tns = ["1215555*"]
sources = ["192.0.2.50/32"]
"""


def call_centre(n: int = 30) -> list:
    """A customer's call centre dialling out through us: ``n`` short answered calls to
    different numbers in 2.5 minutes, no Identity (we are its originating provider)."""
    packets = []
    for i in range(n):
        c = Call(caller="+12155550100", callee=f"+1609555{4000 + i * 7:04d}", src="192.0.2.50")
        packets += answered_call(c, T0 + 5.0 * i, talk=8.0)
    return packets


def test_signing_trunk_calls_are_outbound_signed_not_scored(tmp_path: Path) -> None:
    m = pki.init_pki(tmp_path / "pki", "1234", now=T0 - 3600, base_url="https://cr.example.net")
    path = write_pcap(tmp_path / "out.pcap", call_centre())
    # no signing trunk: the proxy screens them like inbound calls, and the volume shows
    _, text = run_cli(str(path), "--format", "jsonl")
    rows, _, summary = jsonl(text)
    assert sum(summary["decisions"].get(k, 0) for k in STOPPED) >= 10, summary["decisions"]
    key = f'signing_key = "{m.leaf_key}"\nsigning_x5u = "{m.x5u_url}"'
    for dev_pki, key_lines in (("false", key), ("true", "")):  # dev_pki: a stand-in key
        cfg = tmp_path / f"sign-{dev_pki}.toml"
        cfg.write_text(SIGNING_TOML.format(dev_pki=dev_pki, key=key_lines))
        code, text = run_cli(str(path), "--format", "jsonl", "--config", str(cfg))
        rows, _, summary = jsonl(text)
        assert code == 0
        assert summary["actions"] == {"signed": 30} and summary["decisions"] == {"outbound": 30}
        assert {(r["signing_trunk"], r["attest"], r["score"]) for r in rows} == {
            ("acme", "A", None)
        }
        assert summary["attestation"] == {"signs A": 30}
    # a signing trunk but no signer at all: live screens them as inbound, so does replay
    cfg.write_text(SIGNING_TOML.format(dev_pki="false", key=""))
    _, text = run_cli(str(path), "--format", "jsonl", "--config", str(cfg))
    assert "outbound" not in jsonl(text)[2]["decisions"]


async def _seed_subscriber(path: Path) -> None:
    from reputation.store import Store

    store = Store.open(path)
    try:
        made = await store.add_user("acme", tns=["+12155550100"])
        assert isinstance(made, tuple)
    finally:
        await store.aclose()


def test_outbound_call_teaches_the_callback(tmp_path: Path) -> None:
    """Reciprocity as on the live path: our subscriber called +16095550111 out through the
    signing trunk, so that number's call back is known (``learned.allow``)."""
    m = pki.init_pki(tmp_path / "pki", "1234", now=T0 - 3600, base_url="https://cr.example.net")
    db = tmp_path / "reputation.sqlite3"
    asyncio.run(_seed_subscriber(db))
    out = Call(caller="+12155550100", callee="+16095550111", src="192.0.2.50")
    back = Call(caller="+16095550111", callee="+12155550100", src="198.51.100.99")
    packets = answered_call(out, T0, talk=60) + answered_call(back, T0 + 600, talk=60)
    path = write_pcap(tmp_path / "callback.pcap", packets)
    cfg = tmp_path / "sign.toml"
    key = f'signing_key = "{m.leaf_key}"\nsigning_x5u = "{m.x5u_url}"'
    cfg.write_text(SIGNING_TOML.format(dev_pki="false", key=key))
    _, text = run_cli(str(path), "--format", "jsonl", "--config", str(cfg), "--store", str(db))
    first, second = jsonl(text)[0]
    assert first["action"] == "signed"
    assert any(r["signal"] == "learned.allow" for r in second["reasons"]), second["reasons"]


def test_monitor_mode_forwards_what_it_would_stop(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "burst.pcap", robocall_burst())
    cfg = tmp_path / "monitor.toml"
    cfg.write_text("[reputation.policy]\nmonitor = true\n")
    _, text = run_cli(str(path), "--format", "jsonl", "--config", str(cfg))
    rows, _, summary = jsonl(text)
    stopped = [r for r in rows if r["decision"] in STOPPED]
    assert len(stopped) >= 30
    assert {r["action"] for r in stopped} == {"forward_monitor"}
    assert set(summary["actions"]) <= {"forward", "forward_monitor", "forward_tagged"}


async def test_challenge_pass_token_checked_with_the_secret_file(tmp_path: Path) -> None:
    """The challenge UA's bridged leg carries a pass token: the proxy lets it through
    unscored; replay does the same when the deployment's secret file is there."""
    secret = b"00" * 32
    (tmp_path / "challenge.secret").write_bytes(secret + b"\n")
    token = mint(secret, "+12155550100", "+16095550111", T0, ttl=30)
    leg = Call(
        caller="+12155550100",
        callee="+16095550111",
        src="127.0.0.1",
        headers=(("X-Spitwall-Pass", token),),
    )
    path = write_pcap(tmp_path / "pass.pcap", [from_caller(leg, leg.invite(), T0 + 1)])
    cfg = load_config(None, {"data_dir": str(tmp_path)})
    result, summary = await replay_capture(path, cfg, OfflineCertificates([]))
    (call,) = result.calls
    assert call.action == "forward" and call.score is None
    assert call.reasons[0]["signal"] == "challenge-passed"
    assert summary.unchecked_passes == 0
    # no secret file: screened like any call, and the report says it could not check
    cfg = load_config(None, {"data_dir": str(tmp_path / "elsewhere")})
    result, summary = await replay_capture(path, cfg, OfflineCertificates([]))
    assert result.calls[0].score is not None and summary.unchecked_passes == 1
    assert not (tmp_path / "elsewhere").exists()  # a replay never creates the secret


def test_forwarded_copies_do_not_count_against_the_proxy(tmp_path: Path) -> None:
    """A capture taken on the proxy holds its own forwarded INVITEs (source: the proxy):
    the rate limiter never sees those, so they must not shed anything."""
    packets = []
    for i in range(12):
        c = Call(
            caller=f"+1215555{1100 + i}",
            callee=f"+1609555{2100 + i}",
            src=f"192.0.2.{10 + i}",
            dst="192.0.2.1",
        )
        fwd = Call(
            caller=c.caller, callee=c.callee, src="192.0.2.1", dst="192.0.2.200", call_id=c.call_id
        )
        packets += [from_caller(c, c.invite(), T0 + 0.1 * i)]
        packets += [from_caller(fwd, fwd.invite(), T0 + 0.1 * i + 0.01)]
        packets += [to_caller(c, c.response(480, "Busy"), T0 + 0.1 * i + 0.05)]
    path = write_pcap(tmp_path / "on-proxy.pcap", packets)
    cfg = load_config(None, {"proxy.rate_limit.max_requests": 3})
    result, summary = asyncio.run(replay_capture(path, cfg, OfflineCertificates([])))
    assert summary.shed_requests == 0 and len(result.calls) == 12
    assert result.retransmissions == 12


async def test_configured_message_limits_apply(tmp_path: Path) -> None:
    """An INVITE over ``proxy.limits`` is refused by the proxy (400), never screened."""
    extra = tuple((f"X-Pad-{i}", "x") for i in range(30))
    big = Call(caller="+12155550100", callee="+16095550111", headers=extra)
    path = write_pcap(tmp_path / "big.pcap", [from_caller(big, big.invite(), T0)])
    result, summary = await replay_capture(path, load_config(None), OfflineCertificates([]))
    assert len(result.calls) == 1
    cfg = load_config(None, {"proxy.limits.max_headers": 20})
    result, summary = await replay_capture(path, cfg, OfflineCertificates([]))
    assert result.calls == [] and not summary.complete
    assert [p.reason for p in result.problems] == ["sip_parse_error"]
