"""The import rules of design.md, checked on the source tree.

Why: the sans-IO SIP core must stay testable without sockets or clocks, and
`attestation`/`reputation` must stay reusable on their own. A stray import is the first
step of a tangle, so it fails the build.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

IO_MODULES = {"asyncio", "socket", "ssl", "threading", "time", "selectors", "uvloop", "aiohttp"}
SANS_IO = ["proxy/sip", "proxy/transaction", "proxy/transaction.py"]
LIBRARIES = {
    "attestation": {"proxy", "api", "challenge", "spitwall", "reputation"},
    "reputation": {"proxy", "api", "challenge", "spitwall", "attestation"},
}


def _py_files(rel: str) -> list[Path]:
    p = ROOT / rel
    if p.is_file():
        return [p]
    return sorted(p.rglob("*.py")) if p.is_dir() else []


def _full_imports(path: Path) -> set[str]:
    """Every absolute module name imported (``urllib.parse``, ``socket`` …)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def _imports(path: Path) -> set[str]:
    return {name.split(".")[0] for name in _full_imports(path)}


def test_sans_io_core_has_files() -> None:
    assert any(_py_files(rel) for rel in SANS_IO), "the SIP core is missing"


@pytest.mark.parametrize("rel", SANS_IO)
def test_sans_io_core_imports_no_io(rel: str) -> None:
    for path in _py_files(rel):
        bad = _imports(path) & IO_MODULES
        assert not bad, f"{path.relative_to(ROOT)} imports I/O modules {sorted(bad)}"


@pytest.mark.parametrize("package", sorted(LIBRARIES))
def test_libraries_do_not_import_upwards(package: str) -> None:
    for path in _py_files(package):
        bad = _imports(path) & LIBRARIES[package]
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("package", sorted(LIBRARIES))
def test_libraries_open_no_sockets(package: str) -> None:
    # Only the x5u/CRL HTTPS fetcher in attestation may talk to the network.
    allowed = {"attestation/certs.py", "attestation/x5u.py", "attestation/crl.py"}
    for path in _py_files(package):
        rel = str(path.relative_to(ROOT))
        if rel in allowed or rel.startswith("attestation/certs/"):
            continue
        # urllib.parse only quotes strings; urllib.request and http.client open sockets.
        names = _full_imports(path)
        bad = {n for n in names if n.split(".")[0] in {"socket", "aiohttp", "http", "ssl"}}
        bad |= {n for n in names if n.startswith("urllib") and n != "urllib.parse"}
        assert not bad, f"{rel} opens network connections ({sorted(bad)})"
