"""The shipped [reputation.weights/patterns/signals/policy] tables: every key documented,
values equal to the dataclass defaults, bad values named by their dotted key."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from reputation.config import (
    PatternConfig,
    PolicyConfig,
    ReputationConfig,
    SignalConfig,
    WeightsConfig,
)
from spitwall.config import load_config
from spitwall.settings import ConfigError

ROOT = Path(__file__).resolve().parents[2]
TOML = ROOT / "config" / "spitwall.toml"
TABLES = {
    "weights": WeightsConfig,
    "patterns": PatternConfig,
    "signals": SignalConfig,
    "policy": PolicyConfig,
}


def test_shipped_values_are_the_defaults() -> None:
    cfg = load_config(TOML).reputation
    d = ReputationConfig()
    assert (cfg.weights, cfg.patterns, cfg.signals, cfg.policy) == (
        d.weights, d.patterns, d.signals, d.policy,
    )  # fmt: skip


@pytest.mark.parametrize("table", sorted(TABLES))
def test_every_key_present_and_commented(table: str) -> None:
    data = tomllib.loads(TOML.read_text())["reputation"][table]
    names = [f.name for f in dataclasses.fields(TABLES[table])]
    assert sorted(data) == sorted(names)
    lines = TOML.read_text().splitlines()
    start = lines.index(f"[reputation.{table}]")
    for name in names:
        i = next(j for j in range(start, len(lines)) if lines[j].startswith(f"{name} = "))
        assert lines[i - 1].startswith("# "), f"reputation.{table}.{name} has no comment"


def test_every_signal_weight_is_documented_in_detection_md() -> None:
    text = (ROOT / "docs" / "detection.md").read_text()
    for f in dataclasses.fields(WeightsConfig):
        if f.name != "prior":
            assert f.name in text, f"{f.name} missing from docs/detection.md"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("reputation.policy.reject_code", 600),
        ("reputation.policy.action_spam", "explode"),
        ("reputation.weights.pattern_fanout", "high"),
        ("reputation.patterns.fanout_window", "ten minutes"),
        ("reputation.policy.monitor", "yes"),
    ],
)
def test_bad_values_are_named(key: str, value: object) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(None, {key: value})
    assert exc.value.key == key


def test_unknown_weight_is_named() -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(None, {"reputation.weights.pattern_fanuot": 1.0})
    assert exc.value.key == "reputation.weights.pattern_fanuot"
