"""Evaluate each alert definition at its interval against Prometheus; publish what it returned.

prometheus-api-client is synchronous (requests), so every query runs in a small thread
pool of its own with Prometheus' own ``timeout`` parameter, requests' socket timeout and an
outer ``asyncio.wait_for`` a second longer: the event loop never waits on a socket, and a
hung Prometheus costs one thread for at most the timeout. Each definition has at most one
query in flight; a slow one delays only itself.

A query runs at an explicit evaluation time (``time=``), the timestamp the state machine
counts with. A failed query (Prometheus down, slow, an error answer, more series than
``max_series``) publishes nothing: the definition is marked stale
(``responder_alert_definition_stale``), the failure counted
(``responder_metric_poll_failures_total{definition, reason}``), and the next attempt waits
the interval plus a jittered, doubling backoff. Nothing resolves for want of data; the
first successful evaluation after the outage decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from responder.alerting.loader import DefinitionSet
from responder.alerting.schema import AlertDefinition
from responder.errors import TemporaryError
from responder.models.metrics import MetricSample, series_labels
from responder.retry import full_jitter_delay

__all__ = ["PollMetrics", "Poller", "PrometheusQuery", "QueryFailed"]

log = structlog.get_logger(__name__)

Publish = Callable[[AlertDefinition, float, Sequence[MetricSample]], Awaitable[None]]
"""Hand one successful evaluation's samples over (then its end-of-evaluation mark)."""


class QueryFailed(TemporaryError):
    """The evaluation did not succeed; ``reason`` labels the failure counter."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


class PollMetrics:
    """The poller's metrics, on the registry the worker serves at /metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.failures = Counter(
            "responder_metric_poll_failures",
            "Evaluations of alert definitions that failed (nothing published, nothing resolved).",
            ["definition", "reason"],
            registry=registry,
        )
        self.stale = Gauge(
            "responder_alert_definition_stale",
            "1 while the last evaluation of the definition failed (its data is missing).",
            ["definition"],
            registry=registry,
        )
        self.series = Gauge(
            "responder_alert_definition_series",
            "Series the last successful evaluation of the definition returned.",
            ["definition"],
            registry=registry,
        )
        self.duration = Histogram(
            "responder_metric_poll_duration_seconds",
            "Query and publish time of one successful evaluation.",
            ["definition"],
            registry=registry,
        )


class PrometheusQuery:
    """Instant queries at a given time through prometheus-api-client, off the event loop."""

    def __init__(self, url: str, timeout_s: float, *, threads: int = 4) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="promql")
        self._client: Any = None

    async def __call__(self, expr: str, at: float) -> list[tuple[dict[str, str], float]]:
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(
                loop.run_in_executor(self._pool, self._query, expr, at), self.timeout_s + 1
            )
        except TimeoutError:
            raise QueryFailed("timeout", f"no answer within {self.timeout_s}s") from None

    def _query(self, expr: str, at: float) -> list[tuple[dict[str, str], float]]:
        import requests
        from prometheus_api_client import PrometheusConnect
        from prometheus_api_client.exceptions import PrometheusApiClientException
        from urllib3.exceptions import NewConnectionError
        from urllib3.exceptions import TimeoutError as Urllib3Timeout
        from urllib3.util.retry import Retry

        if self._client is None:
            # No retries inside the client: the poller's own backoff decides when to try again.
            self._client = PrometheusConnect(url=self.url, retry=Retry(total=0))
        try:
            result = self._client.custom_query(
                expr,
                params={"time": repr(at), "timeout": repr(float(self.timeout_s))},
                timeout=self.timeout_s,
            )
        except requests.RequestException as exc:
            # Without retries a read timeout arrives wrapped: ConnectionError(MaxRetryError(
            # reason=ReadTimeoutError)); it is still a slow Prometheus, not an absent one.
            cause = getattr(exc.args[0], "reason", None) if exc.args else None
            refused = isinstance(cause, NewConnectionError)  # a TimeoutError subclass, oddly
            slow = isinstance(exc, requests.Timeout) or (
                isinstance(cause, Urllib3Timeout) and not refused
            )
            raise QueryFailed("timeout" if slow else "unreachable", str(exc)[:200]) from None
        except PrometheusApiClientException as exc:
            raise QueryFailed("error", str(exc)[:200]) from None
        return _vector(result)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _vector(result: Any) -> list[tuple[dict[str, str], float]]:
    """An instant query's result as (labels, value); a scalar is one series without labels."""
    if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
        return [({}, float(result[1]))]  # resultType scalar: [time, "value"]
    if not isinstance(result, list):
        raise QueryFailed("error", f"unexpected result {type(result).__name__}")
    return [(dict(item["metric"]), float(item["value"][1])) for item in result]


