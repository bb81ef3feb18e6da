"""The Faust application: every topic and table declared once, and the agents wired to them.

Built by a factory rather than at import time, so the CLI, tests and benches can each run
an app with their own settings (topic prefix, app id, store) against the same broker.
Topics carry raw bytes: the values are the domain's pydantic JSON, so nothing in the
domain core depends on Faust's record types.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import faust
from prometheus_client import CollectorRegistry

from responder.models.topics import ALERTS, AUDIT, INCIDENTS, INCIDENTS_TABLE, topic_name
from responder.settings import Settings
from streams.metrics import WorkerMetrics
from streams.offsets import CappedTransport, ProcessedOffsets
from streams.pipeline import OrderedAcks

if TYPE_CHECKING:
    from responder.engine.model import Stage
    from streams.remediate import RemediationRuntime

Clock = Callable[[], datetime]
Handler = Callable[[OrderedAcks, Any], Awaitable[None]]

RAW: Any = faust.Schema(
    key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
)
"""Keys are incident keys, values the domain's pydantic JSON: Faust moves bytes only."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ResponderStreams:
    """The app and what hangs off it; agents receive this rather than reaching for globals."""

    app: faust.App
    alerts: Any  # faust.TopicT: untyped library
    incidents: Any
    audit: Any
    incidents_table: Any  # faust.Table[bytes, bytes]: key = incident key, value = Incident JSON
    clock: Clock
    metrics: WorkerMetrics
    offsets: ProcessedOffsets
    in_flight: int
    startup_checks: list[Callable[[], None]] = field(default_factory=list)
    """Run by ``check_startup`` before the worker starts; each raises ``ConfigError`` to refuse."""

    def check_startup(self) -> None:
        """Refuse to start (``ConfigError``) when the configuration cannot work, e.g. the loaded
        runbooks need a service whose settings are missing."""
        for check in self.startup_checks:
            check()

    def pipelined_agent(self, topic: Any, name: str, handle: Handler) -> Any:
        """Attach agent ``name`` on ``topic``: ``handle(acks, event)`` per event, in order.

        Concurrency 1 (faust-streaming can commit past a message still in flight with more,
        issue 606); manual acknowledgement through ``OrderedAcks``, so the agent takes the
        next event while the last one's writes travel, and commits of ``topic`` never pass
        what it finished (``streams.offsets``).
        """
        self.offsets.manage(topic.topics)

        async def agent(stream: Any) -> None:
            manual = stream.noack()
            acks = OrderedAcks(
                self.app, manual, max_in_flight=self.in_flight, name=name, offsets=self.offsets
            )
            async for event in manual.events():
                await handle(acks, event)

        return self.app.agent(topic, name=name, concurrency=1)(agent)


def _broker_urls(bootstrap: str) -> list[str]:
    return [f"kafka://{host.strip()}" for host in bootstrap.split(",") if host.strip()]


def create_streams(
    settings: Settings,
    *,
    clock: Clock = utc_now,
    remediation: RemediationRuntime | None = None,
) -> ResponderStreams:
    """The Faust app with its topics, the ``incidents`` table and the triage agent."""
    from streams.adhoc import register_adhoc
    from streams.notify import register_notify
    from streams.remediate import register_remediation
    from streams.triage import register_triage  # agents import this module's dataclass

    kafka, worker = settings.kafka, settings.worker
    app = faust.App(
        worker.app_id,
        broker=_broker_urls(kafka.bootstrap),
        store=worker.store,
        datadir=worker.data_dir,
        autodiscover=False,
        topic_partitions=kafka.partitions,
        topic_replication_factor=kafka.replication_factor,
        topic_allow_declare=True,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        web_enabled=worker.web_enabled,
        web_host=worker.web_host,
        web_port=worker.web_port,
        broker_session_timeout=worker.session_timeout_s,
    )
    # Before anything declares a topic (which builds the consumer transport): commits never
    # pass what the agents finished (streams.offsets).
    offsets = ProcessedOffsets()
    app.transport = CappedTransport(app.conf.broker_consumer, app, processed=offsets)

    def topic(name: str) -> Any:
        # internal=True: Faust creates the topic with these partitions when the worker
        # subscribes. Otherwise a topic first written by a send is auto-created with the
        # broker's num.partitions, and a missing subscribed topic is ignored until the
        # consumer's next metadata refresh (minutes).
        return app.topic(
            topic_name(kafka.topic_prefix, name),
            partitions=kafka.partitions,
            schema=RAW,
            internal=True,
        )

    streams = ResponderStreams(
        app=app,
        alerts=topic(ALERTS),
        incidents=topic(INCIDENTS),
        audit=topic(AUDIT),
        # The changelog is compacted and gets the source topic's partition count, which
        # Faust requires to recover a partition's table from its changelog.
        incidents_table=app.Table(
            INCIDENTS_TABLE,
            partitions=kafka.partitions,
            key_type=bytes,  # bytes keys and values make Faust pick the raw codec
            value_type=bytes,
            help="Current incident per incident key (JSON of responder.models.incidents.Incident).",
        ),
        clock=clock,
        metrics=WorkerMetrics(CollectorRegistry()),
        offsets=offsets,
        in_flight=worker.in_flight,
    )
    register_triage(streams)
    remediating = register_remediation(streams, settings, remediation)
    register_web(streams, remediating.scanner.stages)
    register_notify(streams, settings)
    register_adhoc(streams, settings, remediating.runner.actions)
    return streams


def register_web(streams: ResponderStreams, stages: Callable[[], Iterable[Stage]]) -> None:
    """``/metrics`` (ours and Faust's sensor), ``/healthz`` and ``/readyz`` on Faust's web server.

    ``/readyz`` answers 503 while the worker is rebalancing or recovering its tables from
    their changelogs (it processes nothing then), 200 otherwise.
    """
    from faust.sensors.prometheus import setup_prometheus_sensors
    from faust.web import Request, Response, View

    from streams.metrics import LagCollector, StagesCollector

    app, metrics = streams.app, streams.metrics
    metrics.watch(StagesCollector(stages))
    metrics.watch(LagCollector(app))
    # Faust's sensor, on our registry; it serves the whole registry at /metrics.
    setup_prometheus_sensors(
        app, pattern="/metrics", registry=metrics.registry, name_prefix="responder_faust"
    )

    @app.page("/healthz")
    async def healthz(self: View, request: Request) -> Response:
        return self.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(self: View, request: Request) -> Response:
        recovery: Any = getattr(app.tables, "recovery", None)  # TableManager, not its ABC
        busy = bool(app.rebalancing or (recovery is not None and recovery.in_recovery))
        status = 503 if busy else 200
        return self.json({"ready": not busy, "rebalancing": app.rebalancing}, status=status)
