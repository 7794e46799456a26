"""Pure parts of the proxy: routing, rate limiting, config checks, structured logs."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from proxy.build import trying
from proxy.config import RateLimitConfig, RouteConfig, parse_listen
from proxy.ratelimit import RateLimiter, Verdict
from proxy.routing import NextHop, NextHopError, NoRoute, Router, digits, parse_next_hop
from proxy.sip import Request, parse_message
from proxy.sip.reply import make_response
from spitwall.config import load_config
from spitwall.logs import setup_logging
from spitwall.settings import ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("uri", "hop"),
    [
        ("sip:10.0.0.1", NextHop("udp", "10.0.0.1", 5060)),
        ("sip:10.0.0.1:5070;transport=tcp", NextHop("tcp", "10.0.0.1", 5070)),
        ("sips:gw.example", NextHop("tls", "gw.example", 5061)),
        ("sip:[2001:db8::1]:5080", NextHop("udp", "2001:db8::1", 5080)),
        ("sip:user@10.0.0.1;transport=TLS", NextHop("tls", "10.0.0.1", 5061)),
    ],
)
def test_parse_next_hop(uri: str, hop: NextHop) -> None:
    assert parse_next_hop(uri) == hop


@pytest.mark.parametrize("bad", ["http://x", "sip:", "sip:h:99999", "sip:h;transport=sctp"])
def test_bad_next_hop_named(bad: str) -> None:
    with pytest.raises(NextHopError):
        parse_next_hop(bad)


def test_router_precedence_domain_then_longest_prefix_then_default() -> None:
    r = Router(
        [
            RouteConfig("sip:a", prefix="1"),
            RouteConfig("sip:b", prefix="1215"),
            RouteConfig("sip:c", domain="Carrier.Example"),
        ],
        "sip:d",
    )
    assert r.route("carrier.example", "12155551212", host_is_ours=False).host == "c"  # type: ignore[union-attr]
    assert r.route("x", "+1 (215) 555-1212", host_is_ours=True).host == "b"  # type: ignore[union-attr]
    assert r.route("x", "1300", host_is_ours=True).host == "a"  # type: ignore[union-attr]
    assert r.route("x", "44", host_is_ours=True).host == "d"  # type: ignore[union-attr]
    assert isinstance(Router([]).route("x", "1", host_is_ours=True), NoRoute)
    assert digits("+1-215.555") == "1215555" and digits("alice") == ""


def test_rate_limiter_sheds_one_source_blocks_then_recovers() -> None:
    rl = RateLimiter(
        RateLimitConfig(window=1.0, max_requests=3, block_seconds=5.0, allow=("10.0.0.0/8",))
    )
    got = [rl.check("203.0.113.1", 0.1 * i) for i in range(5)]
    assert got == [Verdict.ALLOW] * 3 + [Verdict.BLOCK_START, Verdict.SHED]
    assert rl.check("203.0.113.2", 0.5) is Verdict.ALLOW  # others unaffected
    assert all(rl.check("10.1.2.3", 0.5) is Verdict.ALLOW for _ in range(100))
    assert rl.blocked(1.0) == ["203.0.113.1"]
    assert rl.check("203.0.113.1", 6.0) is Verdict.ALLOW


def test_rate_limiter_memory_is_bounded() -> None:
    rl = RateLimiter(RateLimitConfig(), max_sources=100)
    for i in range(10_000):
        rl.check(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", 0.0)
    assert len(rl._sources) <= 100


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"proxy.listen": ["udp:1.2.3.4"]}, "proxy"),
        ({"proxy.listen": ["tls:127.0.0.1:5061"]}, "proxy"),
        ({"proxy.routes": [{"prefix": "12a", "next_hop": "sip:x"}]}, "proxy.routes[0]"),
        ({"proxy.rate_limit.allow": ["10.0.0.0/33"]}, "proxy.rate_limit"),
        ({"proxy.timers.t1": 5.0}, "proxy.timers"),
        ({"proxy.limits.max_connections": 0}, "proxy.limits"),
    ],
)
def test_invalid_proxy_config_names_the_key(overrides: dict, key: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(None, overrides)
    assert exc.value.key == key


def test_shipped_config_has_a_documented_proxy_section() -> None:
    cfg = load_config(ROOT / "config" / "spitwall.toml")
    assert cfg.proxy.listen and cfg.proxy.timers.timer_c == 180.0
    assert parse_listen("tls:[::1]:5061") == ("tls", "::1", 5061)


def test_json_logs_carry_call_id() -> None:
    buf = io.StringIO()
    setup_logging("info", "json", buf)
    logging.getLogger("spitwall.test").info("screened", extra={"call_id": "abc@h", "code": 607})
    rec = json.loads(buf.getvalue().splitlines()[-1])
    assert rec["msg"] == "screened" and rec["call_id"] == "abc@h" and rec["code"] == 607
    setup_logging("info", "text", buf)
    logging.getLogger("spitwall.test").info("hello", extra={"call_id": "x"})
    assert buf.getvalue().rstrip().endswith("call_id=x")


@pytest.mark.parametrize(
    "extra",
    [
        "",
        "Timestamp: 54.3 0.1\r\n",
        "v: SIP/2.0/TCP h.example:5090;branch=z9hG4bK-2\r\n",
    ],
)
def test_trying_is_the_bytes_make_response_would_send(extra: str) -> None:
    """``build.trying`` (the hot-path 100) equals ``make_response(req, 100, "Trying")``."""
    data = (
        "INVITE sip:+12155550123@10.0.0.1 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bK-c1;rport=5070;received=192.0.2.10,"
        " SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK-c0\r\n"
        f"{extra}"
        'From: "Alice" <sip:+12155550100@caller.example>;tag=a1\r\n'
        "To: <sip:+12155550123@10.0.0.1>\r\nCall-ID: c1@h\r\nCSeq: 7 INVITE\r\n"
        "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    req = parse_message(data)
    assert isinstance(req, Request)
    assert trying(req) == make_response(req, 100, "Trying").to_bytes()
