"""What every agent module shares: the app context, topic and table declaration, the audit send.

``streams.app`` builds a :class:`ResponderStreams` and hands it to each ``register_*``
function (triage, remediation, notify, adhoc); those modules import this one and never
``streams.app``, so the wiring points one way: app -> agents -> context.

Every topic and table is declared here from its one declaration in
``responder.models.topics``, the same way: raw bytes (values are the domain's pydantic
JSON, so nothing in the core depends on Faust's record types), the deployment's
partitions, and ``internal=True`` so Faust creates a topic with those partitions when the
worker subscribes (a topic first written by a send is auto-created with the broker's
``num.partitions``, and a missing subscribed topic is ignored until the consumer's next
metadata refresh, minutes). The worker also creates all of them before it starts
(``responder.kafka_admin``).
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import faust
from faust.streams import _current_event

from responder.clock import UtcClock
from responder.models.incidents import AuditEvent
from responder.models.topics import Table, Topic, audit_key, topic_name
from responder.settings import KafkaSettings
from streams.metrics import WorkerMetrics
from streams.offsets import ProcessedOffsets
from streams.pipeline import OrderedAcks

Handler = Callable[[OrderedAcks, Any], Awaitable[None]]
"""``handle(acks, event)``: one event of a pipelined agent."""

RAW: Any = faust.Schema(
    key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
)
"""Every topic's schema: Faust moves bytes; keys and values are ours."""


@dataclass(frozen=True)
class ResponderStreams:
    """The app and what hangs off it; agents receive this rather than reaching for globals."""

    app: faust.App
    kafka: KafkaSettings
    alerts: Any  # faust.TopicT: untyped library
    incidents: Any
    audit: Any
    incidents_table: Any  # faust.Table[bytes, bytes]: key = incident key, value = Incident JSON
    clock: UtcClock
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

    def topic(self, *topics: Topic) -> Any:
        """The Faust topic of one or more declared topics (several: one agent reads them all)."""
        return declare_topic(self.app, self.kafka, *topics)

    def table(self, table: Table) -> Any:
        """The Faust table of a declared table (bytes keys and values pick the raw codec)."""
        return declare_table(self.app, self.kafka, table)

    def topic_name(self, topic: Topic) -> str:
        return topic_name(self.kafka.topic_prefix, topic)

    async def send_audit(self, event: AuditEvent) -> Any:
        """Hand an audit record to the producer, keyed by what it is about; its ack to await."""
        return await self.audit.send(key=audit_key(event), value=event.model_dump_json().encode())

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


def declare_topic(app: faust.App, kafka: KafkaSettings, *topics: Topic) -> Any:
    return app.topic(
        *(topic_name(kafka.topic_prefix, t) for t in topics),
        partitions=kafka.partitions,
        schema=RAW,
        internal=True,
    )


def declare_table(app: faust.App, kafka: KafkaSettings, table: Table) -> Any:
    # The changelog is compacted and gets the source topics' partition count, which Faust
    # requires to recover a partition's table from its changelog.
    return app.Table(
        table.name,
        partitions=kafka.partitions,
        key_type=bytes,
        value_type=bytes,
        help=f"{table.key} -> {table.value}. {table.doc}",
    )


@contextmanager
def as_current(event: Any) -> Iterator[None]:
    """Make ``event`` Faust's current event (tables pick the partition of a key from it).

    Inside a ``take_events`` batch, Faust's current event is whichever came last; a table
    read or write for an earlier event of the batch must name that event's partition.
    """
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)
