"""Prometheus metrics of the proxy, on a registry passed in (no process-wide globals).

Why a registry object: tests and several proxies in one process each get their own, and the
HTTP app exposes exactly the registry the composition root hands it.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

SCREEN_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ProxyMetrics:
    """The proxy's counters, gauges and histograms. Label values are small closed sets."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "spitwall_sip_requests", "SIP requests received, by method", ["method"], registry=r
        )
        self.responses = Counter(
            "spitwall_sip_responses",
            "SIP responses sent or relayed, by code",
            ["code", "origin"],
            registry=r,
        )
        self.transactions = Gauge(
            "spitwall_sip_transactions",
            "Live transactions",
            ["kind"],
            registry=r,
            multiprocess_mode="livesum",  # several workers: the sum over live ones
        )
        self.drops = Counter(
            "spitwall_sip_drops", "Messages dropped, by reason", ["reason"], registry=r
        )
        self.screening = Histogram(
            "spitwall_screening_seconds", "Screening latency", buckets=SCREEN_BUCKETS, registry=r
        )
        self.screening_outcomes = Counter(
            "spitwall_screening_outcomes", "Screening decisions, by action", ["action"], registry=r
        )
        self.screening_timeouts = Counter(
            "spitwall_screening_timeouts", "Screenings that timed out (call forwarded)", registry=r
        )
        self.connections = Gauge(
            "spitwall_sip_connections",
            "Open TCP/TLS connections",
            ["transport"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.connections_refused = Counter(
            "spitwall_sip_connections_refused",
            "TCP/TLS connections refused, by reason",
            ["reason"],
            registry=r,
        )
        self.rate_limited = Counter(
            "spitwall_rate_limited", "Requests shed by the rate limiter", registry=r
        )
        self.overload = Counter(
            "spitwall_overload_rejections",
            "Requests answered 503 because the proxy is overloaded",
            registry=r,
        )
        self._method_children: dict[str, Counter] = {}
        self._code_children: dict[tuple[int, str], Counter] = {}
        self._outcome_children: dict[str, Counter] = {}
        self._drop_children: dict[str, Counter] = {}

    KNOWN_METHODS = frozenset(
        {
            "INVITE",
            "ACK",
            "BYE",
            "CANCEL",
            "OPTIONS",
            "REGISTER",
            "PRACK",
            "UPDATE",
            "INFO",
            "MESSAGE",
            "NOTIFY",
            "SUBSCRIBE",
            "REFER",
            "PUBLISH",
        }
    )

    def request(self, method: str) -> None:
        """Count a request; unknown methods share one label so a fuzzer cannot grow series."""
        m = method if method in self.KNOWN_METHODS else "other"
        child = self._method_children.get(m)
        if child is None:
            child = self._method_children[m] = self.requests.labels(m)  # type: ignore[assignment]
        child.inc()

    def response(self, code: int, origin: str) -> None:
        """Count a response; ``origin`` is ``local`` (generated here) or ``relayed``."""
        key = (code, origin)
        child = self._code_children.get(key)
        if child is None:
            label = str(code) if 100 <= code <= 699 else "invalid"
            child = self._code_children[key] = self.responses.labels(label, origin)  # type: ignore[assignment]
        child.inc()

    def screening_outcome(self, action: str) -> None:
        child = self._outcome_children.get(action)
        if child is None:
            child = self._outcome_children[action] = self.screening_outcomes.labels(action)  # type: ignore[assignment]
        child.inc()

    def drop(self, reason: str) -> None:
        """Count a dropped message (a flood of strays or shed requests calls this per
        datagram, so the labelled child is looked up once)."""
        child = self._drop_children.get(reason)
        if child is None:
            child = self._drop_children[reason] = self.drops.labels(reason)  # type: ignore[assignment]
        child.inc()
