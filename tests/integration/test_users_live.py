"""An account created with `spitwall users add` beside a running spitwall can log in at once.

Why: the README tells operators to create accounts with the command line while `make run`
is serving; the server keeps users and tokens in memory, so it must pick up what another
process wrote to the shared SQLite file (its change feed) without a restart.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import aiohttp

from spitwall.compose import Spitwall
from spitwall.config import load_config

ROOT = Path(__file__).resolve().parents[2]


async def test_cli_user_is_served_without_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cfg = load_config(
        None,
        {
            "data_dir": str(data),
            "proxy.listen": ["udp:127.0.0.1:0"],
            "http.listen": "127.0.0.1:0",
        },
    )
    sw = Spitwall(cfg)
    await sw.start()
    try:
        assert sw.http_bound is not None
        host, port = sw.http_bound
        made = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "spitwall",
                "users",
                "add",
                "dora",
                "--role",
                "user",
                "--tn",
                "+12155550199",
                "--data-dir",
                str(data),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert made.returncode == 0, made.stderr
        token = made.stdout.rstrip("\n").split("\n")[-1]
        headers = {"Authorization": f"Bearer {token}"}
        status = 0
        async with aiohttp.ClientSession() as http:
            for _ in range(40):  # the server follows the file's change feed every second
                async with http.get(f"http://{host}:{port}/api/v1/me", headers=headers) as r:
                    status = r.status
                    body = await r.json()
                if status == 200:
                    break
                await asyncio.sleep(0.25)
        assert status == 200, body
        assert body["name"] == "dora" and body["tns"] == ["+12155550199"]
    finally:
        await sw.stop(0.1)
