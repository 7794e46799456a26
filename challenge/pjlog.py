"""pjsua2's log lines into Python logging (logger ``spitwall.challenge.pjsua``).

Why: pjlib prints to the process's stdout with its own time stamps, so the challenge UA
workers wrote raw ``os_core_unix.c !pjlib 2.15.1 for POSIX initialized`` lines between
spitwall's structured (text or JSON) log lines when ``make run`` started. Two sources:

* before ``libInit`` there is no log configuration yet: ``libCreate`` logs at pjlib's
  built-in level straight to file descriptor 1. :func:`console_captured` points that
  descriptor at a temporary file for the call and re-logs each line at DEBUG;
* after ``libInit`` pjsua2 hands every entry to the ``LogWriter`` of ``EpConfig.logConfig``:
  :func:`log_writer` makes one that logs at the level pjsua gave (1 error, 2 warning,
  3 info, 4 and up debug).

The writer is called on the thread that runs ``libHandleEvents`` (the agent's main thread,
``threadCnt = 0``). ``Endpoint.libDestroy`` deletes the writer it was given (C++ owns it),
so :func:`log_writer` hands ownership over (SWIG's ``__disown__``): Python must not delete
it a second time when its proxy is collected.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import pjsua2 as pj

log = logging.getLogger("spitwall.challenge.pjsua")

_LEVELS = {0: logging.ERROR, 1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO}
_STAMP = re.compile(r"^\d\d:\d\d:\d\d\.\d{3}\s+")
DECOR = pj.PJ_LOG_HAS_SENDER | pj.PJ_LOG_HAS_INDENT
"""pjsua's own decoration: the sender (``sip_endpoint.c``) only; logging adds the time."""


def python_level(pj_level: int) -> int:
    """pjsua log level (0 fatal … 6 trace) → logging level."""
    return _LEVELS.get(pj_level, logging.DEBUG)


def _text(line: str) -> str:
    return " ".join(_STAMP.sub("", line.rstrip()).split())


def log_writer(logger: logging.Logger = log) -> Any:
    """A ``pj.LogWriter`` that sends each entry to ``logger`` (set as ``logConfig.writer``)."""

    class _Writer(pj.LogWriter):  # type: ignore[misc]
        def write(self, entry: Any) -> None:
            text = _text(str(entry.msg))
            if text:
                logger.log(python_level(int(entry.level)), "%s", text)

    writer = _Writer()
    writer.__disown__()  # libDestroy deletes it; the C++ side keeps the Python object alive
    return writer


@contextlib.contextmanager
def console_captured(logger: logging.Logger = log) -> Iterator[None]:
    """What native code prints to stdout inside the block is logged at DEBUG instead.

    For ``libCreate`` only (the one call that logs before a writer can be set): the
    process's fd 1 is swapped for the duration, so nothing else may print meanwhile."""
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 1)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, AttributeError):
                ctypes.CDLL(None).fflush(None)  # C stdio buffers what it printed
            os.dup2(saved, 1)
            os.close(saved)
            tmp.seek(0)
            for line in tmp.read().decode(errors="replace").splitlines():
                if text := _text(line):
                    logger.debug("%s", text)
