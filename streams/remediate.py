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

import asyncio
from dataclasses import dataclass
from typing import Any

import structlog
from pydantic import ValidationError

from responder.actions.catalogue import ActionCatalogue
from responder.actions.runner import ActionProvider
from responder.engine.machine import EngineConfig, decide
from responder.engine.records import EVENT_ADAPTER, Event, RouteEntry, TargetState
from responder.engine.routing import Routed, command_event, route_transition
from responder.errors import ConfigError
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
from responder.runbooks.catalog import RunbookSet
from responder.runbooks.reload import Admit, RunbookStore
from responder.runbooks.requirements import RunbookRequirements, UnmetRequirements
from responder.runbooks.schema import Runbook
from responder.settings import Settings
from streams.commands import CommandRouter
from streams.context import ResponderStreams
from streams.deadlines import DeadlineScanner
from streams.effects import EffectRunner, Outbound
from streams.pipeline import OrderedAcks, table_write

log = structlog.get_logger(__name__)


class RunbookSource:
    """The runbook set in use: a fixed set (tests), or the hot-reloaded set of a directory.

    Hot reload is ``responder.runbooks.reload.RunbookStore``: the whole directory is loaded
    again on a file change or SIGHUP and swapped in only if all of it is valid. An incident
    keeps its runbook *id*; each decision looks the runbook up in the current set, so a
    reloaded runbook applies from the incident's next step (a removed one ends it, audited).
    """

    def __init__(
        self,
        runbooks: RunbookSet,
        store: RunbookStore | None = None,
        refused: UnmetRequirements | None = None,
    ) -> None:
        self._static = runbooks
        self.store = store
        self.refused = refused
        """The initial set, valid but needing services this worker lacks: never used."""

    @property
    def current(self) -> RunbookSet:
        if self.store is not None:
            try:
                return self.store.current
            except ConfigError:
                pass  # never loaded successfully yet: the fallback (empty) set
        return self._static

    def lookup(self, runbook_id: str) -> Runbook | None:
        return self.current.by_id.get(runbook_id)

    def check_startup(self) -> None:
        """Raise the reason the initial set was refused: such a worker must not start."""
        if self.refused is not None:
            raise self.refused

    @classmethod
    def from_directory(cls, directory: str, admit: Admit | None = None) -> RunbookSource:
        """The directory's set, hot-reloaded; ``admit`` refuses sets needing missing services."""
        store = RunbookStore(directory, admit=admit)
        refused = None
        try:
            loaded = store.load_initial()
        except UnmetRequirements as exc:
            refused = exc  # the worker refuses to start (check_startup); never acted on
            log.error("remediation.runbooks_refused", directory=directory, error=str(exc)[:4000])
        except ConfigError as exc:
            # A worker without valid runbooks still triages; remediation waits for a valid set
            # (the watcher picks it up as soon as the files are fixed).
            log.error("remediation.runbooks_invalid", directory=directory, error=str(exc)[:4000])
        else:
            log.info("remediation.runbooks_loaded", directory=directory, count=len(loaded))
        return cls(RunbookSet.of(()), store, refused)

    async def watch(self) -> None:
        """Reload on file changes and on SIGHUP until cancelled (the worker stops)."""
        if self.store is None or not self.store.directory.is_dir():
            return
        remove = self.store.install_sighup(asyncio.get_running_loop())
        try:
            await self.store.watch()
        finally:
            remove()


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
    """Declare remediation's topics and tables on the app and attach its agents and timer."""
    runtime = runtime or RemediationRuntime()
    app, conf = streams.app, settings.remediation

    remediation = streams.topic(REMEDIATION)
    commands_in = streams.topic(COMMANDS, ROUTES)
    routes = streams.topic(ROUTES)
    notifications = streams.topic(NOTIFICATIONS)
    commands = streams.topic(COMMANDS)
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
    engine_config = EngineConfig(global_dry_run=conf.dry_run)

    async def send(key: str, event: Event) -> None:
        """Publish an engine event and return once the broker has it."""
        await (await remediation.send(key=key.encode(), value=event.model_dump_json().encode()))

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
    )
    scanner = DeadlineScanner(
        table=state_table,
        send=send,
        running=runner.running,
        clock=streams.clock,
        rescan_interval_s=conf.rescan_interval_s,
        resume_grace_s=conf.resume_grace_s,
    )
    routes_name = streams.topic_name(ROUTES)

    async def route_incidents(acks: OrderedAcks, event: Any) -> None:
        await acks.add(event, await _route(event.value))

    async def _route(value: bytes) -> list[Any]:
        """Re-key one transition onto ``responder.remediation``; the send to await, if any.

        The event is acknowledged (its offset committable) only once the broker has the
        re-keyed event (OrderedAcks).
        """
        try:
            transition = IncidentTransition.model_validate_json(value)
        except ValidationError as exc:
            log.error("remediation.invalid_transition", error=str(exc))
            return []
        routed = route_transition(transition, runbooks.current)
        if not isinstance(routed, Routed):
            log.info(
                "remediation.unrouted", incident_id=transition.incident_id, reason=routed.reason
            )
            return []
        return [await issue(routed.key, routed.event)]

    async def issue(target_key: str, event: Event) -> Any:
        """Hand an engine event to the producer (in call order); returns its acknowledgement."""
        return await remediation.send(
            key=target_key.encode(), value=event.model_dump_json().encode()
        )

    async def audit(event: AuditEvent) -> None:
        await (await streams.send_audit(event))

    def lookup(incident_id: str) -> str | None:
        target_key = routes_table.get(incident_id.encode())
        return None if target_key is None else bytes(target_key).decode()

    command_router = CommandRouter(
        lookup=lookup,
        issue=issue,
        audit=audit,
        clock=streams.clock,
        wait_s=conf.command_route_wait_s,
    )

    async def route_commands(acks: OrderedAcks, event: Any) -> None:
        if event.message.topic == routes_name:
            await _route_entry(acks, event)
        else:
            await acks.add(event, await _forward_command(event.value))

    async def _route_entry(acks: OrderedAcks, event: Any) -> None:
        try:
            entry = RouteEntry.model_validate_json(event.value)
        except ValidationError as exc:
            log.error("remediation.invalid_route", error=str(exc))
            await acks.add(event)
            return
        write = table_write(routes_table, entry.incident_id.encode(), entry.target_key.encode())
        await command_router.route_known(entry.incident_id, entry.target_key)
        await acks.add(event, (), write)

    async def _forward_command(value: bytes) -> list[Any]:
        try:
            command = Command.model_validate_json(value)
        except ValidationError as exc:
            log.error("remediation.invalid_command", error=str(exc))
            return []
        received = command_event(command)
        if received is None:
            return []  # run / silence: not remediation's
        return [await command_router.command(received, command.kind.value)]

    async def remediate(acks: OrderedAcks, event: Any) -> None:
        """Decide one event against the target's state; make it durable; then act.

        The decision's messages are handed to the producer at once; the new state is
        visible to the next event at once (in memory) and its changelog record follows the
        messages (OrderedAcks: in event order, after this event's messages are acknowledged);
        actions and verifications start only once all of it is on the broker, so the
        ledger's "started" entry is durable before an action can act. A crash anywhere
        replays the event: messages are sent again (their idempotency keys absorb it) and a
        step recorded as started is reconciled, never lost.
        """
        raw_key: bytes = event.key
        try:
            engine_event = EVENT_ADAPTER.validate_json(event.value)
        except ValidationError as exc:
            log.error("remediation.invalid_event", key=raw_key, error=str(exc))
            await acks.add(event)
            return
        stored = state_table.get(raw_key)
        state = TargetState.model_validate_json(stored) if stored is not None else None
        key = raw_key.decode()
        decision = decide(
            state,
            engine_event,
            target_key=key,
            runbooks=runbooks.lookup,
            now=streams.clock(),
            config=engine_config,
        )
        sent = await runner.issue(decision.effects)
        write = None
        if decision.changed:
            write = table_write(state_table, raw_key, decision.state.model_dump_json().encode())

        def act() -> None:
            if decision.changed:
                scanner.update(key, decision.state)
            runner.start(key, decision.effects)

        await acks.add(event, sent, write, act)

    async def watch_runbooks(*_: Any) -> None:
        await runbooks.watch()

    app.task(watch_runbooks)
    streams.pipelined_agent(streams.incidents, "remediation-router", route_incidents)
    streams.pipelined_agent(commands_in, "remediation-commands", route_commands)
    streams.pipelined_agent(remediation, "remediate", remediate)

    async def deadlines(*_: Any) -> None:
        try:
            await scanner.tick()
        except Exception:  # a bad tick must not stop the timer: log it, try again next tick
            log.exception("remediation.timer_failed")

    app.timer(conf.timer_interval_s, name="remediation-deadlines")(deadlines)

    async def _revoked(*_: Any, **__: Any) -> None:
        cancelled = runner.cancel_all()
        if cancelled:
            log.warning("remediation.tasks_cancelled_on_revoke", count=cancelled)
        scanner.invalidate()

    async def _assigned(*_: Any, **__: Any) -> None:
        scanner.invalidate()

    app.on_partitions_revoked.connect(_revoked)
    app.on_partitions_assigned.connect(_assigned)

    async def _stop(*_: Any, **__: Any) -> None:
        await runner.stop()
        if catalogue is not None:
            await catalogue.close()

    app.on_before_shutdown.connect(_stop)
    return RemediationStreams(
        remediation=remediation,
        commands=commands,
        routes=routes,
        notifications=notifications,
        table=state_table,
        routes_table=routes_table,
        runner=runner,
        scanner=scanner,
        runbooks=runbooks,
    )
