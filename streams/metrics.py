"""The worker's own Prometheus metrics, served at ``/metrics`` on Faust's web server.

Domain figures come from the agents as they work (alerts by triage outcome, action
durations, escalations and how late their timers fired); incidents by stage and consumer
lag are read when Prometheus scrapes, from what this worker owns right now (the
remediation index of its partitions, its assigned partitions' offsets), so a rebalance
never leaves a stale count behind. Faust's own sensor (``faust.sensors.prometheus``:
events, sends, commits, rebalances) is on the same registry, under ``responder_faust_``.

Dedup ratio: ``rate(responder_worker_alerts_total{outcome="duplicate"}[5m]) /
rate(responder_worker_alerts_total[5m])``.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from faust.exceptions import ConsumerNotStarted
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from responder.engine.records import Stage

ACTION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
LATENESS_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)


class WorkerMetrics:
    """Counters and histograms the agents update; collectors for what is read at scrape time."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.alerts = Counter(
            "responder_worker_alerts",
            "Alerts triaged, by outcome: opened (a new incident), resolved (its incident "
            "resolved), updated (folded into the open incident: a new fingerprint or "
            "episode), duplicate (nothing new: deduplicated), invalid (unreadable, skipped).",
            ["outcome"],
            registry=registry,
        )
        self.alert_outcomes = {
            outcome: self.alerts.labels(outcome=outcome)
            for outcome in ("opened", "resolved", "updated", "duplicate", "invalid")
        }
        """Per-outcome children, looked up once: triage counts every alert."""
        self.action_seconds = Histogram(
            "responder_worker_action_seconds",
            "Remediation action executions, start to result, by action and outcome "
            "(ok, failed, reconciled: the effect was found already done after a crash).",
            ["action", "outcome"],
            buckets=ACTION_BUCKETS,
            registry=registry,
        )
        self.escalations = Counter(
            "responder_worker_escalations",
            "Escalation levels fired, by where they notify.",
            ["notify"],
            registry=registry,
        )
        self.escalation_lateness = Histogram(
            "responder_worker_escalation_lateness_seconds",
            "How long after its due time an escalation level fired.",
            buckets=LATENESS_BUCKETS,
            registry=registry,
        )

    def watch(self, collector: Collector) -> None:
        self.registry.register(collector)


class StagesCollector(Collector):
    """``responder_worker_incidents{stage}``: incidents in this worker's partitions by stage."""

    def __init__(self, stages: Callable[[], Iterable[Stage]]) -> None:
        self._stages = stages

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "responder_worker_incidents",
            "Incidents under remediation in the partitions this worker owns, by stage.",
            labels=["stage"],
        )
        counts = Tally(self._stages())
        for stage in Stage:
            family.add_metric([stage.value], counts.get(stage, 0))
        yield family


class LagCollector(Collector):
    """``responder_worker_consumer_lag{topic,partition}``: records not yet committed, per
    partition this worker is assigned (end offset minus committed offset, as Faust's monitor
    last saw them)."""

    def __init__(self, app: Any) -> None:
        self._app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "responder_worker_consumer_lag",
            "Records in each assigned partition past this worker's committed offset.",
            labels=["topic", "partition"],
        )
        monitor = self._app.monitor
        ends, committed = monitor.tp_end_offsets, monitor.tp_committed_offsets
        try:
            assigned = self._app.consumer.assignment()
        except ConsumerNotStarted:
            assigned = set()  # scraped while the worker starts: no partitions yet
        for tp in sorted(assigned):
            end = ends.get(tp)
            if end is None:
                continue
            lag = max(0, end - committed.get(tp, 0))
            family.add_metric([tp.topic, str(tp.partition)], lag)
        yield family
