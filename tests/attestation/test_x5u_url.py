"""Rules 16 and 17 without a server: URL shape, and the special-purpose address guard."""

from __future__ import annotations

import ipaddress

import pytest

from attestation.certs.fetch import ForbiddenAddress, GuardedResolver, max_age_of
from attestation.certs.result import CertFailure, CertReason
from attestation.certs.url import CheckedUrl, check_url, forbidden_reason

PORTS = (443, 8443)


def check(url: str, allow: tuple[str, ...] = ()) -> CheckedUrl | CertFailure:
    return check_url(url, ports=PORTS, allow_hosts=allow)


@pytest.mark.parametrize(
    "url",
    [
        "https://cr.example.com/sp.pem",
        "https://cr.example.com:443/sp.pem",
        "https://cr.example.com:8443/certs/sp.pem",
        "HTTPS://CR.Example.com/sp.pem",
        "https://8.8.8.8/sp.pem",
        "https://[2001:4860:4860::8888]/sp.pem",
    ],
)
def test_acceptable_urls(url: str) -> None:
    assert isinstance(check(url), CheckedUrl)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://cr.example.com/sp.pem", "not https"),
        ("ftp://cr.example.com/sp.pem", "not https"),
        ("//cr.example.com/sp.pem", "not https"),
        ("https://cr.example.com:8080/sp.pem", "port 8080"),
        ("https://cr.example.com:80/sp.pem", "port 80"),
        ("https://cr.example.com:99999/sp.pem", "unparsable"),
        ("https://user:pw@cr.example.com/sp.pem", "userinfo"),
        ("https://user@cr.example.com/sp.pem", "userinfo"),
        ("https://cr.example.com/sp.pem?x=1", "query"),
        ("https://cr.example.com/sp.pem?", "query"),
        ("https://cr.example.com/sp.pem#frag", "fragment"),
        ("https://cr.example.com/sp.pem#", "fragment"),
        ("https:///sp.pem", "no host"),
        ("https://cr.example.com", "no path"),
        ("https://cr.example.com/", "no path"),
        ("https://cr.example.com/a/../sp.pem", "dot-segments"),
        ("https://cr.exa mple.com/sp.pem", "whitespace"),
        ("https://cr.example.com/sp.pem\r\nX: y", "whitespace"),
        ("https://crë.example.com/sp.pem", "non-ASCII"),
        ("https://127.1/sp.pem", "canonical"),
        ("https://2130706433/sp.pem", "canonical"),
        ("https://cr_ex%41mple.com/sp.pem", "invalid host"),
        ("", "empty"),
        ("https://cr.example.com/" + "a" * 3000, "longer than"),
    ],
)
def test_bad_urls_are_x5u_bad_url(url: str, fragment: str) -> None:
    result = check(url)
    assert isinstance(result, CertFailure), url
    assert result.reason is CertReason.X5U_BAD_URL
    assert result.reason.sip_code == 436
    assert fragment in result.detail, result.detail


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/sp.pem",
        "https://10.1.2.3/sp.pem",
        "https://172.16.0.1/sp.pem",
        "https://192.168.1.1/sp.pem",
        "https://169.254.169.254/latest/meta-data",
        "https://100.64.0.1/sp.pem",
        "https://0.0.0.0/sp.pem",
        "https://224.0.0.1/sp.pem",
        "https://255.255.255.255/sp.pem",
        "https://[::1]/sp.pem",
        "https://[::]/sp.pem",
        "https://[fe80::1]/sp.pem",
        "https://[fd00::1]/sp.pem",
        "https://[ff02::1]/sp.pem",
        "https://[::ffff:127.0.0.1]/sp.pem",
        "https://[::ffff:10.0.0.1]/sp.pem",
        "https://[2002:7f00:1::]/sp.pem",
        "https://[64:ff9b::a9fe:a9fe]/sp.pem",
    ],
)
def test_forbidden_literal_addresses(url: str) -> None:
    result = check(url)
    assert isinstance(result, CertFailure), url
    assert result.reason is CertReason.X5U_FORBIDDEN_ADDRESS, result
    assert result.reason.sip_code == 436


