"""The API plugged into the real ``spitwall.runtime.Runtime`` as an extension: one HTTP
server (port 0) serving /healthz, /metrics, the page and /api/v1 next to the SIP proxy."""

from __future__ import annotations

from pathlib import Path

from aiohttp import ClientSession

from api.app import build_api
from reputation.config import StoreConfig
from reputation.store import Store
from spitwall.config import load_config
from spitwall.runtime import Runtime


async def test_api_extension_in_the_runtime(tmp_path: Path) -> None:
    cfg = load_config(
        None,
        {
            "data_dir": str(tmp_path),
            "proxy.listen": ["udp:127.0.0.1:0"],
            "http.listen": "127.0.0.1:0",
        },
    )
    store = Store.open(tmp_path / "reputation.sqlite3", StoreConfig(batch_window=0.005))
    r = await store.add_user("alice", "user", tns=["+15550001111"])
    assert isinstance(r, tuple)
    _, token = r
    rt = Runtime(cfg)
    rt.extensions.append(
        build_api(
            store,
            None,
            cfg.http,
            data_dir=cfg.data_dir,
            reputation=cfg.reputation,
            registry=rt.registry,
        )
    )
    await rt.start()
    try:
        assert rt.http_bound is not None
        host, port = rt.http_bound
        base = f"http://{host}:{port}"
        async with ClientSession() as s:
            async with s.get(f"{base}/healthz") as resp:
                assert resp.status == 200
            async with s.get(f"{base}/metrics") as resp:
                assert resp.status == 200 and "spitwall" in await resp.text()
            async with s.get(f"{base}/") as resp:
                assert resp.status == 200 and "Content-Security-Policy" in resp.headers
            h = {"Authorization": f"Bearer {token}"}
            async with s.get(f"{base}/api/v1/me", headers=h) as resp:
                assert resp.status == 200 and (await resp.json())["name"] == "alice"
            async with s.get(f"{base}/api/v1/admin/stats", headers=h) as resp:
                assert resp.status == 403
            async with s.get(f"{base}/api/v1/audit/records", headers={}) as resp:
                assert resp.status == 401
    finally:
        await rt.stop(0)
        store.close()
