"""`spitwall sign` and `spitwall verify` as processes, against the local HTTPS x5u server."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from spitwall.cli import main

KEYS = {"valid", "verstat", "attest", "origid", "spc", "reason", "sip_code", "sip_text"}
ORIG, DEST = "12155551212", "12155551213"
ORIGID = "123e4567-e89b-12d3-a456-426655440000"


def spitwall(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "spitwall", *args], capture_output=True, text=True, timeout=60
    )


def sign(sti_pki: Any, *extra: str, variant: str = "good") -> str:
    out = spitwall(
        "sign",
        "--key",
        str(sti_pki.directory / f"{variant}.key"),
        "--x5u",
        sti_pki.x5u(variant),
        "--orig",
        f"+{ORIG}",
        "--dest",
        DEST,
        "--attest",
        "A",
        "--origid",
        ORIGID,
        *extra,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("\n") == 1
    return out.stdout.strip()


def verify(sti_pki: Any, *identity: str, **opts: str) -> tuple[int, dict[str, Any]]:
    args = ["verify"]
    for value in identity:
        args += ["--identity", value]
    opts = {"from": f"sip:+{ORIG}@carrier.example", "to": f"tel:+{DEST}"} | opts
    for k, v in opts.items():
        args += [f"--{k.replace('_', '-')}", v]
    args += ["--trust-anchors", str(sti_pki.trust_anchors), "--x5u-ca-file", str(sti_pki.tls_ca)]
    args += ["--allow-x5u-host", "127.0.0.1"]
    out = spitwall(*args)
    lines = out.stdout.splitlines()
    assert len(lines) == 1, (out.stdout, out.stderr)
    result = json.loads(lines[0])
    assert set(result) == KEYS
    return out.returncode, result


def test_sign_then_verify_valid(sti_pki: Any) -> None:
    value = sign(sti_pki)
    assert value.endswith(f";info=<{sti_pki.x5u()}>;alg=ES256;ppt=shaken")
    rc, out = verify(sti_pki, value)
    assert rc == 0
    assert out == {
        "valid": True,
        "verstat": "TN-Validation-Passed",
        "attest": "A",
        "origid": ORIGID,
        "spc": "1234",
        "reason": None,
        "sip_code": None,
        "sip_text": None,
    }


def test_invalid_exits_1_with_reason(sti_pki: Any) -> None:
    rc, out = verify(sti_pki, sign(sti_pki), **{"from": "tel:+19995550000"})
    assert rc == 1
    assert (out["valid"], out["verstat"], out["reason"], out["sip_code"], out["sip_text"]) == (
        False,
        "TN-Validation-Failed",
        "orig_mismatch",
        438,
        "Invalid Identity Header",
    )
    assert out["attest"] is None and out["spc"] is None


def test_pai_and_request_uri_options(sti_pki: Any) -> None:
    value = sign(sti_pki)
    rc, out = verify(
        sti_pki,
        "garbage",
        value,
        **{"from": "sip:anonymous@anonymous.invalid", "pai": f"<sip:+{ORIG}@c.example>"},
        to="sip:bob@example.com",
        request_uri=f"sip:{DEST[1:]}@10.0.0.1;user=phone",
    )
    assert rc == 0 and out["valid"], out


def test_untrusted_certificate_is_437(sti_pki: Any) -> None:
    rc, out = verify(sti_pki, sign(sti_pki, variant="untrusted"))
    assert rc == 1 and (out["reason"], out["sip_code"]) == ("cert_untrusted", 437)


def test_now_sets_the_clock_for_iat_and_certificates(sti_pki: Any) -> None:
    past = int(sti_pki.now) - 3600
    value = sign(sti_pki, "--iat", str(past))
    assert verify(sti_pki, value)[1]["reason"] == "stale"
    assert verify(sti_pki, value, now=str(past + 10))[0] == 0
    later = int(sti_pki.now) + 400 * 86400  # past the leaf's notAfter (365 days)
    rc, out = verify(sti_pki, sign(sti_pki, "--iat", str(later)), now=str(later))
    assert rc == 1 and (out["reason"], out["sip_code"]) == ("cert_expired", 437)


@pytest.mark.parametrize(
    "args",
    [
        ["verify", "--from", "1", "--to", "2", "--trust-anchors", "x"],  # no --identity
        ["verify", "--identity", "x", "--to", "2", "--trust-anchors", "x"],  # no --from
        ["verify", "--identity", "x", "--from", "1", "--to", "2"],  # no --trust-anchors
        ["verify", "--identity", "x", "--from", "1", "--to", "2", "--trust-anchors", "/nope"],
        ["verify", "--identity", "x", "--from", "1", "--to", "2", "--now", "soon"],
        [
            "sign",
            "--key",
            "/nope",
            "--x5u",
            "https://a/b",
            "--orig",
            "1",
            "--dest",
            "2",
            "--attest",
            "A",
        ],
        [
            "sign",
            "--key",
            "K",
            "--x5u",
            "https://a/b",
            "--orig",
            "1",
            "--dest",
            "2",
            "--attest",
            "D",
        ],
    ],
)
def test_usage_errors_exit_2(
    args: list[str], sti_pki: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [str(sti_pki.directory / "good.key") if a == "K" else a for a in args]
    assert inproc(*args) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err


def test_sign_usage_errors(sti_pki: Any, tmp_path: Path) -> None:
    key = str(sti_pki.directory / "good.key")
    base = ["sign", "--key", key, "--orig", "1", "--dest", "2", "--attest", "A"]
    assert inproc(*base, "--x5u", "http://a/b") == 2
    assert inproc(*base, "--x5u", "https://a/b", "--origid", "nope") == 2
    assert inproc(*base, "--x5u", "https://a/b", "--dest", "x") == 2
    bad = tmp_path / "k.pem"
    bad.write_text("not a key")
    assert inproc("sign", "--key", str(bad), *base[3:], "--x5u", "https://a/b") == 2
    assert inproc(*base, "--x5u", "https://a/b", "--iat", str(int(time.time()))) == 0


def inproc(*args: str) -> int:
    """The CLI in this process (argparse usage errors raise SystemExit(2))."""
    try:
        return main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
