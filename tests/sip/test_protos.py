"""PROTOS c07-sip (OUSPG, 4527 malformed INVITEs): never anything but SipParseError.

The tarball is unpacked into a temporary directory (it is GPL-2.0 test material kept in
the team's shared corpus, not in this repository). Each test-case file holds records
``<length> <bytes>`` — the INVITE and its teardown — with placeholders (``<To>``,
``<Content-Length>``, ...) that the PROTOS runner fills in; we fill them the same way.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import time
from collections import Counter
from pathlib import Path

import pytest

from proxy.sip import Request, SipParseError, StreamFramer, error_response, parse_message

_CORPUS = Path("robust-corpus/protos-c07-sip/c07-sip-r2-testcases.tar.gz")


def _find_tarball() -> Path:
    """``$SPITWALL_PROTOS_TAR``, else the team's shared/ beside the checkout (where CI lays
    it), else the workspace's /work/shared."""
    if os.environ.get("SPITWALL_PROTOS_TAR"):
        return Path(os.environ["SPITWALL_PROTOS_TAR"])
    root = Path(__file__).resolve().parents[2]
    for base in (root.parent / "shared", Path("/work/shared")):
        if (base / _CORPUS).exists():
            return base / _CORPUS
    return root.parent / "shared" / _CORPUS


TARBALL = _find_tarball()
TAR_SHA256 = "0a79408de7dd2f032eec82b2d0a28d16fe7e09a0aad126968cf826fcd1cd3a2d"
SUBSTITUTIONS = {
    b"<To>": b"callee@127.0.0.1",
    b"<From>": b"protos@127.0.0.1",
    b"<From-Address>": b"127.0.0.1",
    b"<From-IP>": b"127.0.0.1",
    b"<Local-Port>": b"5062",
    b"<Branch-ID>": b"1",
    b"<Call-ID>": b"protos-1",
    b"<CSeq>": b"1",
    b"<Teardown-Method>": b"CANCEL",
}


def records(data: bytes) -> list[bytes]:
    out = []
    i = 0
    while i < len(data):
        space = data.index(b" ", i)
        n = int(data[i:space])
        out.append(data[space + 1 : space + 1 + n])
        i = space + 1 + n
    return out


def fill(record: bytes) -> bytes:
    for key, value in SUBSTITUTIONS.items():
        record = record.replace(key, value)
    if b"<Content-Length>" in record:
        end = record.find(b"\r\n\r\n")
        body = len(record) - (end + 4) if end >= 0 else 0
        record = record.replace(b"<Content-Length>", str(body).encode())
    return record


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    if not TARBALL.is_file():
        pytest.fail(f"PROTOS corpus missing: {TARBALL} (see tests/data/rfc4475/PROVENANCE.md)")
    assert hashlib.sha256(TARBALL.read_bytes()).hexdigest() == TAR_SHA256
    root = tmp_path_factory.mktemp("protos")
    with tarfile.open(TARBALL) as tar:
        tar.extractall(root, filter="data")
    files = sorted((root / "testcases").iterdir())
    assert len(files) == 4527
    return files


def _outcome(data: bytes, deep: bool) -> str:
    try:
        msg = parse_message(data, deep=deep)
        msg.to_bytes()
        return "ok"
    except SipParseError as exc:
        assert 400 <= exc.status < 600
        assert "\r" not in exc.reason and "\n" not in exc.reason
        reply = error_response(exc)
        if reply is not None:
            reply.to_bytes()
        return f"{exc.status} {exc.reason}"


def test_protos_cases_raise_only_sip_parse_error(cases: list[Path]) -> None:
    outcomes: Counter[str] = Counter()
    slowest = 0.0
    started = time.perf_counter()
    for path in cases:
        raw = path.read_bytes()
        for record in records(raw):
            for data in (fill(record), record):
                t0 = time.perf_counter()
                outcomes[_outcome(data, deep=False)] += 1
                _outcome(data, deep=True)
                framer = StreamFramer()
                try:
                    for frame in framer.feed(data):
                        _outcome(frame, deep=False)
                except SipParseError:
                    pass
                slowest = max(slowest, time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    assert slowest < 1.0, f"one case took {slowest:.3f}s"  # generous: shared CI cores
    assert elapsed < 90, f"corpus took {elapsed:.1f}s"
    # the corpus is mostly invalid, but its valid reference case and teardowns are not
    assert outcomes["ok"] > 1000
    assert sum(outcomes.values()) == 2 * 2 * 4527


def test_protos_reference_case_is_valid(cases: list[Path]) -> None:
    invite, teardown = records(cases[0].read_bytes())
    msg = parse_message(fill(invite), deep=True)
    assert isinstance(msg, Request) and msg.method == "INVITE"
    assert msg.from_.tag == "0" and msg.to.tag is None
    assert msg.top_via is not None and msg.top_via.branch == "z9hG4bK000001"
    cancel = parse_message(fill(teardown))
    assert isinstance(cancel, Request) and cancel.method == "CANCEL"
