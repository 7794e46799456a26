"""Named scenarios and config variants for the detection benchmark.

Each scenario changes a few knobs of :class:`~bench.traffic.model.Scenario` from the
published-figures baseline; each config variant is a ``[reputation]`` override passed
through the normal config loader (``spitwall.settings``), so what is measured is exactly
what an operator would get by putting the same keys in ``config/spitwall.toml``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from proxy.config import ProxyConfig, TrunkConfig
from reputation.config import ReputationConfig
from spitwall.settings import build

from .model import CampaignKnobs, Scenario, Traffic

BASE = Scenario()

SCENARIOS: dict[str, Scenario] = {
    # the published mix (TransNexus/Prasad/YouMail figures), 2,000 lines, 3 days,
    # every originating network on its own interconnect address
    "published": BASE,
    # the same traffic for a small PBX (200 lines): per-address volumes 10x lower
    "small-pbx": dataclasses.replace(BASE, name="small-pbx", subscribers=200, days=7.0),
    # everything through two upstream trunk addresses (an enterprise behind one provider)
    "trunk": dataclasses.replace(BASE, name="trunk", ingress="trunk"),
    # every campaign rotates a fresh number per call (the hardest caller-ID policy)
    "rotating": dataclasses.replace(
        BASE,
        name="rotating",
        campaigns=dataclasses.replace(CampaignKnobs(), cli_policy=(("fresh", 1.0),)),
    ),
    # neighbour spoofing on 30 % of campaign calls (the top of the 3-30 % sweep)
    "neighbour30": dataclasses.replace(
        BASE,
        name="neighbour30",
        campaigns=dataclasses.replace(
            CampaignKnobs(),
            neighbour_area=0.30,
            neighbour_exchange=0.15,
            cli_policy=(("fresh", 0.7), ("pool", 0.3)),
        ),
    ),
    # a tier-1-like termination mix: 86 % signed, 95 % of it A (robocalls launder through A)
    "tier1-signed": dataclasses.replace(
        BASE,
        name="tier1-signed",
        signing=(("A", 0.817), ("B", 0.022), ("C", 0.021), ("unsigned", 0.14)),
    ),
    # the operator allow-lists the alert senders it knows (all wanted organisations)
    "alerts-allowlisted": dataclasses.replace(
        BASE, name="alerts-allowlisted", wanted_allowlisted=1.0
    ),
    # no outbound calls are fed to the store (as wired today: nothing calls learn_outbound)
    "no-outbound": dataclasses.replace(BASE, name="no-outbound", outbound_learning=False),
}

CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    # volume statistics per caller TN and origid only (no per-address volume at all)
    "no-ip-volume": {"reputation": {"patterns": {"volume_kinds": ["tn", "origid"]}}},
    # the three big carriers' interconnect addresses configured as [proxy.trunks] (the
    # evaluator sets InviteFacts.trunk from that table, as proxy.build.invite_facts does)
    "trunks": {"trunks": "big"},
    # the weights before the detection-quality changes (docs/detection.md), with trunks
    "trunks+old-weights": {
        "trunks": "big",
        "reputation": {
            "weights": {
                "learned_allow": -3.0,
                "pattern_concurrent": 1.5,
                "list_global_allow": -4.0,
            },
            "signals": {"established_infra_factor": 1.0},
        },
    },
}


def reputation_config(name: str) -> ReputationConfig:
    """The ``[reputation]`` table of a named variant, through the real config loader."""
    return build(ReputationConfig, CONFIGS[name].get("reputation", {}))


def trunks_for(name: str, traffic: Traffic) -> dict[str, TrunkConfig]:
    """The ``[proxy.trunks]`` table of a variant (the big carriers' interconnects, or
    none), through the real config loader."""
    which = CONFIGS[name].get("trunks")
    if which != "big":
        return {}
    if traffic.scenario.ingress == "trunk":
        ips = {f"upstream{i + 1}": f"10.99.0.{i + 1}" for i in range(traffic.scenario.trunk_ips)}
    else:
        ips = {c: ip for c, ip in traffic.ips.items() if c.startswith("carrier")}
    table = {n: {"sources": [f"{ip}/32"], "kind": "carrier"} for n, ip in ips.items()}
    return build(ProxyConfig, {"trunks": table}).trunks


def scenario(name: str, **changes: Any) -> Scenario:
    if name not in SCENARIOS:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    return dataclasses.replace(SCENARIOS[name], **changes)
