"""Metric streams: the poller publishes evaluations, the evaluator turns them into alerts.

The poller (``responder.alerting.poller``) runs on the worker that leads the consumer
group, so a deployment of several workers queries Prometheus once. It writes each series
of an evaluation to ``responder.metrics`` keyed by series, then an ``EvaluationDone`` to
every partition (``responder.models.metrics``).

The evaluator is an agent over ``responder.metrics``: per series it runs the pure state
machine (``responder.alerting.rule.step``) on the state it keeps in the ``alert-rules``
table, and emits what the state machine decides into ``responder.alerts``, in the form
ingest produces and with Alertmanager's fingerprint, keyed by the same incident key
(``responder.runbooks.resolve.runbook_keyer``), so triage sees one alert whichever path
it came by. An ``EvaluationDone`` sweeps the series of that definition on that partition
that the evaluation did not return: absent, hence resolved (or forgotten while pending).
Emitted alerts are acknowledged by the broker before the table write and the offset
commit (``streams.pipeline.OrderedAcks``), so a crash replays rather than loses; the
table's changelog gives a restarted worker every series' ``active_at`` back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from pydantic import TypeAdapter, ValidationError

from responder.alerting.loader import DefinitionSet
from responder.alerting.poller import Poller, PollMetrics, PrometheusQuery
from responder.alerting.rule import (
    Absent,
    Emit,
    Present,
    SeriesState,
    Step,
    Timing,
    alert_event,
    step,
)
from responder.alerting.schema import AlertDefinition
from responder.alerting.store import DefinitionStore
from responder.errors import ConfigError
from responder.models.alerts import AlertStatus, IncidentKeyer
from responder.models.metrics import EvaluationDone, MetricRecord, MetricSample, series_key
from responder.models.topics import ALERT_RULES_TABLE, METRICS
from responder.settings import Settings
from streams.context import ResponderStreams
from streams.pipeline import OrderedAcks, Write, all_writes, table_delete, table_write

__all__ = ["MetricStreams", "register_metric_streams"]

log = structlog.get_logger(__name__)

_RECORD: TypeAdapter[MetricSample | EvaluationDone] = TypeAdapter(MetricRecord)


@dataclass
class SeriesIndex:
    """Which series of which definition this worker holds, per partition, for the sweep.

    Filled as the agent writes; rebuilt from the table the first time a partition is seen
    after a start or a rebalance (the table came back from its changelog, the index did not).
    """

    table: Any
    _keys: dict[tuple[int, str], set[bytes]] = field(default_factory=dict)
    _indexed: set[int] = field(default_factory=set)

    def ensure(self, partition: int) -> None:
        if partition in self._indexed:
            return
        for raw_key, raw_value in list(self.table.items()):
            try:
                state = SeriesState.model_validate_json(raw_value)
            except ValidationError:
                log.error("alerting.bad_series_record", key=raw_key)
                continue
            if state.partition == partition:
                self.add(partition, state.definition, raw_key)
        self._indexed.add(partition)

    def add(self, partition: int, definition: str, key: bytes) -> None:
        self._keys.setdefault((partition, definition), set()).add(key)

    def discard(self, partition: int, definition: str, key: bytes) -> None:
        self._keys.get((partition, definition), set()).discard(key)

    def keys(self, partition: int, definition: str) -> list[bytes]:
        return sorted(self._keys.get((partition, definition), ()))

    def invalidate(self) -> None:
        self._keys.clear()
        self._indexed.clear()


@dataclass
class MetricStreams:
    """What ``register_metric_streams`` attached (tests and benches reach in through it)."""

    store: DefinitionStore
    poller: Poller
    query: PrometheusQuery
    agent: Any
    index: SeriesIndex


def register_metric_streams(
    streams: ResponderStreams, settings: Settings, runbooks: Callable[[], Any]
) -> MetricStreams | None:
    """Attach the poller and the evaluator when ``alerting.definitions_dir`` is set.

    ``runbooks`` returns the current runbook set (the remediation's), which keys emitted
    alerts as ingest keys webhook alerts. Invalid definitions refuse the start
    (``ConfigError`` naming the setting, raised by ``streams.check_startup``).
    """
    alerting = settings.alerting
    if alerting.definitions_dir is None:
        return None
    store = DefinitionStore(alerting.definitions_dir, registry=streams.metrics.registry)
    try:
        store.load_initial()
    except ConfigError as exc:
        refused = ConfigError(f"alerting.definitions_dir ({alerting.definitions_dir}): {exc}")

        def refuse() -> None:
            raise refused

        streams.startup_checks.append(refuse)
    from responder.runbooks.resolve import runbook_keyer

    metrics_topic = streams.topic(METRICS)
    table = streams.table(ALERT_RULES_TABLE)
    index = SeriesIndex(table)
    evaluator = _Evaluator(streams, table, index, store, runbook_keyer(runbooks))
    agent = streams.pipelined_agent(metrics_topic, "metric-evaluator", evaluator.handle)

    partitions = streams.kafka.partitions

    async def publish(
        definition: AlertDefinition, at: float, samples: Sequence[MetricSample]
    ) -> None:
        sent = [
            await metrics_topic.send(
                key=series_key(sample.definition, sample.labels).encode(),
                value=sample.model_dump_json().encode(),
            )
            for sample in samples
        ]
        done = EvaluationDone(definition=definition.name, at=at).model_dump_json().encode()
        for partition in range(partitions):  # after the samples: the sweep sees them first
            sent.append(
                await metrics_topic.send(
                    key=definition.name.encode(), value=done, partition=partition
                )
            )
        await asyncio.gather(*sent)

    query = PrometheusQuery(settings.alerting_prometheus_url, alerting.query_timeout_s)
    app = streams.app
    poller = Poller(
        lambda: _current(store),
        query,
        publish,
        PollMetrics(streams.metrics.registry),
        max_series=alerting.max_series,
        backoff_base_s=alerting.backoff_base_s,
        backoff_max_s=alerting.backoff_max_s,
        active=lambda: bool(app.is_leader()),
    )

    async def poll(*_: Any) -> None:
        await poller.run()

    async def watch_definitions(*_: Any) -> None:
        if store.directory.is_dir():
            await store.watch()

    app.task(poll)
    app.task(watch_definitions)

    async def moved(*_: Any, **__: Any) -> None:
        index.invalidate()

    app.on_partitions_revoked.connect(moved)
    app.on_partitions_assigned.connect(moved)

    async def stop(*_: Any, **__: Any) -> None:
        query.close()

    app.on_before_shutdown.connect(stop)
    return MetricStreams(store, poller, query, agent, index)


def _current(store: DefinitionStore) -> DefinitionSet:
    try:
        return store.current
    except ConfigError:
        return DefinitionSet.of(())  # never loaded: the start is refused anyway


class _Evaluator:
    def __init__(
        self,
        streams: ResponderStreams,
        table: Any,
        index: SeriesIndex,
        store: DefinitionStore,
        key: IncidentKeyer,
    ) -> None:
        self._streams = streams
        self._table = table
        self._index = index
        self._store = store
        self._key = key

    async def handle(self, acks: OrderedAcks, event: Any) -> None:
        try:
            record = _RECORD.validate_json(event.value)
        except ValidationError as exc:
            log.error("alerting.invalid_metric_record", key=event.key, error=str(exc)[:500])
            await acks.add(event)
            return
        definition = _current(self._store).by_name.get(record.definition)
        if definition is None:  # removed by a reload: its series stop here
            await acks.add(event)
            return
        partition = event.message.partition
        self._index.ensure(partition)
        if isinstance(record, MetricSample):
            await self._sample(acks, event, definition, record, partition)
        else:
            await self._sweep(acks, event, definition, record, partition)

    async def _sample(
        self,
        acks: OrderedAcks,
        event: Any,
        definition: AlertDefinition,
        sample: MetricSample,
        partition: int,
    ) -> None:
        key: bytes = event.key
        current = self._load(key)
        seen = Present(sample.at, sample.value, sample.labels, definition.name, partition)
        result = step(current, seen, Timing.of(definition))
        sent = await self._emit(definition, result)
        write = self._write(key, definition.name, partition, current, result.state)
        await acks.add(event, sent, write)

    async def _sweep(
        self,
        acks: OrderedAcks,
        event: Any,
        definition: AlertDefinition,
        done: EvaluationDone,
        partition: int,
    ) -> None:
        timing = Timing.of(definition)
        sent: list[Any] = []
        writes: list[Write] = []
        for key in self._index.keys(partition, definition.name):
            current = self._load(key)
            if current is None:
                self._index.discard(partition, definition.name, key)
                continue
            result = step(current, Absent(done.at), timing)
            sent += await self._emit(definition, result)
            write = self._write(key, definition.name, partition, current, result.state)
            if write is not None:
                writes.append(write)
        await acks.add(event, sent, all_writes(writes))

    def _load(self, key: bytes) -> SeriesState | None:
        stored = self._table.get(key)
        return None if stored is None else SeriesState.model_validate_json(stored)

    def _write(
        self,
        key: bytes,
        definition: str,
        partition: int,
        before: SeriesState | None,
        after: SeriesState | None,
    ) -> Write | None:
        if after == before:
            return None
        if after is None:
            self._index.discard(partition, definition, key)
            return table_delete(self._table, key)
        self._index.add(partition, definition, key)
        return table_write(self._table, key, after.model_dump_json().encode())

    async def _emit(self, definition: AlertDefinition, result: Step) -> list[Any]:
        if result.emit is None:
            return []
        firing = result.emit is Emit.FIRING
        state = result.state if firing else result.previous
        assert state is not None
        alert = alert_event(
            definition,
            state,
            AlertStatus.FIRING if firing else AlertStatus.RESOLVED,
            key=self._key,
            received_at=self._streams.clock(),
            resolved_at=result.resolved_at,
        )
        log.info(
            "alerting.alert",
            definition=definition.name,
            status=alert.status,
            fingerprint=alert.fingerprint,
            incident_key=alert.incident_key,
        )
        return [
            await self._streams.alerts.send(
                key=alert.incident_key.encode(), value=alert.model_dump_json().encode()
            )
        ]
