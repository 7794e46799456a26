"""RFC 8226 TNAuthList: the certificate extension that says which telephone numbers (or
which service provider) a STIR certificate may sign for.

Why a hand-written DER codec: the structure is tiny, the input is attacker-controlled
(it arrives inside a certificate fetched from an arbitrary x5u URL) and the verifier needs
*specific* errors, not a generic "could not decode". The reader is strict DER: definite
minimal lengths, no trailing bytes, exact tags, IA5String characters only, minimal
INTEGER encoding. Every malformed input yields a :class:`TNAuthListError` value.

ASN.1 (RFC 8226 §9, module ``TN-Module-2016``, ``DEFINITIONS EXPLICIT TAGS``)::

    id-pe-TNAuthList OBJECT IDENTIFIER ::= { id-pe 26 }      -- 1.3.6.1.5.5.7.1.26
    TNAuthorizationList ::= SEQUENCE SIZE (1..MAX) OF TNEntry
    TNEntry ::= CHOICE {
        spc   [0] ServiceProviderCode,
        range [1] TelephoneNumberRange,
        one   [2] TelephoneNumber }
    ServiceProviderCode ::= IA5String
    TelephoneNumberRange ::= SEQUENCE { start TelephoneNumber, count INTEGER (2..MAX), ... }
    TelephoneNumber ::= IA5String (SIZE (1..15)) (FROM ("0123456789#*"))

Because the module uses EXPLICIT tags each choice is a constructed context tag wrapping the
universal TLV: a single SPC "1" is ``30 05 a0 03 16 01 31``.
"""

from __future__ import annotations

from dataclasses import dataclass

OID_TNAUTHLIST = "1.3.6.1.5.5.7.1.26"
"""id-pe-TNAuthList (RFC 8226 §9)."""

_SEQUENCE = 0x30
_IA5STRING = 0x16
_INTEGER = 0x02
_TAG_SPC = 0xA0
_TAG_RANGE = 0xA1
_TAG_ONE = 0xA2
_UNTAGGED = {0x30: "SEQUENCE", 0x16: "IA5String", 0x13: "PrintableString", 0x0C: "UTF8String"}
"""Universal types seen where a context tag belongs (some deployed certificates do this)."""
_TN_CHARS = frozenset("0123456789#*")
_MAX_INPUT = 64 * 1024
"""Refuse absurdly large extension values outright (a real one is tens of bytes)."""


@dataclass(frozen=True, slots=True)
class ServiceProviderCode:
    """``spc [0]``: the SHAKEN Service Provider Code (e.g. an OCN such as ``"1234"``)."""

    code: str


@dataclass(frozen=True, slots=True)
class TelephoneNumberRange:
    """``range [1]``: ``count`` consecutive numbers of the same length starting at ``start``."""

    start: str
    count: int

    def covers(self, tn: str) -> bool:
        if len(tn) != len(self.start) or not tn.isdigit() or not self.start.isdigit():
            return False
        return int(self.start) <= int(tn) < int(self.start) + self.count


@dataclass(frozen=True, slots=True)
class TelephoneNumber:
    """``one [2]``: a single telephone number (digits, ``#``, ``*``)."""

    number: str


TNEntry = ServiceProviderCode | TelephoneNumberRange | TelephoneNumber


@dataclass(frozen=True, slots=True)
class TNAuthList:
    """A decoded TNAuthorizationList, entries in certificate order."""

    entries: tuple[TNEntry, ...]

    @property
    def spcs(self) -> tuple[str, ...]:
        return tuple(e.code for e in self.entries if isinstance(e, ServiceProviderCode))

    def covers_tn(self, tn: str) -> bool:
        """True when a TN or range entry authorises ``tn`` (RFC 9060 delegate certificates).

        SPC entries authorise nothing here: no public SPC→TN registry exists (rule 24)."""
        for e in self.entries:
            if isinstance(e, TelephoneNumber) and e.number == tn:
                return True
            if isinstance(e, TelephoneNumberRange) and e.covers(tn):
                return True
        return False

    def within(self, parent: TNAuthList) -> bool:
        """True when every entry here is inside ``parent``'s scope (RFC 9060: a delegate
        certificate's scope must lie within its issuer's)."""
        for e in self.entries:
            if isinstance(e, ServiceProviderCode):
                ok = e.code in parent.spcs
            elif isinstance(e, TelephoneNumber):
                ok = parent.covers_tn(e.number)
            else:
                ok = any(
                    isinstance(p, TelephoneNumberRange)
                    and len(p.start) == len(e.start)
                    and int(p.start) <= int(e.start)
                    and int(e.start) + e.count <= int(p.start) + p.count
                    for p in parent.entries
                ) or (
                    e.count <= 1000
                    and all(
                        parent.covers_tn(str(int(e.start) + i).zfill(len(e.start)))
                        for i in range(e.count)
                    )
                )
            if not ok:
                return False
        return True

    def to_der(self) -> bytes:
        return encode(self)


