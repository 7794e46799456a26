"""The attestation-log record: normalisation, the Verdict constructor, canonical encoding.

Also home of the helpers the other test_audit_* modules share (``sample_entry``,
``build_log``): real SQLite files in tmp dirs, written through the real writer.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attestation.audit import AuditEntry, AuditLog, CheckpointSigner, load_signing_key
from attestation.audit.record import (
    COLUMNS,
    GENESIS_HASH,
    HASHED_COLUMNS,
    canonical_bytes,
    decode_canonical,
    entry_columns,
    entry_from_row,
    record_hash,
    seal,
)
from attestation.audit.schema import SCHEMA, _statements
from attestation.model import Verdict, Verstat

T0 = 1_764_345_600.0  # 2025-11-28T16:00:00Z
VERSTATS = ("TN-Validation-Passed", "TN-Validation-Failed", "No-TN-Validation")
ACTIONS = ("forward", "forward_tagged", "challenge", "voicemail", "reject")


def sample_entry(i: int, t0: float = T0) -> AuditEntry:
    """A varied, deterministic entry; record i's Identity header holds ``payload-{i:06d}``."""
    verstat = VERSTATS[i % 3]
    return AuditEntry(
        time=t0 + i * 60.0,  # one a minute
        kind="decision",
        call_id=f"call-{i}@example.test",
        source=f"192.0.2.{i % 5}:{5060 + i % 2}",
        orig_tn=f"1215555{i % 7:04d}",
        dest_tn=f"1609555{i % 3:04d}",
        identity_headers=(f"eyJhbGciOiJFUzI1NiJ9.payload-{i:06d}.c2ln;info=<https://x.test/c>",),
        passport_header={"alg": "ES256", "ppt": "shaken", "typ": "passport"},
        passport_claims={"attest": "ABC"[i % 3], "iat": int(t0) + i, "orig": {"tn": "1"}},
        x5u="https://cert.example.test/sp.pem",
        cert_fingerprint=hashlib.sha256(str(i % 4).encode()).hexdigest(),
        spc=f"SPC{i % 4}",
        issuer="CN=Test STI-CA",
        attest="ABC"[i % 3] if verstat != "No-TN-Validation" else None,
        origid=f"origid-{i % 6}",
        verstat=verstat,
        reason=None if verstat == "TN-Validation-Passed" else "bad_signature",
        sip_code=None if verstat == "TN-Validation-Passed" else 438,
        score=float(i % 101),
        reasons=(("shaken.attest", -1.5, "attest A"), ("pattern.fanout", 0.25, "")),
        action=ACTIONS[i % 5],
        code=607 if ACTIONS[i % 5] == "reject" else None,
        elapsed_ms=1.25 + i % 10,
        timing={"verify": 0.5, "score": 0.125},
        details={"n": i},
    )


async def build_log(
    path: Path,
    n: int,
    *,
    signer: CheckpointSigner | None = None,
    checkpoint_records: int = 0,
    start: int = 0,
) -> AuditLog:
    """Write entries ``start..start+n-1`` through a real AuditLog and close it."""
    log = AuditLog(path, signer=signer, batch_ms=1.0, checkpoint_records=checkpoint_records)
    await log.start()
    for i in range(start, start + n):
        log.append(sample_entry(i))
    await log.close()
    return log


def signer_in(directory: Path) -> CheckpointSigner:
    return load_signing_key(directory / "checkpoint.key")[0]


# ---- normalisation and the Verdict constructor ------------------------------------------


def test_entry_normalises_what_it_is_given() -> None:
    e = AuditEntry(
        time=5,
        score=-0.0,
        identity_headers=["a", "b\udcff"],  # type: ignore[arg-type]
        reasons=[["sig", 1, "d"]],  # type: ignore[arg-type]
        details={"b": b"\x00\xff", "nan": float("nan"), 1: (1, 2), "set": {3, 1}},  # type: ignore[dict-item]
    )
    assert e.time == 5.0 and isinstance(e.time, float)
    assert e.score == 0.0 and math.copysign(1.0, e.score) == 1.0
    assert e.identity_headers == ("a", "b\\udcff")
    assert e.reasons == (("sig", 1.0, "d"),)
    assert e.details == {"b": "AP8", "nan": "nan", "1": [1, 2], "set": [1, 3]}


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"time": float("inf")}, ValueError),
        ({"time": "now"}, TypeError),
        ({"time": 1.0, "score": float("nan")}, ValueError),
        ({"time": 1.0, "code": "607"}, TypeError),
        ({"time": 1.0, "code": True}, TypeError),
        ({"time": 1.0, "identity_headers": "a single string"}, TypeError),
        ({"time": 1.0, "reasons": [object()]}, TypeError),
        ({"time": 1e300}, ValueError),
    ],
)
def test_entry_rejects_programming_errors_with_a_clear_message(
    kwargs: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error, match="AuditEntry"):
        AuditEntry(**kwargs)  # type: ignore[arg-type]