Query = Callable[[str, float], Awaitable[list[tuple[dict[str, str], float]]]]


@dataclass
class _Schedule:
    due: float = 0.0
    failures: int = 0
    task: asyncio.Task[None] | None = None


class Poller:
    """Runs every definition of ``definitions()`` at its interval while ``active()`` holds
    (the worker that leads the consumer group: one poller per deployment)."""

    def __init__(
        self,
        definitions: Callable[[], DefinitionSet],
        query: Query,
        publish: Publish,
        metrics: PollMetrics,
        *,
        max_series: int,
        backoff_base_s: float,
        backoff_max_s: float,
        active: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.time,
        tick_s: float = 0.2,
    ) -> None:
        self._definitions = definitions
        self._query = query
        self._publish = publish
        self.metrics = metrics
        self._max_series = max_series
        self._backoff = (backoff_base_s, backoff_max_s)
        self._active = active
        self._clock = clock
        self._tick_s = tick_s
        self._schedules: dict[str, _Schedule] = {}

    async def run(self) -> None:
        """Until cancelled: start each due evaluation, one in flight per definition."""
        try:
            while True:
                self.start_due()
                await asyncio.sleep(self._tick_s)
        finally:
            tasks = [s.task for s in self._schedules.values() if s.task is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def start_due(self) -> None:
        current = self._definitions()
        for gone in set(self._schedules) - set(current.by_name):
            schedule = self._schedules.pop(gone)
            if schedule.task is not None:
                schedule.task.cancel()
            with contextlib.suppress(KeyError):  # never evaluated
                self.metrics.stale.remove(gone)
        if not self._active():
            return
        now = self._clock()
        for definition in current.definitions:
            schedule = self._schedules.setdefault(definition.name, _Schedule())
            if schedule.task is not None or now < schedule.due:
                continue
            schedule.task = asyncio.create_task(
                self._evaluate(definition, schedule, now), name=f"poll-{definition.name}"
            )

    async def evaluate(self, definition: AlertDefinition, at: float) -> bool:
        """One evaluation at ``at``: published (True) or failed and counted (False)."""
        name = definition.name
        started = time.monotonic()
        try:
            result = await self._query(definition.expr, at)
            if len(result) > self._max_series:
                raise QueryFailed(
                    "too_many_series", f"{len(result)} series, more than {self._max_series}"
                )
        except QueryFailed as exc:
            self.metrics.failures.labels(definition=name, reason=exc.reason).inc()
            self.metrics.stale.labels(definition=name).set(1)
            log.warning("alerting.poll_failed", definition=name, reason=exc.reason, error=str(exc))
            return False
        samples = [
            MetricSample(definition=name, at=at, labels=series_labels(labels), value=value)
            for labels, value in result
        ]
        await self._publish(definition, at, samples)
        self.metrics.stale.labels(definition=name).set(0)
        self.metrics.series.labels(definition=name).set(len(samples))
        self.metrics.duration.labels(definition=name).observe(time.monotonic() - started)
        return True

    async def _evaluate(self, definition: AlertDefinition, schedule: _Schedule, at: float) -> None:
        interval = definition.interval.total_seconds()
        try:
            ok = await self.evaluate(definition, at)
        except Exception:  # a publish failure: logged, retried at the next interval
            log.exception("alerting.publish_failed", definition=definition.name)
            ok = False
        finally:
            schedule.task = None
        if ok:
            schedule.failures = 0
            schedule.due = at + interval
        else:
            base, cap = self._backoff
            delay = full_jitter_delay(schedule.failures, base_s=base, cap_s=cap)
            schedule.failures += 1
            schedule.due = self._clock() + interval + delay
