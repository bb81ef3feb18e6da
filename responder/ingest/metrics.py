"""Ingest's own Prometheus metrics, on a registry per app so tests and benches can run several."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class IngestMetrics:
    """Requests by status, alerts accepted, and how long the broker took to acknowledge."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "responder_ingest_requests",
            "Webhook requests answered, by route and HTTP status.",
            ["route", "status"],
            registry=registry,
        )
        self.alerts_accepted = Counter(
            "responder_ingest_alerts_accepted",
            "Alerts acknowledged by the broker and answered 200.",
            registry=registry,
        )
        self.publish_seconds = Histogram(
            "responder_ingest_publish_seconds",
            "Time from handing a request's alerts to the producer to the last broker ack.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