def test_from_verdict_maps_every_field() -> None:
    v = Verdict(
        verstat=Verstat.FAILED,
        attest="B",
        origid="o-1",
        spc="1234",
        reason="stale",
        sip_code=403,
        sip_text="Stale Date",
        orig_tn="12155551212",
        dest_tns=("16095550000", "16095550001"),
        x5u="https://x/c.pem",
        cert_fingerprint="ab" * 32,
        issuer="CN=CA",
        details={"header": {"alg": "ES256"}, "claims": {"iat": 1}, "elapsed_ms": 0.7, "k": 1},
    )

    class R:  # reputation.model.Reason-like, accepted by duck typing
        signal, weight, detail = "list.user_block", 5.0, "blocked"

    e = AuditEntry.from_verdict(
        v,
        time=T0,
        call_id="c1",
        source="192.0.2.1:5060",
        identity_headers=["tok;info=<https://x/c.pem>"],
        score=97.5,
        reasons=[("shaken.failed", 2.0, "stale"), R()],
        action="reject",
        code=607,
        elapsed_ms=3.5,
    )
    assert (e.kind, e.verstat, e.attest, e.origid, e.spc) == (
        "decision", "TN-Validation-Failed", "B", "o-1", "1234",
    )  # fmt: skip
    assert (e.reason, e.sip_code, e.orig_tn, e.dest_tn) == (
        "stale", 403, "12155551212", "16095550000",
    )  # fmt: skip
    assert e.passport_header == {"alg": "ES256"} and e.passport_claims == {"iat": 1}
    assert e.timing == {"verify": 0.7}
    assert e.details == {"k": 1, "sip_text": "Stale Date"}
    assert e.reasons == (("shaken.failed", 2.0, "stale"), ("list.user_block", 5.0, "blocked"))
    assert (e.action, e.code, e.elapsed_ms, e.score) == ("reject", 607, 3.5, 97.5)
    only = AuditEntry.from_verdict(Verdict(verstat=Verstat.NONE), time=T0)
    assert only.kind == "verification" and only.passport_header is None


# ---- canonical encoding -----------------------------------------------------------------


def test_canonical_encoding_is_the_documented_one() -> None:
    row = seal(entry_columns(AuditEntry(time=1.5, call_id="é\n")), 1, GENESIS_HASH)
    data = canonical_bytes(row)
    text = data.decode("utf-8")
    assert text.startswith('{"action":null,"attest":null,"call_id":"é\\n",')
    assert " " not in text.replace("T", "")  # no whitespace outside strings
    assert list(json.loads(text)) == sorted(HASHED_COLUMNS) and "hash" not in json.loads(text)
    assert row["hash"] == hashlib.sha256(data).hexdigest() == record_hash(row)
    assert '"prev_hash":"' + "0" * 64 + '"' in text and '"time":1.5' in text


json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.binary(max_size=8),
)
json_values = st.recursive(
    json_leaf,
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3)
    ),
    max_leaves=8,
)
opt_text = st.none() | st.text(max_size=12)
finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)
entries = st.builds(
    AuditEntry,
    time=st.floats(min_value=0, max_value=4e9, allow_nan=False),
    kind=st.sampled_from(["decision", "verification", "loss"]),
    call_id=st.text(max_size=20),
    source=st.text(max_size=20),
    orig_tn=opt_text,
    dest_tn=opt_text,
    identity_headers=st.lists(st.text(max_size=30), max_size=3).map(tuple),
    passport_header=st.none() | st.dictionaries(st.text(max_size=5), json_values, max_size=3),
    passport_claims=st.none() | st.dictionaries(st.text(max_size=5), json_values, max_size=3),
    x5u=opt_text,
    spc=opt_text,
    verstat=opt_text,
    reason=opt_text,
    sip_code=st.none() | st.integers(min_value=100, max_value=699),
    score=st.none() | finite,
    reasons=st.lists(st.tuples(st.text(max_size=8), finite, st.text(max_size=8)), max_size=3).map(
        tuple
    ),
    action=opt_text,
    code=st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1),
    elapsed_ms=st.none() | finite,
    timing=st.dictionaries(st.text(max_size=5), finite, max_size=3),
    details=st.dictionaries(st.text(max_size=5), json_values, max_size=3),
)


