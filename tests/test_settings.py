"""The config loader names the offending key for every unknown or invalid value."""

from __future__ import annotations

from pathlib import Path

import pytest

from spitwall.config import SpitwallConfig, load_config
from spitwall.settings import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_default_config_loads() -> None:
    cfg = load_config(ROOT / "config" / "spitwall.toml")
    assert isinstance(cfg, SpitwallConfig)
    assert cfg.proxy.listen


def test_unknown_key_is_named(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text("[proxy]\nlisten = ['udp:127.0.0.1:5060']\nlissten = 1\n")
    with pytest.raises(ConfigError) as exc:
        load_config(f)
    assert exc.value.key == "proxy.lissten"


def test_wrong_type_is_named(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text("[proxy]\nscreening_timeout = 'soon'\n")
    with pytest.raises(ConfigError) as exc:
        load_config(f)
    assert exc.value.key == "proxy.screening_timeout"
    assert "number" in str(exc.value)


def test_bad_literal_is_named(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text("[log]\nformat = 'xml'\n")
    with pytest.raises(ConfigError, match=r"log\.format: must be one of"):
        load_config(f)


def test_invalid_toml_names_file(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text("[proxy\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(f)


def test_overrides_apply_dotted_keys() -> None:
    cfg = load_config(None, {"proxy.listen": ["udp:127.0.0.1:0"], "log.format": "json"})
    assert cfg.proxy.listen == ("udp:127.0.0.1:0",)
    assert cfg.log.format == "json"


@pytest.mark.parametrize("key", ["half_life_days", "recent_half_life"])
def test_zero_half_life_is_named_at_load(tmp_path: Path, key: str) -> None:
    """Caught by the loader with the key, not later inside the store without it."""
    f = tmp_path / "c.toml"
    f.write_text(f"[reputation.store]\n{key} = 0\n")
    with pytest.raises(ConfigError, match=rf"reputation\.store: {key}: must be positive"):
        load_config(f)
