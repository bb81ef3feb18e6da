"""ChatOps in the ingest process: its command, audit and read sides wired to Kafka.

``responder.ingest.chatops.ChatOps`` needs three things from outside; here they are:

- ``CommandSink``: the same idempotent, ``acks=all`` producer wrapper the Alertmanager
  webhook uses (``KafkaPublisher``), on ``responder.commands``, keyed by incident id
  (the engine's command router reads commands keyed by incident id, co-partitioned with
  its ``remediation-routes``). ``publish`` returns once the broker has the command.
- ``AuditSink``: every inbound request's fate (accepted, refused, duplicate) as an
  ``AuditEvent`` on ``responder.audit`` (kind ``chatops.<outcome>``), no secret in it.
- ``IncidentReader``: :class:`NotificationView`, a bounded in-memory view built by
  reading ``responder.notifications`` from the start. The worker's tables are the truth,
  but they are spread over workers by partition and keyed by target; the notifications
  already carry exactly what ``/responder list|show`` and per-runbook authorization
  need (id, runbook, phase, steps, target), one message per transition, so the latest
  per incident *is* the read model. It lags the engine by one broker round trip; an
  incident is in the view before anyone can have been paged or shown a button for it,
  because that page or button came from the very notification the view reads.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog
from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from responder.actions.registry import ACTIONS
from responder.ingest.chatops import ChatOps
from responder.ingest.publisher import KafkaPublisher
from responder.integrations.base import InboundAudit
from responder.integrations.slack.notifier import build_web_client
from responder.models.commands import Command
from responder.models.incidents import AuditEvent
from responder.models.notifications import IncidentPhase, IncidentSummary, Notification
from responder.models.topics import AUDIT, COMMANDS, NOTIFICATIONS, Topic, topic_name
from responder.settings import Settings

log = structlog.get_logger(__name__)


def command_key(command: Command) -> bytes:
    """The message key the engine's command router expects: the incident id.

    ``run`` and ``silence`` name no incident; they are keyed by what they act on so that
    repeats of one land on one partition.
    """
    return (command.incident_id or command.target or command.kind.value).encode()


class KafkaCommandSink:
    """``CommandSink`` onto ``responder.commands``: returns once the broker acknowledged."""

    def __init__(self, publisher: KafkaPublisher) -> None:
        self._publisher = publisher

    async def publish(self, command: Command) -> None:
        await self._publisher.publish([(command_key(command), command.model_dump_json().encode())])


def audit_event(record: InboundAudit) -> AuditEvent:
    """An inbound record in the shape every other fact on ``responder.audit`` has."""
    return AuditEvent(
        kind=f"chatops.{record.outcome.value}",
        incident_id=record.incident_id or "",
        incident_key="",
        at=record.at,
        data=record.model_dump(mode="json", exclude={"at"}),
    )


class KafkaAuditSink:
    """``AuditSink`` onto ``responder.audit``, keyed by incident id (or the channel)."""

    def __init__(self, publisher: KafkaPublisher) -> None:
        self._publisher = publisher

    async def emit(self, record: InboundAudit) -> None:
        event = audit_event(record)
        key = (record.incident_id or record.channel).encode()
        await self._publisher.publish([(key, event.model_dump_json().encode())])


@dataclass
class _Entry:
    latest: Notification
    opened_at: datetime


class NotificationView:
    """The ``IncidentReader`` of ingest: the latest notification of each incident, bounded.

    At most ``max_incidents`` are kept; past that, resolved incidents go first (oldest
    first), then the least recently changed open ones.
    """

    def __init__(
        self, bootstrap: str, topic: str, *, max_incidents: int, poll_timeout_ms: int = 500
    ) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._max = max_incidents
        self._poll_ms = poll_timeout_ms
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._resolved: OrderedDict[str, None] = OrderedDict()
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._entries)

    # --- the reader ------------------------------------------------------------------------

    async def list_open(self, limit: int) -> Sequence[IncidentSummary]:
        open_ = [entry for key, entry in self._entries.items() if key not in self._resolved]
        open_.sort(key=lambda e: e.opened_at, reverse=True)
        return [self._summary(e) for e in open_[:limit]]

    async def get(self, incident_id: str) -> IncidentSummary | None:
        entry = self._entries.get(incident_id)
        return self._summary(entry) if entry is not None else None

    @staticmethod
    def _summary(entry: _Entry) -> IncidentSummary:
        n = entry.latest
        return IncidentSummary(
            id=n.incident_id,
            runbook_id=n.runbook_id,
            title=n.title,
            phase=n.phase,
            severity=n.severity,
            opened_at=entry.opened_at,
            target=dict(n.target),
            current_step=n.current_step,
            steps=n.steps,
        )

    # --- feeding it ------------------------------------------------------------------------

    def apply(self, n: Notification) -> None:
        """Take one notification (older sequences than what is held are ignored)."""
        entry = self._entries.get(n.incident_id)
        if entry is not None and n.sequence < entry.latest.sequence:
            return
        if entry is None:
            entry = _Entry(latest=n, opened_at=n.occurred_at)
        else:
            entry.latest = n
        self._entries[n.incident_id] = entry
        self._entries.move_to_end(n.incident_id)
        if n.phase is IncidentPhase.RESOLVED:
            self._resolved[n.incident_id] = None
            self._resolved.move_to_end(n.incident_id)
        self._evict()

    def _evict(self) -> None:
        while len(self._entries) > self._max:
            if self._resolved:
                victim, _ = self._resolved.popitem(last=False)
            else:
                victim = next(iter(self._entries))
            self._entries.pop(victim, None)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="notification-view")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        delay = 0.2
        while True:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap,
                enable_auto_commit=False,
                client_id="responder-ingest-view",
            )
            try:
                await consumer.start()
                await self._consume(consumer)
            except (KafkaError, OSError) as exc:
                log.warning("chatops.view_reconnect", error=str(exc), retry_in_s=delay)
            finally:
                await consumer.stop()
            await asyncio.sleep(delay)  # back-off between connection attempts
            delay = min(delay * 2, 5.0)

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        while not (partitions := consumer.partitions_for_topic(self._topic)):
            # The worker creates the topic; until then there is nothing to show.
            await consumer._client.force_metadata_update()
            await asyncio.sleep(1.0)  # topic metadata refresh interval while it does not exist
        assigned = [TopicPartition(self._topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        log.info("chatops.view_reading", topic=self._topic, partitions=len(assigned))
        while True:
            batches = await consumer.getmany(timeout_ms=self._poll_ms, max_records=500)
            for messages in batches.values():
                for message in messages:
                    if message.value is None:
                        continue
                    try:
                        self.apply(Notification.model_validate_json(message.value))
                    except ValidationError:
                        log.warning("chatops.view_invalid_notification", offset=message.offset)


@dataclass
class ChatOpsWiring:
    """ChatOps and the Kafka clients behind it, started and stopped together."""

    chatops: ChatOps
    commands: KafkaPublisher
    audit: KafkaPublisher
    view: NotificationView

    async def start(self) -> None:
        await self.commands.start()
        await self.audit.start()
        await self.view.start()

    async def stop(self) -> None:
        await self.chatops.close()
        await self.view.stop()
        await self.audit.stop()
        await self.commands.stop()

    async def wait_connected(self, timeout_s: float) -> bool:
        return await self.commands.wait_connected(timeout_s) and await self.audit.wait_connected(
            timeout_s
        )

    def mount(self, app: web.Application) -> None:
        """Add the routes to ``app``; the app's lifetime starts and stops the clients."""
        app.add_routes(self.chatops.routes())

        async def lifetime(_: web.Application) -> AsyncIterator[None]:
            await self.start()
            yield
            await self.stop()

        app.cleanup_ctx.append(lifetime)


def build_chatops(settings: Settings) -> ChatOpsWiring | None:
    """The wiring for the integrations configured; None when neither Slack nor PagerDuty is."""
    slack, pagerduty, kafka = settings.slack, settings.pagerduty, settings.kafka
    if slack.signing_secret is None and not pagerduty.webhook_secrets:
        return None

    def publisher(topic: Topic) -> KafkaPublisher:
        return KafkaPublisher(
            kafka,
            topic_name(kafka.topic_prefix, topic),
            retry_after_s=settings.ingest.retry_after_s,
        )

    commands, audit = publisher(COMMANDS), publisher(AUDIT)
    view = NotificationView(
        kafka.bootstrap,
        topic_name(kafka.topic_prefix, NOTIFICATIONS),
        max_incidents=settings.notify.view_max_incidents,
    )
    chatops = ChatOps(
        sink=KafkaCommandSink(commands),
        reader=view,
        audit=KafkaAuditSink(audit),
        slack=slack,
        pagerduty=pagerduty,
        slack_client=build_web_client(slack) if slack.bot_token is not None else None,
        known_actions=ACTIONS.keys(),
    )
    return ChatOpsWiring(chatops=chatops, commands=commands, audit=audit, view=view)
