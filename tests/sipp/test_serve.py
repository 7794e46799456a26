"""The real ``spitwall serve`` as a subprocess: ports on 0, calls over UDP/TCP/TLS,
/metrics and /healthz, graceful SIGTERM, config errors exit 2 with the key named.

SIPp (Debian's build) has no TLS, so the TLS caller is a small asyncio client here that
speaks SIP over a real TLS connection to the proxy; the callee is SIPp over UDP.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import sys
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from proxy.sip import Request, Response, StreamFramer, parse_message

from .harness import ROOT, ServeProcess, Sipp, free_port, run_sipp

pytestmark = [pytest.mark.sipp, pytest.mark.timeout(90)]


def _http_get(host: str, port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


async def test_serve_ephemeral_ports_udp_and_tcp_calls_metrics_and_sigterm(tmp_path: Path) -> None:
    # The full composition (spitwall.compose: pipeline, stores, API), as `make run` starts it.
    uas_port = free_port()
    uas = await Sipp.start("uas_call.xml", port=uas_port, calls=4)
    sp = await ServeProcess.start(
        "--data-dir",
        str(tmp_path / "data"),
        "--listen",
        "udp:127.0.0.1:0",
        "--listen",
        "tcp:127.0.0.1:0",
        "--next-hop",
        f"sip:127.0.0.1:{uas_port}",
        "--http",
        "127.0.0.1:0",
        "--log-format",
        "json",
    )
    try:
        assert set(sp.ports) == {"udp", "tcp"} and sp.http is not None
        res = await run_sipp("uac_call.xml", target=sp.addr("udp"), calls=2, rate=10)
        assert res.ok, res.why
        # TCP in, UDP out: the proxy double-Record-Routes, in-dialog requests still flow.
        res = await run_sipp(
            "uac_call.xml", target=sp.addr("tcp"), calls=2, rate=10, transport="t1"
        )
        assert res.ok, res.why
        assert (await uas.wait(20)).ok
        assert any(line.startswith("# test call: sipp") for line in sp.lines)
        status, body = await asyncio.to_thread(_http_get, *sp.http, "/metrics")
        assert status == 200
        assert 'spitwall_sip_requests_total{method="INVITE"} 4.0' in body
        assert 'spitwall_sip_responses_total{code="200",origin="relayed"}' in body
        assert "spitwall_screening_seconds_bucket" in body
        status, body = await asyncio.to_thread(_http_get, *sp.http, "/healthz")
        assert status == 200 and '"status": "ok"' in body
    finally:
        rc = await sp.stop()
    assert rc == 0
    assert any('"msg":"shutting down"' in line for line in sp.lines)
    assert any('"call_id"' in line for line in sp.lines)  # JSON lines carry the Call-ID


async def test_serve_invalid_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[proxy.limits]\nmax_connections = 'many'\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "spitwall",
        "serve",
        "--config",
        str(cfg),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert b"proxy.limits.max_connections" in err


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "spitwall-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    crt, pem = tmp / "proxy.crt", tmp / "proxy.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return crt, pem


class TlsCaller:
    """A minimal SIP UAC over TLS (what SIPp without OpenSSL cannot be)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.framer = StreamFramer()
        self.local = writer.get_extra_info("sockname")
        self.pending: list[bytes] = []

    async def recv(self) -> Response | Request:
        while not self.pending:
            data = await asyncio.wait_for(self.reader.read(65536), 10)
            assert data, "proxy closed the TLS connection"
            # (ServeProcess.lines has the proxy's log when this fails)
            self.pending += self.framer.feed(data)
        return parse_message(self.pending.pop(0))

    def send(self, text: str) -> None:
        self.writer.write(text.replace("\n", "\r\n").encode())

    def request(
        self, method: str, ruri: str, *, cseq: int, branch: str, to: str, routes: list[str] = ()
    ) -> None:
        lh, lp = self.local[0], self.local[1]
        route = "".join(f"Route: {r}\n" for r in routes)
        self.send(
            f"{method} {ruri} SIP/2.0\n"
            f"Via: SIP/2.0/TLS {lh}:{lp};branch={branch};rport\n{route}"
            f"From: <sip:+12155550100@{lh}>;tag=tls1\nTo: {to}\n"
            f"Call-ID: tls-call-1@{lh}\nCSeq: {cseq} {method}\n"
            f"Contact: <sip:alice@{lh}:{lp};transport=tls>\nMax-Forwards: 70\n"
            f"Content-Length: 0\n\n"
        )


