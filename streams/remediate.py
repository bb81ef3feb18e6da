"""Remediation on Faust: the router, the command router, the remediate agent and the deadline timer.

- ``remediation-router`` re-keys triage's transitions (``responder.incidents``, keyed by
  incident key) onto ``responder.remediation`` keyed by *target*, resolving runbook and
  target from the incident's labels with the loaded runbook set.
- ``remediation-commands`` consumes ``responder.commands`` and ``remediation-routes``
  (both keyed by incident id, so co-partitioned): route entries fill the local
  ``incident-routes`` table, commands are looked up there and forwarded to the target; a
  command read before its route entry waits for it (``streams.commands``).
- the router and the commands agent acknowledge events in order once their writes are on
  the broker, without waiting for each before taking the next (``streams.pipeline``).
- ``remediate`` (concurrency 1: faust-streaming issue 606) is the only writer of the
  ``remediation`` table. Per event: read the target's record, ``decide``, publish the
  decision's messages (notifications, audit, routes) and wait for the broker, store the
  new record and wait for its changelog record, and only then start actions and
  verifications. A crash at any point replays the event: messages are sent again (their
  idempotency keys absorb it) and a step recorded as started is reconciled, never lost.
- a timer reports due deadlines and orphaned steps (``streams.deadlines``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

import structlog
from pydantic import ValidationError

from responder.actions.catalogue import ActionCatalogue
from responder.actions.runner import ActionProvider
from responder.clock import UtcClock
from responder.engine.machine import EngineConfig, decide
from responder.engine.records import (
    EVENT_ADAPTER,
    DeadlineDue,
    Event,
    RouteEntry,
    TargetState,
)
from responder.engine.routing import Routed, command_event, route_transition
from responder.models.commands import Command
from responder.models.incidents import AuditEvent, IncidentTransition
from responder.models.topics import (
    COMMANDS,
    NOTIFICATIONS,
    REMEDIATION,
    REMEDIATION_TABLE,
    REPLIES,
    ROUTES,
    ROUTES_TABLE,
)
from responder.runbooks.requirements import RunbookRequirements
from responder.runbooks.source import RunbookSource
from responder.settings import Settings
from responder.verification import PodURLs
from streams.commands import CommandRouter
from streams.context import ResponderStreams
from streams.deadlines import DeadlineScanner
from streams.effects import EffectRunner, Outbound
from streams.pipeline import OrderedAcks, table_write

log = structlog.get_logger(__name__)


def production_actions(settings: Settings) -> ActionCatalogue:
    """The built-in catalogue: a family's clients are made when one of its actions first runs,
    so a worker whose runbooks only clear caches needs no cluster (its runbooks' needs are
    checked at load: ``responder.runbooks.requirements``)."""
    return ActionCatalogue(settings.actions)


@dataclass
class RemediationRuntime:
    """What the remediation wiring takes from outside: injectable for tests and benches."""

    actions: ActionProvider | None = None
    runbooks: RunbookSource | None = None
    pods: PodURLs | None = None
    """Where a probe of a target's pods finds their URLs; None: the production catalogue's
    (with injected ``actions``: no pod probes unless given here)."""


@dataclass
class RemediationStreams:
    remediation: Any
    commands: Any
    routes: Any
    notifications: Any
    table: Any
    routes_table: Any
    runner: EffectRunner
    scanner: DeadlineScanner
    runbooks: RunbookSource


def register_remediation(
    streams: ResponderStreams, settings: Settings, runtime: RemediationRuntime | None = None
) -> RemediationStreams:
    """Declare remediation's topics and tables on the app and attach its parts: the
    transition router, the command intake, the remediator and the deadline timer."""
    runtime = runtime or RemediationRuntime()
    conf = settings.remediation

    remediation = streams.topic(REMEDIATION)
    commands_in = streams.topic(COMMANDS, ROUTES)
    routes = streams.topic(ROUTES)
    notifications = streams.topic(NOTIFICATIONS)
    state_table = streams.table(REMEDIATION_TABLE)
    routes_table = streams.table(ROUTES_TABLE)
    catalogue: ActionCatalogue | None = None
    actions: ActionProvider
    if runtime.actions is None:
        actions = catalogue = production_actions(settings)
    else:
        actions = runtime.actions
    runbooks = runtime.runbooks or RunbookSource.from_directory(
        conf.runbooks_dir, admit=RunbookRequirements(settings, catalogue)
    )
    streams.startup_checks.append(runbooks.check_startup)

    async def issue(target_key: str, event: Event) -> Any:
        """Hand an engine event to the producer (in call order); returns its acknowledgement."""
        return await remediation.send(
            key=target_key.encode(), value=event.model_dump_json().encode()
        )

    async def send(key: str, event: Event) -> None:
        """Publish an engine event from a task (a finished action or verification, a due
        deadline) and return once the broker has it.

        Through Faust's producer buffer (``send_soon``: one sender, first in first out), not
        ``send``: aiokafka wakes every coroutine waiting on a full batch when it drains and
        all of them retry, so thousands of tasks sending at once (a storm's finished
        actions, one tick's due deadlines) cost quadratic time; queued, each costs one put.
        """
        await remediation.send_soon(key=key.encode(), value=event.model_dump_json().encode())

    runner = EffectRunner(
        settings=conf,
        actions_settings=settings.actions,
        actions=actions,
        send=send,
        outbound=Outbound(
            notifications=notifications,
            audit=streams.audit,
            routes=routes,
            replies=streams.topic(REPLIES),
        ),
        metrics=streams.metrics,
        pods=runtime.pods or (catalogue.pod_urls if catalogue is not None else None),
    )
    scanner = DeadlineScanner(
        table=state_table,
        send=send,
        running=runner.running,
        clock=streams.clock,
        rescan_interval_s=conf.rescan_interval_s,
        resume_grace_s=conf.resume_grace_s,
    )

    async def audit(event: AuditEvent) -> None:
        await (await streams.send_audit(event))

    intake = CommandIntake(
        routes_table,
        routes_topic=streams.topic_name(ROUTES),
        router=CommandRouter(
            lookup=lambda incident_id: _routed_target(routes_table, incident_id),
            issue=issue,
            audit=audit,
            clock=streams.clock,
            wait_s=conf.command_route_wait_s,
        ),
    )
    remediator = Remediator(
        state_table,
        runbooks=runbooks,
        runner=runner,
        scanner=scanner,
        clock=streams.clock,
        config=EngineConfig(global_dry_run=conf.dry_run),
    )
    streams.pipelined_agent(
        streams.incidents, "remediation-router", TransitionRouter(runbooks, issue)
    )
    streams.pipelined_agent(commands_in, "remediation-commands", intake)
    streams.pipelined_agent(remediation, "remediate", remediator)
    _attach_lifecycle(streams, settings, runner, scanner, runbooks, catalogue)
    return RemediationStreams(
        remediation=remediation,
        commands=streams.topic(COMMANDS),
        routes=routes,
        notifications=notifications,
        table=state_table,
        routes_table=routes_table,
        runner=runner,
        scanner=scanner,
        runbooks=runbooks,
    )


Issue: TypeAlias = Callable[[str, Event], Awaitable[Any]]
"""Hand an engine event for a target key to the producer; returns its acknowledgement."""


class TransitionRouter:
    """``remediation-router``: triage's transitions (keyed by incident key) re-keyed by
    *target* onto ``responder.remediation``, runbook and target resolved from the incident's
    labels with the current runbook set. A transition is acknowledged (its offset
    committable) only once the broker has the re-keyed event (``OrderedAcks``)."""

    def __init__(self, runbooks: RunbookSource, issue: Issue) -> None:
        self._runbooks = runbooks
        self._issue = issue

    async def __call__(self, acks: OrderedAcks, event: Any) -> None:
        await acks.add(event, await self.route(event.value))

    async def route(self, value: bytes) -> list[Any]:
        """Re-key one transition; the sends to await (none when it is not remediation's)."""
        try:
            transition = IncidentTransition.model_validate_json(value)
        except ValidationError as exc:
            log.error("remediation.invalid_transition", error=str(exc))
            return []
        routed = route_transition(transition, self._runbooks.current)
        if not isinstance(routed, Routed):
            log.info(
                "remediation.unrouted", incident_id=transition.incident_id, reason=routed.reason
            )
            return []
        return [await self._issue(routed.key, routed.event)]


def _routed_target(routes_table: Any, incident_id: str) -> str | None:
    target_key = routes_table.get(incident_id.encode())
    return None if target_key is None else bytes(target_key).decode()


class CommandIntake:
    """``remediation-commands``: reads ``responder.commands`` and ``remediation-routes``
    (both keyed by incident id, so co-partitioned). Route entries fill the local
    ``incident-routes`` table; commands (approve, ack, ...) are forwarded to their target
    by the ``CommandRouter``, which holds one read before its route entry until it comes."""

    def __init__(self, routes_table: Any, *, routes_topic: str, router: CommandRouter) -> None:
        self._table = routes_table
        self._routes_topic = routes_topic
        self._router = router

    async def __call__(self, acks: OrderedAcks, event: Any) -> None:
        if event.message.topic == self._routes_topic:
            await self._route_entry(acks, event)
        else:
            await acks.add(event, await self._forward(event.value))

    async def _route_entry(self, acks: OrderedAcks, event: Any) -> None:
        try:
            entry = RouteEntry.model_validate_json(event.value)
        except ValidationError as exc:
            log.error("remediation.invalid_route", error=str(exc))
            await acks.add(event)
            return
        write = table_write(self._table, entry.incident_id.encode(), entry.target_key.encode())
        await self._router.route_known(entry.incident_id, entry.target_key)
        await acks.add(event, (), write)

    async def _forward(self, value: bytes) -> list[Any]:
        try:
            command = Command.model_validate_json(value)
        except ValidationError as exc:
            log.error("remediation.invalid_command", error=str(exc))
            return []
        received = command_event(command)
        if received is None:
            return []  # run / silence: not remediation's
        return [await self._router.command(received, command.kind.value)]


class Remediator:
    """``remediate``, the only writer of the ``remediation`` table (concurrency 1:
    faust-streaming issue 606).

    Per event: read the target's record, ``decide``, hand the decision's messages to the
    producer at once; the new state is visible to the next event at once (in memory) and
    its changelog record follows the messages (``OrderedAcks``: in event order, after this
    event's messages are acknowledged); actions and verifications start only once all of
    it is on the broker, so the ledger's "started" entry is durable before an action can
    act. A crash anywhere replays the event: messages are sent again (their idempotency
    keys absorb it) and a step recorded as started is reconciled, never lost.
    """

    def __init__(
        self,
        table: Any,
        *,
        runbooks: RunbookSource,
        runner: EffectRunner,
        scanner: DeadlineScanner,
        clock: UtcClock,
        config: EngineConfig,
    ) -> None:
        self._table = table
        self._runbooks = runbooks
        self._runner = runner
        self._scanner = scanner
        self._clock = clock
        self._config = config

    async def __call__(self, acks: OrderedAcks, event: Any) -> None:
        raw_key: bytes = event.key
        try:
            engine_event = EVENT_ADAPTER.validate_json(event.value)
        except ValidationError as exc:
            log.error("remediation.invalid_event", key=raw_key, error=str(exc))
            await acks.add(event)
            return
        stored = self._table.get(raw_key)
        state = TargetState.model_validate_json(stored) if stored is not None else None
        key = raw_key.decode()
        decision = decide(
            state,
            engine_event,
            target_key=key,
            runbooks=self._runbooks.lookup,
            now=self._clock(),
            config=self._config,
        )
        sent = await self._runner.issue(decision.effects)
        write = None
        if decision.changed:
            write = table_write(self._table, raw_key, decision.state.model_dump_json().encode())

        def act() -> None:
            if decision.changed:
                self._scanner.update(key, decision.state)
            if isinstance(engine_event, DeadlineDue):
                self._scanner.handled(engine_event.incident_id, engine_event.kind)
            self._runner.start(key, decision.effects)

        await acks.add(event, sent, write, act)


def _attach_lifecycle(
    streams: ResponderStreams,
    settings: Settings,
    runner: EffectRunner,
    scanner: DeadlineScanner,
    runbooks: RunbookSource,
    catalogue: ActionCatalogue | None,
) -> None:
    """The deadline timer, the runbook watcher, and what a rebalance and a stop must do."""
    app = streams.app

    async def watch_runbooks(*_: Any) -> None:
        await runbooks.watch()

    app.task(watch_runbooks)

    async def deadlines(*_: Any) -> None:
        try:
            await scanner.tick()
        except Exception:  # a bad tick must not stop the timer: log it, try again next tick
            log.exception("remediation.timer_failed")

    app.timer(settings.remediation.timer_interval_s, name="remediation-deadlines")(deadlines)

    async def revoked(*_: Any, **__: Any) -> None:
        cancelled = runner.cancel_all()
        if cancelled:
            log.warning("remediation.tasks_cancelled_on_revoke", count=cancelled)
        scanner.invalidate()

    async def assigned(*_: Any, **__: Any) -> None:
        scanner.invalidate()

    app.on_partitions_revoked.connect(revoked)
    app.on_partitions_assigned.connect(assigned)

    async def stop(*_: Any, **__: Any) -> None:
        await runner.stop()
        if catalogue is not None:
            await catalogue.close()

    app.on_before_shutdown.connect(stop)