def test_allow_list_exempts_host_from_guard_and_port_rule() -> None:
    ok = check("https://127.0.0.1:12345/sp.pem", allow=("127.0.0.1",))
    assert isinstance(ok, CheckedUrl) and ok.allowed_host and ok.port == 12345
    ok6 = check("https://[::1]:8443/sp.pem", allow=("[::1]",))
    assert isinstance(ok6, CheckedUrl)
    # the allow list is per host: another loopback spelling is still refused
    bad = check("https://[::ffff:127.0.0.1]/sp.pem", allow=("127.0.0.1",))
    assert isinstance(bad, CertFailure) and bad.reason is CertReason.X5U_FORBIDDEN_ADDRESS
    # allow-listing does not relax the other URL rules
    assert isinstance(check("http://127.0.0.1/sp.pem", allow=("127.0.0.1",)), CertFailure)
    assert isinstance(check("https://127.0.0.1/sp.pem?q", allow=("127.0.0.1",)), CertFailure)


@pytest.mark.parametrize(
    ("addr", "label"),
    [
        ("127.0.0.2", "loopback"),
        ("10.0.0.1", "private"),
        ("100.127.255.255", "CGNAT"),
        ("192.0.2.1", "private"),  # documentation range
        ("::ffff:192.168.0.1", "embeds 192.168.0.1"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "embeds"),  # Teredo -> 192.0.2.45
        ("fe80::1%1", "link-local"),
    ],
)
def test_forbidden_reason_names_the_category(addr: str, label: str) -> None:
    why = forbidden_reason(ipaddress.ip_address(addr))
    assert why is not None and label in why


@pytest.mark.parametrize("addr", ["8.8.8.8", "2001:4860:4860::8888", "::ffff:8.8.8.8"])
def test_global_addresses_pass(addr: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(addr)) is None


async def test_resolver_refuses_localhost_and_pins_checked_addresses() -> None:
    with pytest.raises(ForbiddenAddress, match="localhost resolves to"):
        await GuardedResolver(()).resolve("localhost", 443, family=0)  # type: ignore[arg-type]
    res = await GuardedResolver(("localhost",)).resolve("localhost", 443, family=0)  # type: ignore[arg-type]
    assert res and all(ipaddress.ip_address(r["host"]).is_loopback for r in res)
    assert all(r["hostname"] == "localhost" and r["port"] == 443 for r in res)


def test_cache_headers() -> None:
    assert max_age_of({}, 0) is None
    assert max_age_of({"Cache-Control": "public, max-age=600"}, 0) == 600
    assert max_age_of({"Cache-Control": 'max-age="60"'}, 0) == 60
    assert max_age_of({"Cache-Control": "no-store"}, 0) == 0
    assert max_age_of({"Cache-Control": "no-cache, max-age=600"}, 0) == 0
    assert max_age_of({"Cache-Control": "max-age=abc"}, 0) == 0
    assert max_age_of({"Cache-Control": "max-age=-5"}, 0) == 0
    assert max_age_of({"Cache-Control": "s-maxage=5, max-age=600"}, 0) == 5
    hdr = {"Date": "Sat, 28 Nov 2026 18:00:00 GMT", "Expires": "Sat, 28 Nov 2026 19:00:00 GMT"}
    assert max_age_of(hdr, 0) == 3600
    assert max_age_of({"Expires": "garbage"}, 0) == 0
    assert max_age_of({"Expires": "Sat, 28 Nov 2026 19:00:00 GMT"}, 1795892400 - 100) == 100


async def test_resolver_refuses_a_name_with_any_special_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio
    import socket

    loop = asyncio.get_running_loop()

    async def fake_getaddrinfo(host: str, port: int, **_: object) -> list[tuple[object, ...]]:
        answers = {"mixed.example": ["8.8.8.8", "10.0.0.7"], "public.example": ["8.8.4.4"]}
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answers[host]]

    monkeypatch.setattr(loop, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(ForbiddenAddress, match=r"10\.0\.0\.7, which is private"):
        await GuardedResolver(()).resolve("mixed.example", 443)
    # the addresses handed to the connector are exactly the ones checked (no re-resolution)
    res = await GuardedResolver(()).resolve("public.example", 443)
    assert [(r["host"], r["port"]) for r in res] == [("8.8.4.4", 443)]
    assert all(r["flags"] & socket.AI_NUMERICHOST for r in res)
