"""The poller against a real Prometheus (and against one that is down or hangs): what it
publishes, what it counts, and that the event loop keeps running while a query waits."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from alerting_support import DEFINITION
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from responder.alerting.loader import DefinitionSet, load_definition_text
from responder.alerting.poller import Poller, PollMetrics, PrometheusQuery
from responder.alerting.schema import AlertDefinition
from responder.models.metrics import MetricSample
from responder_dev.stack.process import free_port


def _definition(expr: str, interval: str = "1s") -> AlertDefinition:
    text = DEFINITION.replace("minimal_latency_seconds > 0.2", expr).replace(
        "interval: 15s", f"interval: {interval}"
    )
    definition, _, errors = load_definition_text(text, "d.yaml")
    assert definition is not None, errors
    return definition


class Published:
    def __init__(self) -> None:
        self.calls: list[tuple[str, float, list[MetricSample]]] = []

    async def __call__(
        self, d: AlertDefinition, at: float, samples: Sequence[MetricSample]
    ) -> None:
        self.calls.append((d.name, at, list(samples)))


def _poller(query: Any, published: Published, registry: CollectorRegistry, **kw: Any) -> Poller:
    return Poller(
        lambda: DefinitionSet.of(()),
        query,
        published,
        PollMetrics(registry),
        max_series=kw.pop("max_series", 100),
        backoff_base_s=1.0,
        backoff_max_s=4.0,
        **kw,
    )


def _sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
def scraped(prometheus: Any) -> Iterator[Gauge]:
    registry = CollectorRegistry()
    gauge = Gauge("poller_test_value", "set by the test", ["pod"], registry=registry)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    prometheus.configure(scrape_targets={"exporter": [f"127.0.0.1:{port}"]}, rule_files=[])
    try:
        yield gauge
    finally:
        prometheus.configure(scrape_targets={}, rule_files=[])
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def test_publishes_each_series_at_the_evaluation_time(
    prometheus: Any, scraped: Gauge
) -> None:
    scraped.labels(pod="a").set(0.5)
    scraped.labels(pod="b").set(0.1)
    query = PrometheusQuery(prometheus.url, 5.0)
    registry, published = CollectorRegistry(), Published()
    poller = _poller(query, published, registry)
    definition = _definition("poller_test_value > 0.2")
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while True:
            at = time.time()
            assert await poller.evaluate(definition, at)
            if published.calls[-1][2]:
                break
            assert loop.time() < deadline, "Prometheus never scraped the exporter"
            await asyncio.sleep(0.2)  # polling Prometheus' scrape, with a deadline
    finally:
        query.close()
    name, evaluated_at, samples = published.calls[-1]
    assert (name, evaluated_at) == ("minimal_latency", at)
    (sample,) = samples
    assert sample.labels == {"pod": "a", "job": "exporter", "instance": sample.labels["instance"]}
    assert sample.labels["instance"].startswith("127.0.0.1:")
    assert sample.value == 0.5
    assert _sample(registry, "responder_alert_definition_stale", definition=name) == 0


async def test_prometheus_down_publishes_nothing_and_marks_the_definition_stale() -> None:
    query = PrometheusQuery(f"http://127.0.0.1:{free_port()}", 2.0)  # nothing listens
    registry, published = CollectorRegistry(), Published()
    poller = _poller(query, published, registry)
    try:
        assert not await poller.evaluate(_definition("up"), time.time())
    finally:
        query.close()
    assert published.calls == []
    labels = {"definition": "minimal_latency"}
    assert (
        _sample(registry, "responder_metric_poll_failures_total", **labels, reason="unreachable")
        == 1
    )
    assert _sample(registry, "responder_alert_definition_stale", **labels) == 1


@pytest.fixture
def hung_prometheus() -> Iterator[str]:
    """A socket that accepts and never answers: a Prometheus that hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()
        listener.close()


async def test_a_hung_prometheus_times_out_and_the_loop_keeps_running(hung_prometheus: str) -> None:
    query = PrometheusQuery(hung_prometheus, 1.0)
    registry, published = CollectorRegistry(), Published()
    poller = _poller(query, published, registry)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.05)

    task = asyncio.create_task(ticker())
    began = time.monotonic()
    try:
        assert not await poller.evaluate(_definition("up"), time.time())
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        query.close()
    took = time.monotonic() - began
    assert 1.0 <= took < 3.5
    assert ticks >= 10  # the loop ran all along
    labels = {"definition": "minimal_latency", "reason": "timeout"}
    assert _sample(registry, "responder_metric_poll_failures_total", **labels) == 1
    assert published.calls == []


async def test_more_series_than_allowed_is_a_failed_evaluation_not_a_truncated_one() -> None:
    async def two(_expr: str, _at: float) -> list[tuple[dict[str, str], float]]:
        return [({"pod": "a"}, 1.0), ({"pod": "b"}, 1.0)]

    registry, published = CollectorRegistry(), Published()
    poller = _poller(two, published, registry, max_series=1)
    assert not await poller.evaluate(_definition("up"), 100.0)
    assert published.calls == []
    labels = {"definition": "minimal_latency", "reason": "too_many_series"}
    assert _sample(registry, "responder_metric_poll_failures_total", **labels) == 1


async def test_failures_back_off_and_a_success_resets_the_schedule(tmp_path: Path) -> None:
    now = [1000.0]
    answers: list[bool] = [False, False, True]

    async def flaky(_expr: str, _at: float) -> list[tuple[dict[str, str], float]]:
        if not answers.pop(0):
            from responder.alerting.poller import QueryFailed

            raise QueryFailed("unreachable", "down")
        return []

    definition = _definition("up", interval="10s")
    registry, published = CollectorRegistry(), Published()
    poller = Poller(
        lambda: DefinitionSet.of([definition]),
        flaky,
        published,
        PollMetrics(registry),
        max_series=10,
        backoff_base_s=1.0,
        backoff_max_s=4.0,
        clock=lambda: now[0],
    )
    dues: list[float] = []
    for _ in range(3):
        poller.start_due()
        schedule = poller._schedules["minimal_latency"]
        assert schedule.task is not None
        await schedule.task
        dues.append(schedule.due - now[0])
        now[0] = schedule.due
        poller.start_due()  # due now: starts the next attempt
        if schedule.task is not None and answers:
            schedule.task.cancel()
            await asyncio.gather(schedule.task, return_exceptions=True)
            schedule.task = None
    # Failures: the interval plus a jittered backoff of at most 1 s, then 2 s; success: the interval.
    assert 10.0 <= dues[0] <= 11.0
    assert 10.0 <= dues[1] <= 12.0
    assert dues[2] == pytest.approx(10.0)
    assert len(published.calls) == 1