def _insert(conn: sqlite3.Connection, row: dict[str, object]) -> dict[str, object]:
    conn.execute(
        f"INSERT INTO records ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
        [row[c] for c in COLUMNS],
    )
    got = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM records WHERE seq = ?", (row["seq"],))
    return dict(zip(COLUMNS, got.fetchone(), strict=True))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries, st.integers(min_value=1, max_value=2**40))
def test_canonical_encoding_is_deterministic_injective_and_survives_sqlite(
    entry: AuditEntry, seq: int
) -> None:
    prev = hashlib.sha256(str(seq).encode()).hexdigest()
    row = seal(entry_columns(entry), seq, prev)
    data = canonical_bytes(row)
    # deterministic: the same value, rebuilt or copied, encodes to the same bytes
    assert canonical_bytes(seal(entry_columns(copy.deepcopy(entry)), seq, prev)) == data
    # injective: the bytes decode back to this very entry, seq and prev_hash
    decoded = decode_canonical(data)
    assert entry_from_row(decoded) == entry
    assert (decoded["seq"], decoded["prev_hash"]) == (seq, prev)
    assert canonical_bytes(seal(entry_columns(entry_from_row(decoded)), seq, prev)) == data
    # what SQLite gives back hashes the same
    conn = sqlite3.connect(":memory:")
    for statement in _statements(SCHEMA):
        if "TRIGGER" not in statement:
            conn.execute(statement)
    stored = _insert(conn, row)
    assert record_hash(stored) == row["hash"]


@given(entries, entries)
@settings(max_examples=200, deadline=None)
def test_different_entries_never_share_an_encoding(a: AuditEntry, b: AuditEntry) -> None:
    ea = canonical_bytes(seal(entry_columns(a), 1, GENESIS_HASH))
    eb = canonical_bytes(seal(entry_columns(b), 1, GENESIS_HASH))
    assert (ea == eb) == (entry_columns(a) == entry_columns(b))


async def test_real_verdicts_from_the_verifier_land_in_the_log(tmp_path: Path) -> None:
    """The STI-VS's own Verdicts (valid and failing) through from_verdict into a real log."""
    from attestation.audit import AuditReader

    from .stivs import DEST, ORIG, ORIGID, X5U, call, shaken, verifier

    vs = verifier()
    good = call(shaken(), call_id="good@test")
    bad = call(shaken(orig="19995550000"), call_id="bad@test")
    log = AuditLog(tmp_path / "a.sqlite3")
    await log.start()
    for inp, action, code in ((good, "forward", None), (bad, "reject", 438)):
        v = await vs.verify(inp)
        log.append(
            AuditEntry.from_verdict(
                v,
                time=inp.now,
                call_id=inp.call_id,
                source="192.0.2.7:5060",
                identity_headers=inp.identity_headers,
                score=12.5,
                reasons=[("shaken.attest_a", -2.0, "A")],
                action=action,
                code=code,
                elapsed_ms=0.9,
            )
        )
    await log.close()
    reader = AuditReader(tmp_path / "a.sqlite3")
    assert reader.verify().ok
    ok, failed = (r.as_dict() for r in reader.iter_export())
    assert (ok["verstat"], ok["attest"], ok["origid"], ok["x5u"]) == (
        "TN-Validation-Passed", "A", ORIGID, X5U,
    )  # fmt: skip
    assert (ok["orig_tn"], ok["dest_tn"], ok["spc"]) == (ORIG, DEST, "1234")
    assert ok["passport_claims"]["origid"] == ORIGID and ok["passport_header"]["x5u"] == X5U
    assert ok["identity_headers"] == list(good.identity_headers) and "verify" in ok["timing"]
    assert failed["verstat"] == "TN-Validation-Failed" and failed["reason"] is not None
    assert (failed["sip_code"], failed["action"], failed["code"]) == (438, "reject", 438)
