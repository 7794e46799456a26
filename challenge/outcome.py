"""Outcome reports to the main process: JSON POSTs with a bearer token, off the SIP thread.

Why a thread and urllib: the UA's main thread belongs to pjsua2's event loop and must
never wait on HTTP; the standard library keeps this process free of an asyncio loop. A
bounded queue feeds one worker that retries with back-off; when the main process is down
for long, the oldest reports are dropped and counted rather than blocking calls.

The request (``POST [challenge] report_url``, ``Authorization: Bearer <token>``,
``Content-Type: application/json``)::

    {"version": 1, "event_id": "9f0c...", "kind": "challenge" | "voicemail",
     "outcome": "passed" | "failed" | "timed_out" | "hung_up" | "voicemail" | "no_message"
                | "mailbox_full" | "rejected_busy",
     "decision_id": "8f3a", "mode": "challenge" | "voicemail",
     "caller": "15551230000", "callee": "15557654321", "call_id": "<SIP Call-ID>",
     "time": 1700000000.5, "call_started": 1700000000.0, "tries": 1, "digits_entered": 2,
     "remember_until": 1700086400.5 | null,
     "recording": null | {"path": ".../voicemail/15557654321/2026...wav", "duration": 7.52,
                          "speech": 7.1, "bytes": 120364, "started": 1700000003.0, ...}}

``event_id`` is unique per report: the receiver treats a repeat as already done (a retry
after a lost response). Any 2xx counts as delivered; 4xx other than 408/429 is not retried.
"""

from __future__ import annotations

import json
import logging
import queue
import secrets
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("spitwall.challenge.outcome")


@dataclass(frozen=True, slots=True)
class OutcomeReport:
    kind: str
    outcome: str
    decision_id: str
    mode: str
    caller: str
    callee: str
    call_id: str
    time: float
    call_started: float
    tries: int = 0
    digits_entered: int = 0
    remember_until: float | None = None
    recording: dict[str, Any] | None = None
    event_id: str = field(default_factory=lambda: secrets.token_hex(12))

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "event_id": self.event_id,
            "kind": self.kind,
            "outcome": self.outcome,
            "decision_id": self.decision_id,
            "mode": self.mode,
            "caller": self.caller,
            "callee": self.callee,
            "call_id": self.call_id,
            "time": round(self.time, 3),
            "call_started": round(self.call_started, 3),
            "tries": self.tries,
            "digits_entered": self.digits_entered,
            "remember_until": self.remember_until,
            "recording": self.recording,
        }


@dataclass(frozen=True, slots=True)
class Delivery:
    report: OutcomeReport
    ok: bool
    status: int
    detail: str


class OutcomeReporter:
    """Queue reports with :meth:`submit`; a worker thread POSTs them."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 3.0,
        retries: int = 3,
        max_queue: int = 10_000,
        on_delivery: Callable[[Delivery], None] | None = None,
        backoff: float = 0.5,
    ) -> None:
        self.url = url
        self._token = token
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff
        self._queue: queue.Queue[OutcomeReport | None] = queue.Queue(max_queue)
        self._on_delivery = on_delivery
        self._stop = threading.Event()
        self.dropped = 0
        self.delivered = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._run, name="outcome-reporter", daemon=True)
        self._thread.start()

    def submit(self, report: OutcomeReport) -> None:
        while True:
            try:
                self._queue.put_nowait(report)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.dropped += 1
                    log.error("outcome queue full: dropped the oldest report")
                except queue.Empty:
                    pass

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (within ``timeout``), then stop the worker."""
        self._queue.put(None)
        self._thread.join(timeout)
        self._stop.set()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            self._deliver(item)

    def _deliver(self, report: OutcomeReport) -> None:
        body = json.dumps(report.to_json()).encode()
        status, detail = 0, ""
        for attempt in range(self._retries + 1):
            if attempt and self._stop.wait(self._backoff * 2 ** (attempt - 1)):
                break
            status, detail = self._post(body)
            if 200 <= status < 300:
                self.delivered += 1
                self._notify(Delivery(report, True, status, detail))
                return
            if 400 <= status < 500 and status not in (408, 429):
                break
        self.failed += 1
        log.error(
            "outcome report %s (%s for %s) not delivered: %s %s",
            report.event_id,
            report.outcome,
            report.decision_id,
            status or "no answer",
            detail,
        )
        self._notify(Delivery(report, False, status, detail))

    def _post(self, body: bytes) -> tuple[int, str]:
        req = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self._token}",
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=self._timeout) as resp:
                return int(resp.status), ""
        except urllib.error.HTTPError as exc:
            return exc.code, str(exc.reason)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return 0, str(exc)

    def _notify(self, d: Delivery) -> None:
        if self._on_delivery is not None:
            try:
                self._on_delivery(d)
            except Exception:  # a logging hook must not kill the worker
                log.exception("outcome delivery hook failed")
