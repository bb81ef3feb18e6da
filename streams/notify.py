"""The notify agent: ``responder.notifications`` to Slack and PagerDuty, delivered once, never stuck.

The remediation engine publishes one ``Notification`` per incident phase, keyed by incident
id (its ``Notify`` effect, sent by ``streams.effects.EffectRunner.issue``). This agent decides who hears about it (routing,
:func:`recipients`) and hands it to the notifiers of ``responder.integrations`` (delivery).

- **Memory per incident in tables.** Slack's message ``ts`` and the PagerDuty routing key
  a trigger used live in two Faust tables keyed by incident id, so they are on the
  partition of the notification that needs them (co-partitioned with the topic) and come
  back from their changelogs after a crash or a rebalance. A write waits for its
  changelog record before the notification is acknowledged, so a redelivered transition
  finds its idempotency key and is not posted twice.
- **Bounded retries.** A ``TemporaryError`` is retried after its ``delay`` (capped) until
  the notification's retry budget is spent; then it is given up, logged and audited. A
  ``PermanentError`` is logged and audited at once. Either way the agent moves on.
- **Notifiers do not wait for each other.** One agent per notifier (``notify-slack``,
  ``notify-pagerduty``) on the same topic: Faust hands every message to both and commits an
  offset once both are done with it, so a PagerDuty outage holds back PagerDuty's own
  queue (and offset commits), never Slack's messages (Alertmanager's one pipeline per
  receiver). A redelivery after a crash is absorbed by each notifier's table.
- **Incidents do not wait for each other.** A batch is split by incident: one incident's
  notifications go in order, different incidents in parallel, so a slow retry delays its
  own incident and at most the batch it came in, never the partition forever.
- **Replies.** A command given in Slack carries its ``response_url``; once the engine
  has applied it, a ``ReplyToCommand`` comes on ``responder.command-replies`` and the
  person is told what came of it (``ResponseUrlReplier``, same bounded retries).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import structlog
from faust.streams import current_event
from pydantic import BaseModel, ValidationError

from responder.engine.records import ReplyToCommand
from responder.errors import PermanentError, TemporaryError
from responder.integrations.base import DeliveryResult, Notifier, Sleep, default_sleep
from responder.integrations.pagerduty.events import PagedIncident
from responder.integrations.registry import NotifierDeps, build_notifiers
from responder.integrations.seen import SeenCache
from responder.integrations.slack.notifier import SlackMessageRef
from responder.integrations.slack.reply import ResponseUrlReplier
from responder.models.incidents import AuditEvent
from responder.models.notifications import IncidentPhase, Notification
from responder.models.topics import NOTIFICATIONS, PAGERDUTY_TABLE, REPLIES, SLACK_TABLE
from responder.settings import NotifySettings, Settings
from streams.context import ResponderStreams, as_current

log = structlog.get_logger(__name__)

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

NotifierFactory = Callable[[NotifierDeps], Mapping[str, Notifier]]
"""Builds the notifiers around the table-backed stores (production: ``build_notifiers``)."""

Monotonic = Callable[[], float]


class TableStore(Generic[M]):
    """A notifier's per-incident memory in a Faust table (the Slack and PagerDuty store Protocols).

    Must be used while the notification's event is Faust's current event (the agent sees to
    it): the table's partition is the event's partition.
    """

    def __init__(self, table: Any, model: type[M]) -> None:
        self._table = table
        self._model = model

    async def get(self, incident_id: str) -> M | None:
        raw = self._table.get(incident_id.encode())
        return self._model.model_validate_json(raw) if raw is not None else None

    async def put(self, incident_id: str, value: M) -> None:
        """Write, and return once the changelog record is on the broker.

        Durable before the notification is acknowledged: a redelivery must find it. The
        partition is the current event's, named directly: Faust's ``partition_for_key``
        first compares partition counts from the consumer's subscription metadata, which
        on a first start can predate the changelog topic's creation and fail the write
        (``PartitionsMismatch`` "has 0 partitions") after Slack or PagerDuty already
        accepted the message. The changelog is declared with the source topic's
        partition count (``register_notify``), so the check adds nothing here.
        """
        event = current_event()
        if event is None:
            raise TypeError("TableStore.put outside of the notify agent's events")
        key = incident_id.encode()
        changelog = self._table.send_changelog(
            event.message.partition, key, value.model_dump_json().encode()
        )
        self._table.data[key] = value.model_dump_json().encode()
        await changelog


def recipients(n: Notification, notifiers: Mapping[str, Notifier]) -> list[Notifier]:
    """Who hears about this transition.

    Slack hears everything: the incident's one message follows it from open to resolved.
    PagerDuty is paged only by an escalation level that names a PagerDuty service (a Slack
    level must not page anyone), and hears acknowledgements (also of an incident whose
    step still waits for approval: ``Notification.acknowledged``) and resolutions, which
    its notifier ignores for incidents it never paged.
    """
    chosen: list[Notifier] = []
    if (slack := notifiers.get("slack")) is not None:
        chosen.append(slack)
    pagerduty = notifiers.get("pagerduty")
    if pagerduty is not None and (
        n.phase in (IncidentPhase.ACKNOWLEDGED, IncidentPhase.RESOLVED)
        or n.acknowledged
        or (n.phase is IncidentPhase.ESCALATED and n.pagerduty_service is not None)
    ):
        chosen.append(pagerduty)
    return chosen


@dataclass(frozen=True, slots=True)
class Failure:
    """A notification a notifier could not deliver."""

    notifier: str
    error: str
    permanent: bool
    attempts: int


Audit = Callable[[Notification, Failure], Awaitable[None]]


@dataclass
class Deliverer:
    """Delivers notifications to their recipients with bounded retries; reports failures."""

    notifiers: Mapping[str, Notifier]
    settings: NotifySettings
    audit: Audit
    replier: ResponseUrlReplier | None = None
    sleep: Sleep = default_sleep
    monotonic: Monotonic = time.monotonic
    failures: int = field(default=0)

    async def deliver(self, n: Notification) -> list[DeliveryResult | Failure]:
        """Every recipient in turn (Slack first, then PagerDuty); never raises for a notifier."""
        outcomes: list[DeliveryResult | Failure] = []
        for notifier in recipients(n, self.notifiers):
            outcome = await self._one(notifier, n)
            if isinstance(outcome, Failure):
                self.failures += 1
                log.error(
                    "notify.failed",
                    incident_id=n.incident_id,
                    runbook=n.runbook_id,
                    notifier=outcome.notifier,
                    permanent=outcome.permanent,
                    attempts=outcome.attempts,
                    error=outcome.error,
                )
                try:
                    await self.audit(n, outcome)
                except Exception:  # the audit topic down must not stop delivery to others
                    log.exception("notify.audit_failed", incident_id=n.incident_id)
            outcomes.append(outcome)
        return outcomes

    async def _one(self, notifier: Notifier, n: Notification) -> DeliveryResult | Failure:
        return await self.retrying(notifier.name, n.incident_id, lambda: notifier.notify(n))

    async def reply(self, r: ReplyToCommand) -> bool:
        """Answer a command on its response_url; False (logged) when that failed for good."""
        if self.replier is None:
            return False

        async def post() -> bool:
            assert self.replier is not None
            await self.replier.reply(r.url, r.text)
            return True

        outcome = await self.retrying("response_url", r.incident_id, post)
        if isinstance(outcome, Failure):
            log.warning(
                "notify.reply_failed",
                incident_id=r.incident_id,
                permanent=outcome.permanent,
                error=outcome.error,
            )
            return False
        return True

    async def retrying(
        self, name: str, incident_id: str, call: Callable[[], Awaitable[T]]
    ) -> T | Failure:
        """``call`` until it succeeds, fails for good, or the retry budget is spent."""
        started = self.monotonic()
        attempts = 0
        while True:
            attempts += 1
            try:
                return await call()
            except TemporaryError as exc:
                delay = min(max(exc.delay, 0.0), self.settings.retry_max_delay_s)
                spent = self.monotonic() - started
                if spent + delay > self.settings.retry_budget_s:
                    return Failure(name, f"gave up: {exc}", False, attempts)
                log.warning(
                    "notify.retry",
                    incident_id=incident_id,
                    notifier=name,
                    attempt=attempts,
                    delay_s=delay,
                    error=str(exc),
                )
                await self.sleep(delay)
            except PermanentError as exc:
                return Failure(name, str(exc), True, attempts)
            except Exception as exc:  # a notifier bug must not stop the agent
                log.exception("notify.crashed", incident_id=incident_id, notifier=name)
                return Failure(name, f"unexpected {type(exc).__name__}", True, attempts)


@dataclass
class NotifyStreams:
    topic: Any
    slack_table: Any
    pagerduty_table: Any
    deliverer: Deliverer


def register_notify(
    streams: ResponderStreams,
    settings: Settings,
    factory: NotifierFactory | None = None,
) -> NotifyStreams | None:
    """Declare the notify tables and attach the agent; None when no notifier is enabled."""
    app = streams.app
    if factory is None and not (settings.slack.enabled or settings.pagerduty.enabled):
        log.info("notify.disabled", reason="neither slack nor pagerduty is enabled")
        return None  # no tables, no agent: nothing would read them

    slack_table = streams.table(SLACK_TABLE)
    pagerduty_table = streams.table(PAGERDUTY_TABLE)
    deps = NotifierDeps(
        slack_store=TableStore(slack_table, SlackMessageRef),
        pagerduty_store=TableStore(pagerduty_table, PagedIncident),
    )
    notifiers = (factory or (lambda d: build_notifiers(settings, d)))(deps)
    if not notifiers:
        log.info("notify.disabled", reason="neither slack nor pagerduty is enabled")
        return None

    notifications = streams.topic(NOTIFICATIONS)

    async def audit(n: Notification, failure: Failure) -> None:
        event = AuditEvent(
            kind="notify.failed",
            incident_id=n.incident_id,
            incident_key="",
            at=streams.clock(),
            data={
                "notifier": failure.notifier,
                "error": failure.error[:500],
                "permanent": failure.permanent,
                "attempts": failure.attempts,
                "idempotency_key": n.idempotency_key,
                "phase": n.phase.value,
            },
        )
        await (await streams.send_audit(event))

    deliverer = Deliverer(
        notifiers=notifiers,
        settings=settings.notify,
        audit=audit,
        replier=ResponseUrlReplier(settings.slack) if settings.slack.enabled else None,
    )

    def agent_for(name: str, notifier: Notifier) -> Callable[[Any], Awaitable[None]]:
        only = Deliverer(
            notifiers={name: notifier},
            settings=settings.notify,
            audit=audit,
            sleep=deliverer.sleep,
            monotonic=deliverer.monotonic,
        )

        async def incident(items: list[tuple[Any, Notification]]) -> None:
            for event, n in items:
                with as_current(event):
                    await only.deliver(n)

        async def notify(stream: Any) -> None:
            conf = settings.notify
            async for events in stream.take_events(conf.batch_max, within=conf.batch_within_s):
                by_incident: dict[str, list[tuple[Any, Notification]]] = {}
                for event in events:
                    try:
                        n = Notification.model_validate_json(event.value)
                    except ValidationError as exc:
                        log.error("notify.invalid_notification", error=str(exc)[:500])
                        continue
                    if recipients(n, {name: notifier}):
                        by_incident.setdefault(n.incident_id, []).append((event, n))
                # One incident in order, incidents in parallel; offsets acknowledged after all.
                await asyncio.gather(*(incident(items) for items in by_incident.values()))

        return notify

    for name, notifier in notifiers.items():
        app.agent(notifications, name=f"notify-{name}", concurrency=1)(agent_for(name, notifier))

    # Replies to commands (Slack response_url): once per command key; the memory is per
    # process, so a crash between a reply and its offset commit may answer twice.
    answered = SeenCache(ttl_s=3600.0, max_entries=100_000)

    async def answer(r: ReplyToCommand) -> None:
        if r.idempotency_key in answered:
            return
        answered.add(r.idempotency_key)  # before the post: a replay in the same batch waits out
        await deliverer.reply(r)

    async def reply(stream: Any) -> None:
        conf = settings.notify
        async for events in stream.take_events(conf.batch_max, within=conf.batch_within_s):
            pending = []
            for event in events:
                try:
                    pending.append(answer(ReplyToCommand.model_validate_json(event.value)))
                except ValidationError as exc:
                    log.error("notify.invalid_reply", error=str(exc)[:500])
            await asyncio.gather(*pending)

    if deliverer.replier is not None:
        app.agent(streams.topic(REPLIES), name="command-replies", concurrency=1)(reply)

    async def _close(*_: Any, **__: Any) -> None:
        for notifier in notifiers.values():
            try:
                await notifier.aclose()
            except Exception:  # closing must reach every notifier
                log.exception("notify.close_failed", notifier=notifier.name)

    app.on_before_shutdown.connect(_close)
    log.info("notify.enabled", notifiers=sorted(notifiers))
    return NotifyStreams(
        topic=notifications,
        slack_table=slack_table,
        pagerduty_table=pagerduty_table,
        deliverer=deliverer,
    )