@dataclass(frozen=True, slots=True)
class TNAuthListError:
    """Why a TNAuthList value could not be decoded (``offset`` into the DER input)."""

    message: str
    offset: int = 0

    def __str__(self) -> str:
        return f"TNAuthList: {self.message} at byte {self.offset}"


class _Malformed(Exception):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


# --- encoding ---------------------------------------------------------------------------


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _len(len(value)) + value


def _ia5(text: str) -> bytes:
    return _tlv(_IA5STRING, text.encode("ascii"))


def _int(n: int) -> bytes:
    body = n.to_bytes(n.bit_length() // 8 + 1, "big", signed=True)
    return _tlv(_INTEGER, body)


def _check_tn(tn: str) -> None:
    if not 1 <= len(tn) <= 15 or not set(tn) <= _TN_CHARS:
        raise ValueError(f"invalid TelephoneNumber {tn!r}: 1-15 of 0-9 # *")


def encode(tnauth: TNAuthList | list[TNEntry] | tuple[TNEntry, ...]) -> bytes:
    """DER of a TNAuthorizationList. Raises ValueError for values the ASN.1 forbids
    (an empty list, a non-ASCII SPC, a bad TN, a range count below 2): the encoder is for
    our own tooling, where a bad value is a programming error."""
    entries = tnauth.entries if isinstance(tnauth, TNAuthList) else tuple(tnauth)
    if not entries:
        raise ValueError("TNAuthList needs at least one entry")
    out = bytearray()
    for e in entries:
        if isinstance(e, ServiceProviderCode):
            if not e.code.isascii():
                raise ValueError(f"SPC must be IA5 (ASCII): {e.code!r}")
            out += _tlv(_TAG_SPC, _ia5(e.code))
        elif isinstance(e, TelephoneNumberRange):
            _check_tn(e.start)
            if e.count < 2:
                raise ValueError("TelephoneNumberRange count must be >= 2")
            out += _tlv(_TAG_RANGE, _tlv(_SEQUENCE, _ia5(e.start) + _int(e.count)))
        else:
            _check_tn(e.number)
            out += _tlv(_TAG_ONE, _ia5(e.number))
    return _tlv(_SEQUENCE, bytes(out))


def encode_spcs(*spcs: str) -> bytes:
    """Shorthand for the SHAKEN case: a TNAuthList of SPC entries."""
    return encode([ServiceProviderCode(s) for s in spcs])


# --- decoding ---------------------------------------------------------------------------


def _read_tlv(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """Return (tag, value_start, value_end) of the TLV at ``pos``; strict DER lengths."""
    if pos >= end:
        raise _Malformed("truncated: expected a tag", pos)
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise _Malformed(f"high-tag-number form 0x{tag:02x} not allowed here", pos)
    if pos + 1 >= end:
        raise _Malformed("truncated: expected a length", pos + 1)
    first = data[pos + 1]
    p = pos + 2
    if first < 0x80:
        length = first
    elif first == 0x80:
        raise _Malformed("indefinite length is not DER", pos + 1)
    else:
        n = first & 0x7F
        if n > 4:
            raise _Malformed(f"length of {n} bytes is too long", pos + 1)
        if p + n > end:
            raise _Malformed("truncated length", pos + 1)
        body = data[p : p + n]
        if body[0] == 0:
            raise _Malformed("non-minimal length (leading zero)", pos + 1)
        length = int.from_bytes(body, "big")
        if length < 0x80:
            raise _Malformed("non-minimal length (long form for < 128)", pos + 1)
        p += n
    if p + length > end:
        raise _Malformed(f"length {length} runs past the end of its container", pos + 1)
    return tag, p, p + length


def _read_ia5(data: bytes, pos: int, end: int, what: str) -> tuple[str, int]:
    tag, vs, ve = _read_tlv(data, pos, end)
    if tag != _IA5STRING:
        raise _Malformed(f"{what}: expected IA5String (0x16), got tag 0x{tag:02x}", pos)
    raw = data[vs:ve]
    if any(b > 0x7F for b in raw):
        raise _Malformed(f"{what}: IA5String holds a non-ASCII byte", vs)
    return raw.decode("ascii"), ve


def _read_tn(data: bytes, pos: int, end: int, what: str) -> tuple[str, int]:
    tn, nxt = _read_ia5(data, pos, end, what)
    if not 1 <= len(tn) <= 15:
        raise _Malformed(f"{what}: TelephoneNumber must be 1-15 characters, got {len(tn)}", pos)
    if not set(tn) <= _TN_CHARS:
        raise _Malformed(f"{what}: TelephoneNumber may hold only 0-9 # *: {tn!r}", pos)
    return tn, nxt


def _read_int(data: bytes, pos: int, end: int) -> tuple[int, int]:
    tag, vs, ve = _read_tlv(data, pos, end)
    if tag != _INTEGER:
        raise _Malformed(f"range count: expected INTEGER (0x02), got tag 0x{tag:02x}", pos)
    body = data[vs:ve]
    if not body:
        raise _Malformed("range count: empty INTEGER", pos)
    if len(body) > 1 and (
        (body[0] == 0 and body[1] < 0x80) or (body[0] == 0xFF and body[1] >= 0x80)
    ):
        raise _Malformed("range count: non-minimal INTEGER", vs)
    if len(body) > 8:
        raise _Malformed("range count: INTEGER too large", vs)
    return int.from_bytes(body, "big", signed=True), ve


def _decode(data: bytes) -> TNAuthList:
    if len(data) > _MAX_INPUT:
        raise _Malformed(f"{len(data)} bytes is far too large for a TNAuthList", 0)
    tag, vs, ve = _read_tlv(data, 0, len(data))
    if tag != _SEQUENCE:
        raise _Malformed(f"expected SEQUENCE (0x30), got tag 0x{tag:02x}", 0)
    if ve != len(data):
        raise _Malformed(f"{len(data) - ve} trailing bytes after the SEQUENCE", ve)
    entries: list[TNEntry] = []
    pos = vs
    while pos < ve:
        etag, evs, eve = _read_tlv(data, pos, ve)
        entry: TNEntry
        if etag == _TAG_SPC:
            code, inner_end = _read_ia5(data, evs, eve, "spc")
            entry = ServiceProviderCode(code)
        elif etag == _TAG_ONE:
            tn, inner_end = _read_tn(data, evs, eve, "one")
            entry = TelephoneNumber(tn)
        elif etag == _TAG_RANGE:
            stag, svs, sve = _read_tlv(data, evs, eve)
            if stag != _SEQUENCE:
                raise _Malformed(f"range: expected SEQUENCE (0x30), got tag 0x{stag:02x}", evs)
            start, p = _read_tn(data, svs, sve, "range start")
            count, p = _read_int(data, p, sve)
            if count < 2:
                raise _Malformed(f"range count must be >= 2, got {count}", p)
            while p < sve:  # extension additions ("...") are skipped, but must be DER
                _, _, p = _read_tlv(data, p, sve)
            entry = TelephoneNumberRange(start, count)
            inner_end = sve
        elif etag in _UNTAGGED:
            raise _Malformed(
                f"untagged {_UNTAGGED[etag]} entry (tag 0x{etag:02x}): TNEntry choices are "
                "EXPLICIT [0] spc, [1] range, [2] one",
                pos,
            )
        else:
            raise _Malformed(f"unknown TNEntry tag 0x{etag:02x} (expected a0, a1 or a2)", pos)
        if inner_end != eve:
            raise _Malformed(f"{eve - inner_end} stray bytes inside a TNEntry", inner_end)
        entries.append(entry)
        pos = eve
    if not entries:
        raise _Malformed("empty TNAuthList (SIZE (1..MAX))", vs)
    return TNAuthList(tuple(entries))


def decode(data: bytes) -> TNAuthList | TNAuthListError:
    """Decode the DER value of the TNAuthList extension; never raises on bad input."""
    try:
        return _decode(bytes(data))
    except _Malformed as exc:
        return TNAuthListError(exc.message, exc.offset)
