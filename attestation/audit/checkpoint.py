"""Signed checkpoints: the log's size and head hash, signed, so a shortened log shows.

Theory of operation. The hash chain alone proves that no record was altered, inserted or
removed *before the last record present*; it cannot tell a log whose tail was cut off from
a log that simply ended there. A checkpoint is the statement "log L had COUNT records and
record COUNT hashed to HEAD at TIME", signed with the operator's Ed25519 key. The writer
stores one every ``checkpoint_records`` records or ``checkpoint_interval`` seconds and at
clean shutdown, in the ``checkpoints`` table of the same file. Verification then detects:

- a tail deleted *behind* a stored checkpoint (its COUNT is beyond the last record);
- a rewrite of any record up to a checkpoint, even with every later hash recomputed (the
  record at COUNT no longer hashes to HEAD);
- a forged or edited checkpoint (bad signature, or a key other than the published one).

The honest limit: records appended after the newest checkpoint, and checkpoints
themselves, can be deleted by whoever can write the file, without a trace in the file.
Against that, checkpoints must leave the machine: ``spitwall audit checkpoint`` prints the
newest one in the text form below for publication (a ticket, a mail to the auditor, a
transparency service), and ``spitwall audit verify --checkpoint FILE`` checks the log
against such a copy. The text signed is (UTF-8, ``\\n`` line ends, trailing newline)::

    spitwall attestation log checkpoint v1
    log <log id, 32 hex digits, random per file>
    count <number of records covered>
    head <hash of record COUNT, 64 hex digits; 64 zeros when COUNT is 0>
    time <UTC, YYYY-MM-DDTHH:MM:SS.ffffffZ>

and the published form adds a blank line and ``— <key id> <base64 signature>``, where the
key id is the first 16 hex digits of SHA-256 over the raw 32-byte public key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM = "Ed25519"
NOTE_HEADER = "spitwall attestation log checkpoint v1"
_SIG_PREFIX = "\u2014 "
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX32 = re.compile(r"[0-9a-f]{32}")


class KeyFileError(ValueError):
    """A checkpoint key file that cannot be used; the message names the file and why."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One signed statement of the log's size and head."""

    log_id: str
    count: int
    head_hash: str
    time_utc: str
    key_id: str
    signature: str
    """Base64 of the 64-byte Ed25519 signature over :meth:`note`."""
    public_key: str = ""
    """Base64 of the raw 32-byte public key that signed (as stored in the file)."""
    algorithm: str = ALGORITHM
    n: int | None = None
    """Position in the ``checkpoints`` table (1, 2, …), when read from a file."""

    def note(self) -> bytes:
        """The exact bytes that are signed."""
        return (
            f"{NOTE_HEADER}\nlog {self.log_id}\ncount {self.count}\n"
            f"head {self.head_hash}\ntime {self.time_utc}\n"
        ).encode()

    def to_text(self) -> str:
        """The published form: the note, a blank line, the signature line."""
        return f"{self.note().decode()}\n{_SIG_PREFIX}{self.key_id} {self.signature}\n"

    def check(self, keys: dict[str, Ed25519PublicKey] | None = None) -> str | None:
        """None when the signature holds, else why not.

        With ``keys`` (key id → published public key), the signature must verify under
        the published key of that id; without, under the public key stored alongside the
        checkpoint (which only proves the file is self-consistent).
        """
        if self.algorithm != ALGORITHM:
            return f"unsupported signature algorithm {self.algorithm!r}"
        if keys is not None:
            key = keys.get(self.key_id)
            if key is None:
                known = ", ".join(sorted(keys)) or "none"
                return f"signed by key {self.key_id}, not a given key ({known})"
        else:
            if not self.public_key:
                return f"no public key for key id {self.key_id} (pass the published key)"
            try:
                raw = base64.b64decode(self.public_key, validate=True)
                key = Ed25519PublicKey.from_public_bytes(raw)
            except (binascii.Error, ValueError):
                return "stored public key is malformed"
            if key_id(key) != self.key_id:
                return "stored public key does not match the key id"
        try:
            sig = base64.b64decode(self.signature, validate=True)
            key.verify(sig, self.note())
        except (binascii.Error, ValueError, InvalidSignature):
            return "signature invalid"
        return None

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Read the published form back; ValueError names what is wrong."""
        body, sep, sig_line = text.strip("\n").rpartition("\n\n")
        lines = body.split("\n")
        if not sep or len(lines) != 5 or lines[0] != NOTE_HEADER:
            raise ValueError("not a spitwall checkpoint (expected the 5-line note and a signature)")
        fields: dict[str, str] = {}
        for line, name in zip(lines[1:], ("log", "count", "head", "time"), strict=True):
            label, _, value = line.partition(" ")
            if label != name:
                raise ValueError(f"checkpoint line {line!r}: expected {name!r}")
            fields[name] = value
        if not sig_line.startswith(_SIG_PREFIX):
            raise ValueError("checkpoint signature line must start with an em dash and a space")
        parts = sig_line[len(_SIG_PREFIX) :].split(" ")
        if len(parts) != 2:
            raise ValueError("checkpoint signature line must be '— KEYID SIGNATURE'")
        if not fields["count"].isdigit():
            raise ValueError(f"checkpoint count {fields['count']!r} is not a number")
        if not _HEX64.fullmatch(fields["head"]) or not _HEX32.fullmatch(fields["log"]):
            raise ValueError(
                "checkpoint log id or head hash is not lowercase hex of the right size"
            )
        return cls(
            log_id=fields["log"],
            count=int(fields["count"]),
            head_hash=fields["head"],
            time_utc=fields["time"],
            key_id=parts[0],
            signature=parts[1],
        )


def key_id(key: Ed25519PublicKey) -> str:
    """First 16 hex digits of SHA-256 over the raw public key."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


