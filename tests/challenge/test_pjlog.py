"""pjsua2's own log lines go through Python logging, not raw onto the console.

Run in a child process: pjsua2's endpoint is a process-wide singleton and the start-up
capture swaps the process's stdout descriptor.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from challenge.pjlog import python_level

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import logging, sys
import pjsua2 as pj
from challenge.pjlog import DECOR, console_captured, log_writer
logging.basicConfig(
    stream=sys.stderr, level=logging.DEBUG, format="LOG %(levelname)s %(name)s: %(message)s"
)
ep = pj.Endpoint()
with console_captured():
    ep.libCreate()
ec = pj.EpConfig()
ec.uaConfig.threadCnt = 0
ec.medConfig.threadCnt = 0
ec.medConfig.hasIoqueue = False
ec.logConfig.level = 4
ec.logConfig.consoleLevel = 4
ec.logConfig.writer = log_writer()
ec.logConfig.decor = DECOR
ep.libInit(ec)
tc = pj.TransportConfig()
tc.boundAddress = "127.0.0.1"
tc.port = 0
ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tc)
ep.libStart()
ep.libDestroy()
print("clean exit")
"""


def test_pjsua_start_up_and_runtime_lines_are_logged_not_printed() -> None:
    r = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout == "clean exit\n", r.stdout  # nothing of pjsua's on the console
    logged = [ln for ln in r.stderr.splitlines() if ln.startswith("LOG ")]
    # before libInit (captured from stdout) and after (the writer), one logger, no stamps
    assert any("DEBUG spitwall.challenge.pjsua: os_core_unix.c !pjlib" in ln for ln in logged)
    assert any("PJSUA state changed: NULL --> CREATED" in ln for ln in logged)
    assert any('Module "mod-pjsua" registered' in ln for ln in logged), logged[:20]
    assert not any(ln.split(": ", 1)[1][:2].isdigit() for ln in logged), logged[:5]


def test_pjsua_levels_map_to_logging_levels() -> None:
    assert [python_level(n) for n in range(7)] == [
        logging.ERROR,
        logging.ERROR,
        logging.WARNING,
        logging.INFO,
        logging.DEBUG,
        logging.DEBUG,
        logging.DEBUG,
    ]
