"""The Faust application: the app, its shared topics and table, and every agent attached.

Built by a factory rather than at import time, so the CLI, tests and benches can each run
an app with their own settings (topic prefix, app id, store) against the same broker.
The topics and tables are those of ``responder.models.topics``, declared on the app by
``streams.context``; each agent module's ``register_*`` receives the app context
(``streams.context.ResponderStreams``) and declares what only it uses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import faust
from prometheus_client import CollectorRegistry

from responder.clock import UtcClock, utc_now
from responder.models.topics import ALERTS, AUDIT, INCIDENTS, INCIDENTS_TABLE
from responder.settings import Settings
from streams.adhoc import register_adhoc
from streams.context import ResponderStreams, declare_table, declare_topic
from streams.metric_streams import register_metric_streams
from streams.metrics import WorkerMetrics
from streams.notify import register_notify
from streams.offsets import CappedTransport, ProcessedOffsets
from streams.remediate import RemediationRuntime, register_remediation
from streams.triage import register_triage

if TYPE_CHECKING:
    from responder.engine.records import Stage


def _broker_urls(bootstrap: str) -> list[str]:
    return [f"kafka://{host.strip()}" for host in bootstrap.split(",") if host.strip()]


def create_streams(
    settings: Settings,
    *,
    clock: UtcClock = utc_now,
    remediation: RemediationRuntime | None = None,
) -> ResponderStreams:
    """The Faust app with every topic, table and agent of the worker."""
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

    streams = ResponderStreams(
        app=app,
        kafka=kafka,
        alerts=declare_topic(app, kafka, ALERTS),
        incidents=declare_topic(app, kafka, INCIDENTS),
        audit=declare_topic(app, kafka, AUDIT),
        incidents_table=declare_table(app, kafka, INCIDENTS_TABLE),
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
    register_metric_streams(streams, settings, lambda: remediating.runbooks.current)
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


def faust_worker(streams: ResponderStreams, loglevel: str) -> faust.Worker:
    """The Faust worker that runs ``streams``, without Faust's terminal spinner.

    At a log level of WARN or above the spinner's handler sets the *root* logger to DEBUG
    (``faust.Worker._setup_spinner_handler``), so every debug call in Faust and aiokafka
    (one or more per message sent) builds a record that the handler then drops: about a
    tenth of a busy worker's CPU. Without the spinner the root keeps the level asked for.
    """
    worker = faust.Worker(streams.app, loglevel=loglevel, redirect_stdouts=False)
    worker.spinner = None
    return worker
