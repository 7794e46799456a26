"""One error family for malformed SIP, in the shape of h11's ``ProtocolError``.

Why: a proxy that receives garbage must still answer it when it can (RFC 3261 §16.3 /
§8.2.6: a malformed request gets ``400`` statelessly) and must never crash. So every
failure of the parser, the header/URI grammars and the stream framer is a
:class:`SipParseError` that carries

* ``status`` — the SIP status code to answer with (400, 505, 513, 416, ...);
* ``reason`` — a short reason phrase naming the defect (``"Bad Content-Length"``,
  ``"Missing Call-ID"``), safe to put on a status line;
* whatever could be read of the message (``headers``, ``method``, ``start_line``) so the
  caller can copy Via, From, To, Call-ID and CSeq into the 400 it sends back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .message import Headers


class SipParseError(Exception):
    """A SIP message, header field or URI that does not follow the grammar.

    ``reason`` is the short phrase for the status line; ``detail`` may say more (for logs).
    """

    reason: str
    status: int
    detail: str
    headers: Headers | None
    method: str | None
    start_line: str | None
    is_request: bool | None

    def __init__(
        self,
        reason: str,
        status: int = 400,
        *,
        detail: str = "",
        headers: Headers | None = None,
        method: str | None = None,
        start_line: str | None = None,
        is_request: bool | None = None,
    ) -> None:
        super().__init__(f"{status} {reason}" + (f": {detail}" if detail else ""))
        self.reason = reason
        self.status = status
        self.detail = detail
        self.headers = headers
        self.method = method
        self.start_line = start_line
        self.is_request = is_request

    def with_context(
        self,
        *,
        headers: Headers | None = None,
        method: str | None = None,
        start_line: str | None = None,
        is_request: bool | None = None,
    ) -> SipParseError:
        """Fill in message context that the raiser (a header grammar) did not know."""
        if self.headers is None:
            self.headers = headers
        if self.method is None:
            self.method = method
        if self.start_line is None:
            self.start_line = start_line
        if self.is_request is None:
            self.is_request = is_request
        return self

    def _raw(self, name: str) -> str | None:
        if self.headers is None:
            return None
        try:
            return self.headers.get(name)
        except SipParseError:  # pragma: no cover - get() does not parse
            return None

    @property
    def top_via(self) -> str | None:
        """The first Via field value as received (raw), if one could be read."""
        if self.headers is None:
            return None
        vias = self.headers.get_all("via")
        return vias[0] if vias else None

    @property
    def call_id(self) -> str | None:
        return self._raw("call-id")

    @property
    def cseq(self) -> str | None:
        return self._raw("cseq")

    @property
    def from_(self) -> str | None:
        return self._raw("from")

    @property
    def to(self) -> str | None:
        return self._raw("to")

    @property
    def can_reply(self) -> bool:
        """True when this was a request and enough was read to send a stateless reply.

        RFC 3261 §8.2.6.2: the response copies Via, From, To, Call-ID and CSeq. Never
        answer a malformed *response* (§16.7 / §18.1.2: it is discarded).
        """
        return bool(
            self.is_request
            and self.top_via is not None
            and self.call_id is not None
            and self.cseq is not None
            and self.from_ is not None
            and self.to is not None
        )


class SipFramingError(SipParseError):
    """The byte stream (TCP/TLS) cannot be split into messages any more.

    After this the connection is unusable (RFC 3261 §18.3): answer if ``can_reply`` and
    close it.
    """