async def test_tls_caller_through_proxy_to_udp_callee(tmp_path: Path) -> None:
    crt, key = _self_signed(tmp_path)
    conf = tmp_path / "tls.toml"
    conf.write_text(f'[proxy.tls]\ncert_file = "{crt}"\nkey_file = "{key}"\n')
    uas_port = free_port()
    uas = await Sipp.start("uas_call.xml", port=uas_port)
    sp = await ServeProcess.start(
        "--proxy-only",
        "--config",
        str(conf),
        "--listen",
        "tls:127.0.0.1:0",
        "--listen",
        "udp:127.0.0.1:0",
        "--http",
        "",
        "--next-hop",
        f"sip:127.0.0.1:{uas_port}",
    )
    try:
        ctx = ssl.create_default_context(cafile=str(crt))
        reader, writer = await asyncio.open_connection("127.0.0.1", sp.ports["tls"], ssl=ctx)
        ua = TlsCaller(reader, writer)
        to = "<sip:12155550123@127.0.0.1>"
        ua.request(
            "INVITE",
            f"sip:12155550123@127.0.0.1:{sp.ports['tls']}",
            cseq=1,
            branch="z9hG4bK-tls-inv",
            to=to,
        )
        codes = []
        while True:
            try:
                r = await ua.recv()
            except AssertionError:
                raise AssertionError("".join(sp.lines)) from None
            assert isinstance(r, Response)
            codes.append(r.status)
            if r.status >= 200:
                break
        assert codes[0] == 100 and codes[-1] == 200, codes
        rr = r.headers.values("record-route")
        assert len(rr) == 2 and "transport=tls" in rr[1]  # UDP-facing on top, TLS-facing below
        contact = str(r.contacts[0].uri)  # type: ignore[index]
        to_tagged = r.headers.get("to") or ""
        routes = list(reversed(rr))
        ua.request("ACK", contact, cseq=1, branch="z9hG4bK-tls-ack", to=to_tagged, routes=routes)
        await asyncio.sleep(0.2)
        ua.request("BYE", contact, cseq=2, branch="z9hG4bK-tls-bye", to=to_tagged, routes=routes)
        r = await ua.recv()
        assert isinstance(r, Response) and r.status == 200 and r.cseq.method == "BYE"
        writer.close()
        assert (await uas.wait(20)).ok
    finally:
        assert await sp.stop() == 0


async def test_two_workers_share_the_port_and_responses_return_to_the_right_worker() -> None:
    # Several workers need explicit ports (SO_REUSEPORT on the shared one); each writes
    # its private UDP port in Via, so the callee's responses reach the worker that holds
    # the transaction. A socket per call (-t un) spreads the 40 calls over both workers;
    # a response delivered to the wrong worker would be a stray there and the call would fail.
    port, uas_port = free_port(), free_port()
    uas = await Sipp.start("uas_call.xml", port=uas_port, calls=40)
    sp = await ServeProcess.start(
        "--proxy-only",
        "--workers",
        "2",
        "--listen",
        f"udp:127.0.0.1:{port}",
        "--next-hop",
        f"sip:127.0.0.1:{uas_port}",
        "--http",
        "",
    )
    try:
        res = await run_sipp(
            "uac_call.xml",
            target=f"127.0.0.1:{port}",
            calls=40,
            rate=40,
            transport="un",
            extra=("-max_socket", "1000"),
        )
        assert res.ok, res.why
        assert (await uas.wait(20)).ok
        await asyncio.sleep(0.3)
        workers = {line.split("worker=")[1].strip() for line in sp.lines if "worker=" in line}
        assert workers >= {"0", "1"}
    finally:
        assert await sp.stop() == 0


async def test_serve_several_workers_need_explicit_ports() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "spitwall",
        "serve",
        "--proxy-only",
        "--workers",
        "2",
        "--listen",
        "udp:127.0.0.1:0",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2 and b"proxy.workers" in err


async def test_udp_caller_to_tls_next_hop(tmp_path: Path) -> None:
    # The next hop speaks TLS only (a small asyncio TLS server answering 486): the proxy
    # opens the TLS connection, forwards with a TLS Via, relays the 486 to the SIPp caller
    # and ACKs it over the same connection. With no tls: listener of its own it
    # Record-Routes only its UDP side (a TLS entry would name a port nobody listens on).
    from proxy.sip import make_response

    from .harness import in_process_proxy, scenario

    crt, key = _self_signed(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    seen: list[Request] = []

    async def uas(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer = StreamFramer()
        while data := await reader.read(65536):
            for frame in framer.feed(data):
                msg = parse_message(frame)
                assert isinstance(msg, Request)
                seen.append(msg)
                if msg.method == "INVITE":
                    writer.write(make_response(msg, 486, "Busy Here").to_bytes())

    server = await asyncio.start_server(uas, "127.0.0.1", 0, ssl=ctx)
    tls_port = server.sockets[0].getsockname()[1]
    async with in_process_proxy(
        {"proxy.default_next_hop": f"sip:127.0.0.1:{tls_port};transport=tls"}
    ) as p:
        res = await run_sipp(scenario("uac_final.xml", code=486, maxfwd=70), target=p.udp)
    server.close()
    assert res.ok, res.why
    assert [m.method for m in seen] == ["INVITE", "ACK"]
    inv = seen[0]
    assert inv.vias[0].transport == "TLS"
    assert inv.headers.values("record-route") == [f"<sip:{p.udp};lr>"]
