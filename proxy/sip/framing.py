"""Cut a TCP/TLS byte stream into SIP messages (RFC 3261 §18.3, RFC 5626 §3.5.1).

Why a separate sans-IO framer: over a stream, message boundaries exist only through
Content-Length, and a transport must get the same messages whether the peer's bytes
arrive whole or one at a time. The framer holds the partial message, strips CRLF
keep-alives between messages, counts RFC 5626 double-CRLF pings (the transport answers
each with a single CRLF "pong"), and fails the stream — for good — when framing is
impossible: no Content-Length (mandatory on streams, §20.14) or a message larger than
``Limits.max_message_size``.
"""

from __future__ import annotations

import re

from .errors import SipFramingError, SipParseError
from .grammar import bounded_int
from .parser import DEFAULT_LIMITS, Limits, parse_message

_CL_RE = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(.*?)[ \t]*\r?$", re.I | re.M)
_FOLD_RE = re.compile(rb"\r?\n[ \t]+")
_DIGITS_RE = re.compile(rb"[0-9]+\Z")


class StreamFramer:
    """Feed bytes in, get complete message byte strings out (each ready for
    :func:`parse_message`).

    ``feed`` raises :class:`SipFramingError` when the stream cannot be framed; every later
    ``feed`` raises it again. Answer with ``error_response(err)`` if possible, then close.
    """

    __slots__ = ("_buf", "_crlf", "_error", "_limits", "_need", "_pings", "_scan", "_started")

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._buf = bytearray()
        self._started = False
        self._scan = 0
        self._need: int | None = None
        self._crlf = 0
        self._pings = 0
        self._error: SipFramingError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete message."""
        return len(self._buf)

    @property
    def idle(self) -> bool:
        """True between messages (nothing but keep-alive CRLFs received since the last)."""
        return not self._started

    def take_pings(self) -> int:
        """Number of double-CRLF pings received since the last call (RFC 5626 §3.5.1:
        answer each with one CRLF)."""
        n, self._pings = self._pings, 0
        return n

    def feed(self, data: bytes) -> list[bytes]:
        if self._error is not None:
            raise self._error
        self._buf += data
        out: list[bytes] = []
        try:
            while self._step(out):
                pass
        except SipFramingError as exc:
            self._error = exc
            raise
        return out

    def _step(self, out: list[bytes]) -> bool:
        """Advance by at most one message; False when more bytes are needed."""
        buf = self._buf
        if not self._started:
            i, n = 0, len(buf)
            while i < n:
                c = buf[i]
                if c == 0x0A:
                    i += 1
                elif c == 0x0D:
                    if i + 1 >= n:
                        break
                    if buf[i + 1] != 0x0A:
                        break
                    i += 2
                    self._crlf += 1
                    if self._crlf == 2:
                        self._pings += 1
                        self._crlf = 0
                else:
                    break
            del buf[:i]
            if not buf or (len(buf) == 1 and buf[0] == 0x0D):
                return False
            self._started = True
            self._crlf = 0
            self._scan = 0
            self._need = None
        limit = self._limits.max_message_size
        if self._need is None:
            end = buf.find(b"\r\n\r\n", self._scan)
            lf = buf.find(b"\n\n", self._scan, end + 2 if end >= 0 else len(buf))
            if lf >= 0 and (end < 0 or lf < end):
                head_len = lf + 2
            elif end >= 0:
                head_len = end + 4
            else:
                if len(buf) > limit:
                    raise self._fail("Message Too Large", 513, bytes(buf[:limit]))
                self._scan = max(0, len(buf) - 3)
                return False
            head = bytes(buf[:head_len])
            self._need = head_len + self._content_length(head)
            if self._need > limit:
                raise self._fail("Message Too Large", 513, head)
        if len(buf) < self._need:
            return False
        out.append(bytes(buf[: self._need]))
        del buf[: self._need]
        self._started = False
        self._need = None
        return True

    def _content_length(self, head: bytes) -> int:
        values = {m.strip() for m in _CL_RE.findall(_FOLD_RE.sub(b" ", head))}
        if not values:
            raise self._fail("Missing Content-Length", 400, head)
        if len(values) > 1:
            raise self._fail("Multiple Content-Length Header Fields", 400, head)
        value = values.pop()
        if not _DIGITS_RE.match(value):
            raise self._fail("Bad Content-Length", 400, head)
        n = bounded_int(value.decode("ascii"), 10**15)
        return 10**15 if n is None else n

    def _fail(self, reason: str, status: int, head: bytes) -> SipFramingError:
        """A framing error carrying whatever headers can be read, so the transport can
        still answer a request before closing."""
        err = SipFramingError(reason, status)
        # Best effort: the complete, not over-long lines of what we have.
        max_line = self._limits.max_line_length
        lines = head.split(b"\r\n")
        if not head.endswith(b"\r\n"):
            lines = lines[:-1]
        data = b"".join(ln + b"\r\n" for ln in lines if ln and len(ln) <= max_line) + b"\r\n"
        relaxed = Limits(len(data), self._limits.max_headers, max_line)
        try:
            msg = parse_message(data, relaxed)
        except SipParseError as exc:
            err.with_context(
                headers=exc.headers,
                method=exc.method,
                start_line=exc.start_line,
                is_request=exc.is_request,
            )
        else:
            err.with_context(
                headers=msg.headers,
                is_request=not hasattr(msg, "status"),
                method=getattr(msg, "method", None),
            )
        return err
