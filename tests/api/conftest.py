"""A real spitwall HTTP app on an ephemeral 127.0.0.1 port, with a real Store on a tmp SQLite
file, a real attestation log file, and four accounts (two subscribers, an admin, an auditor).

The app is built exactly as the runtime builds it: ``spitwall.runtime.build_http_app`` with
the API's extension from ``api.app.build_api``.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry, Counter

from api.app import build_api
from api.config import HttpConfig
from attestation.audit import (
    AuditEntry,
    AuditLog,
    AuditReader,
    load_public_key,
    load_signing_key,
)
from reputation.config import ReputationConfig, StoreConfig
from reputation.model import CallFacts, Reason, Score
from reputation.store import Store
from reputation.users import User
from spitwall.runtime import build_http_app

T0 = 1_764_300_000.0  # 2025-11-28T03:20:00Z
ALICE_TN, BOB_TN = "15550001111", "15550002222"
CHALLENGE_TOKEN = "challenge-report-token-for-tests"
ACTIONS = ("forward", "forward_tagged", "challenge", "voicemail", "reject")
VERSTATS = ("TN-Validation-Passed", "TN-Validation-Failed", "No-TN-Validation")


def audit_entry(i: int) -> AuditEntry:
    verstat = VERSTATS[i % 3]
    return AuditEntry(
        time=T0 + i * 3600.0,
        kind="decision",
        call_id=f"call-{i}@example.test",
        source=f"192.0.2.{i % 4}:5060",
        orig_tn=f"1215555{i % 7:04d}",
        dest_tn=ALICE_TN if i % 2 else BOB_TN,
        identity_headers=(f"eyJhbGciOiJFUzI1NiJ9.payload-{i}.c2ln;info=<https://x.test/c>",),
        passport_header={"alg": "ES256", "ppt": "shaken", "typ": "passport"},
        passport_claims={"attest": "ABC"[i % 3], "iat": int(T0) + i, "origid": f"o-{i % 3}"},
        x5u="https://cert.example.test/sp.pem",
        cert_fingerprint=hashlib.sha256(str(i % 4).encode()).hexdigest(),
        spc=f"SPC{i % 4}",
        issuer="CN=Test STI-CA",
        attest="ABC"[i % 3] if verstat != "No-TN-Validation" else None,
        origid=f"o-{i % 3}",
        verstat=verstat,
        reason=None if verstat == "TN-Validation-Passed" else "bad_signature",
        sip_code=None if verstat == "TN-Validation-Passed" else 438,
        score=float(i * 7 % 101),
        reasons=(("shaken.attest", -1.5, "attest A"),),
        action=ACTIONS[i % 5],
        code=607 if ACTIONS[i % 5] == "reject" else None,
        elapsed_ms=1.5,
    )


AUDIT_N = 60


@pytest.fixture(scope="session")
def audit_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A real, signed attestation log of AUDIT_N records (built once, read-only after)."""
    d = tmp_path_factory.mktemp("audit")
    db = d / "attestation.sqlite3"
    signer = load_signing_key(d / "checkpoint.key")[0]

    async def build() -> None:
        log = AuditLog(db, signer=signer, batch_ms=1.0, checkpoint_records=25)
        await log.start()
        for i in range(AUDIT_N):
            log.append(audit_entry(i))
        await log.close()

    asyncio.run(build())
    return db, load_public_key((d / "checkpoint.key.pub").read_bytes())


@dataclass
class Env:
    client: TestClient[Any, Any]
    store: Store
    data_dir: Path
    tokens: dict[str, str]
    users: dict[str, User]
    registry: CollectorRegistry
    extra: dict[str, Any] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return str(self.client.make_url(path))

    async def call(
        self, method: str, path: str, who: str | None = None, **kw: Any
    ) -> ClientResponse:
        headers = dict(kw.pop("headers", {}) or {})
        if who is not None:
            headers["Authorization"] = f"Bearer {self.tokens[who]}"
        return await self.client.request(method, path, headers=headers, **kw)

    async def json(
        self, method: str, path: str, who: str | None = None, status: int = 200, **kw: Any
    ) -> Any:
        r = await self.call(method, path, who, **kw)
        body = await r.text()
        assert r.status == status, f"{method} {path} → {r.status} {body}"
        return await r.json() if body else None

    def record_call(
        self,
        user: str,
        caller: str,
        *,
        action: str = "reject",
        score: float = 95.0,
        call_id: str | None = None,
        t: float | None = None,
    ) -> str:
        """Insert a screened call as the proxy would (through the store's feedback API)."""
        u = self.users[user]
        n = self.extra.setdefault("calls", 0) + 1
        self.extra["calls"] = n
        cid = call_id or f"test-call-{n}@example.test"
        facts = CallFacts(
            call_id=cid,
            caller=caller,
            callee=u.tns[0],
            time=t if t is not None else T0 + n,
            source_ip="192.0.2.7",
            verstat="TN-Validation-Failed",
            attest="C",
            origid="origid-x",
            spc="SPC9",
        )
        reason = (
            Reason("list.user_block", 8.0, f"+{caller} on your block list")
            if action == "reject"
            else Reason(
                "shaken.attest_c", 2.0, "attestation C: the carrier does not know the caller"
            )
        )
        self.store.feedback.record_call(
            facts,
            user_id=u.id,
            score=Score(score, (reason,)),
            action=action,
        )
        return cid

    async def flush(self) -> None:
        """Wait until fire-and-forget writes (call records) are committed."""
        await self.store.write(lambda db: None)


HTTP = HttpConfig(
    listen=None,
    max_json_bytes=4096,
    max_csv_bytes=20_000,
    max_greeting_bytes=64_000,
    max_greeting_seconds=3.0,
    login_max_failures=3,
    login_window=60.0,
    page_size=5,
)


@pytest.fixture
async def env(tmp_path: Path, audit_db: tuple[Path, Any]) -> AsyncIterator[Env]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    store = Store.open(data_dir / "reputation.sqlite3", StoreConfig(batch_window=0.005))
    tokens: dict[str, str] = {}
    users: dict[str, User] = {}
    for name, role, tns in (
        ("alice", "user", [f"+{ALICE_TN}"]),
        ("bob", "user", [f"+{BOB_TN}"]),
        ("root", "admin", []),
        ("audrey", "auditor", []),
    ):
        r = await store.add_user(
            name, role, tns=tns, password="bob-password-1" if name == "bob" else None
        )
        assert not hasattr(r, "field"), r
        users[name], tokens[name] = r  # type: ignore[misc]
    registry = CollectorRegistry()
    Counter("spitwall_test_calls", "calls seen", registry=registry).inc(3)
    db, public_key = audit_db
    ext = build_api(
        store,
        AuditReader(db),
        HTTP,
        data_dir=data_dir,
        reputation=ReputationConfig(),
        challenge_token=CHALLENGE_TOKEN,
        registry=registry,
        audit_keys=[public_key],
    )
    app = build_http_app(registry, lambda: {"status": "ok"}, [ext])
    client: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    try:
        yield Env(client, store, data_dir, tokens, users, registry)
    finally:
        await client.close()
        store.close()