class CheckpointSigner:
    """Signs checkpoints with one Ed25519 private key (which it never reveals)."""

    __slots__ = ("_key", "key_id", "public_key_b64")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        public = key.public_key()
        self.key_id = key_id(public)
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public_key_b64 = base64.b64encode(raw).decode("ascii")

    def __repr__(self) -> str:
        return f"CheckpointSigner(key_id={self.key_id!r})"

    def sign(self, log_id: str, count: int, head_hash: str, time: float) -> Checkpoint:
        unsigned = Checkpoint(
            log_id=log_id,
            count=count,
            head_hash=head_hash,
            time_utc=datetime.fromtimestamp(time, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            key_id=self.key_id,
            signature="",
            public_key=self.public_key_b64,
        )
        sig = base64.b64encode(self._key.sign(unsigned.note())).decode("ascii")
        return Checkpoint(
            log_id=log_id,
            count=count,
            head_hash=head_hash,
            time_utc=unsigned.time_utc,
            key_id=self.key_id,
            signature=sig,
            public_key=self.public_key_b64,
        )


def load_signing_key(path: Path, *, create: bool = True) -> tuple[CheckpointSigner, bool]:
    """The signer for the PEM (PKCS#8) Ed25519 key at ``path``, and whether it was created.

    A missing key is generated (when ``create``) with mode 0600, and its public key written
    beside it as ``<path>.pub`` (PEM) for auditors. Errors are :class:`KeyFileError`.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if not create:
            raise KeyFileError(f"{path}: checkpoint key not found") from None
        return _create_key(path), True
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read checkpoint key: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: checkpoint key must be Ed25519, got {type(key).__name__}")
    return CheckpointSigner(key), False


def _create_key(path: Path) -> CheckpointSigner:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        pub = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        Path(f"{path}.pub").write_bytes(pub)
    except FileExistsError:
        # Another process created it between our read and write: use theirs.
        signer, _ = load_signing_key(path, create=False)
        return signer
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot create checkpoint key: {exc.strerror}") from None
    return CheckpointSigner(key)


def load_public_key(data: bytes, name: str = "key") -> Ed25519PublicKey:
    """A published Ed25519 public key: PEM public or private key, or raw base64/hex."""
    text = data.strip()
    try:
        if text.startswith(b"-----BEGIN"):
            if b"PRIVATE KEY" in text.split(b"\n", 1)[0]:
                priv = serialization.load_pem_private_key(text, password=None)
                if isinstance(priv, Ed25519PrivateKey):
                    return priv.public_key()
                raise KeyFileError(f"{name}: not an Ed25519 key ({type(priv).__name__})")
            pub = serialization.load_pem_public_key(text)
            if isinstance(pub, Ed25519PublicKey):
                return pub
            raise KeyFileError(f"{name}: not an Ed25519 key ({type(pub).__name__})")
        raw = (
            bytes.fromhex(text.decode())
            if len(text) == 64
            else base64.b64decode(text, validate=True)
        )
        return Ed25519PublicKey.from_public_bytes(raw)
    except KeyFileError:
        raise
    except (ValueError, TypeError, UnicodeDecodeError, binascii.Error) as exc:
        raise KeyFileError(f"{name}: not an Ed25519 public key ({exc})") from None
