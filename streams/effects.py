"""Carrying out the engine's effects: actions and verifications as tasks, messages as messages.

An action or a verification runs in a task of its own, spawned by the remediate agent,
so one slow action never stalls the partition; its outcome comes back as an event on
``responder.remediation`` (keyed by the target), where the engine decides what it means.
A task keeps nothing the engine needs: if the worker dies, the table says the step was
started and the timer's resume path reconciles it (``Action.reconcile(key)``) instead of
running it blindly again.

The action table is injected (``ActionProvider``): production passes the catalogue of
``responder.actions.catalogue`` (each family built when first needed); tests pass their
recording action. Running an action is ``responder.actions.runner``'s, checking a
verification ``responder.verification``'s: this module keeps only the task bookkeeping.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from responder.actions.runner import ActionProvider, ActionRequest, ActionRunner
from responder.engine.records import (
    ActionFinished,
    Audit,
    CancelVerify,
    Effect,
    Event,
    IndexIncident,
    Notify,
    ReplyToCommand,
    RouteEntry,
    RunAction,
    StartVerify,
    VerifyFinished,
)
from responder.models.incidents import AuditEvent
from responder.models.target import Target
from responder.models.topics import audit_key
from responder.settings import ActionsSettings, RemediationSettings
from responder.verification import (
    Check,
    GenerationProbe,
    HTTPGet,
    PodURLs,
    ProbeVerdict,
    PromQL,
    Verifier,
    VerifySpec,
)
from streams.metrics import WorkerMetrics

log = structlog.get_logger(__name__)

__all__ = ["EffectRunner", "Outbound", "verify_spec"]

Send = Callable[[str, Event], Awaitable[None]]
"""Publish an engine event on ``responder.remediation`` under a target key."""


@dataclass
class Outbound:
    """Where non-engine effects go: Faust topics (``send(key=bytes, value=bytes)``)."""

    notifications: Any
    audit: Any
    routes: Any
    replies: Any = None
    """``ReplyToCommand`` effects (answered by the notify agent); None: replies are dropped."""


def action_request(effect: RunAction) -> ActionRequest:
    """The engine's ``RunAction`` as the action runner's request."""
    ref = effect.target
    return ActionRequest(
        action=effect.action,
        params=effect.params,
        namespace=ref.namespace,
        name=ref.name,
        kind=ref.kind,
        region=ref.region,
        incident_id=effect.incident_id,
        step=effect.step,
        attempt=effect.attempt,
        dry_run=effect.dry_run,
        timeout_s=effect.timeout_s,
        reconcile=effect.reconcile,
    )


def verify_spec(effect: StartVerify) -> VerifySpec:
    """The engine's ``StartVerify`` as the verifier's spec."""
    check: Check
    if effect.kind == "promql":
        assert effect.promql is not None
        check = PromQL(effect.promql)
    elif effect.kind == "probe":
        assert effect.probe is not None
        probe, service = effect.probe, effect.probe.service
        check = GenerationProbe(
            base=probe.base,
            service=None
            if service is None
            else Target(namespace=service.namespace, kind="service", name=service.name),
            port=probe.port,
            path=probe.path,
            complexity=probe.complexity,
            style=probe.style,
            min_confidence=probe.min_confidence,
            max_latency_ms=probe.max_latency_ms,
            accept=frozenset(ProbeVerdict(name) for name in probe.accept),
        )
    else:
        check = HTTPGet(
            effect.http_base or "", effect.http_path or "", frozenset(effect.http_expect)
        )
    return VerifySpec(check=check, every_s=effect.every_s, until=effect.until)


@dataclass
class EffectRunner:
    """Runs effects for one worker; tracks its own tasks so the timer can tell orphans."""

    settings: RemediationSettings
    actions_settings: ActionsSettings
    actions: ActionProvider
    send: Send
    outbound: Outbound
    metrics: WorkerMetrics | None = None
    verifier: Verifier | None = None
    """None: one from the settings (query timeout, Prometheus URL, HTTP bases) and ``pods``."""
    pods: PodURLs | None = None
    """Where a probe of the target's pods finds their URLs (production: the action catalogue)."""
    _tasks: dict[tuple[str, str], asyncio.Task[None]] = field(default_factory=dict)
    _action_keys: dict[str, str] = field(default_factory=dict)
    _runner: ActionRunner = field(init=False)
    _verifier: Verifier = field(init=False)

    def __post_init__(self) -> None:
        self._runner = ActionRunner(self.actions, logger=log)
        self._verifier = self.verifier or Verifier.from_settings(
            self.settings, self.actions_settings, pods=self.pods
        )

    # --- bookkeeping used by the timer -----------------------------------------------------

    def running(self, incident_id: str, kind: str) -> bool:
        task = self._tasks.get((incident_id, kind))
        return task is not None and not task.done()

    def _spawn(self, incident_id: str, kind: str, coro: Awaitable[None]) -> None:
        old = self._tasks.get((incident_id, kind))
        if old is not None and not old.done() and kind == "verify":
            old.cancel()
        task = asyncio.ensure_future(coro)
        self._tasks[(incident_id, kind)] = task
        task.add_done_callback(lambda t: self._forget(incident_id, kind, t))

    def _forget(self, incident_id: str, kind: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get((incident_id, kind)) is task:
            del self._tasks[(incident_id, kind)]
            if kind == "action":
                self._action_keys.pop(incident_id, None)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "remediation.task_failed",
                incident_id=incident_id,
                kind=kind,
                error=repr(task.exception()),
            )

    def cancel_all(self) -> int:
        """Partitions are being revoked: stop every action and verification of this worker.

        Kafka's (eager) rebalance revokes before it assigns, so cancelling here means the
        next owner never runs a step while this worker still does; it finds the step
        started, and reconciles it (the action's idempotency key makes a re-run safe).
        """
        tasks = [t for t in self._tasks.values() if not t.done()]
        for task in tasks:
            task.cancel()
        return len(tasks)

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._verifier.close()

    # --- dispatch ------------------------------------------------------------------------------

    async def issue(self, effects: Sequence[Effect]) -> list[Any]:
        """Hand the messages among ``effects`` to the producer, in order; their acks to await.

        Awaited before the new state is stored: if the worker dies in between, the event is
        replayed and the messages sent again (their idempotency keys make the repeat
        harmless); the other order could lose them. Routes go first: a command answering a
        notification looks its incident's route up (and waits for it if the commands topic
        is read ahead of the routes topic, ``streams.commands``).
        """
        routes = [e for e in effects if isinstance(e, IndexIncident)]
        others = [e for e in effects if not isinstance(e, IndexIncident)]
        pending: list[Any] = []
        for effect in (*routes, *others):
            sent = await self._issue_one(effect)
            if sent is not None:
                pending.append(sent)
        return pending

    async def _issue_one(self, effect: Effect) -> Any | None:
        """The producer's future for one message effect; None for effects that are not messages."""
        out = self.outbound
        if isinstance(effect, Notify):
            n = effect.notification
            return await out.notifications.send(
                key=n.incident_id.encode(), value=n.model_dump_json().encode()
            )
        if isinstance(effect, Audit):
            e = effect.event
            return await out.audit.send(key=audit_key(e), value=e.model_dump_json().encode())
        if isinstance(effect, ReplyToCommand) and out.replies is not None:
            return await out.replies.send(
                key=effect.incident_id.encode(), value=effect.model_dump_json().encode()
            )
        if isinstance(effect, IndexIncident):
            entry = RouteEntry(incident_id=effect.incident_id, target_key=effect.target_key)
            return await out.routes.send(
                key=effect.incident_id.encode(), value=entry.model_dump_json().encode()
            )
        return None

    def start(self, target_key: str, effects: list[Effect]) -> None:
        """Start the actions and verifications among ``effects`` (after the state is stored)."""
        for effect in effects:
            if isinstance(effect, Audit) and effect.event.kind == "remediation.escalated":
                self._count_escalation(effect.event)
            if isinstance(effect, RunAction):
                if self._action_keys.get(effect.incident_id) == effect.key and self.running(
                    effect.incident_id, "action"
                ):
                    continue  # a second resume of the same execution: it is running here
                self._action_keys[effect.incident_id] = effect.key
                self._spawn(effect.incident_id, "action", self._run_action(target_key, effect))
            elif isinstance(effect, StartVerify):
                self._spawn(effect.incident_id, "verify", self._verify(target_key, effect))
            elif isinstance(effect, CancelVerify):
                task = self._tasks.get((effect.incident_id, "verify"))
                if task is not None:
                    task.cancel()

    def _count_escalation(self, event: AuditEvent) -> None:
        if self.metrics is None:
            return
        self.metrics.escalations.labels(notify=str(event.data.get("notify", ""))).inc()
        lateness = event.data.get("lateness_s")
        if isinstance(lateness, int | float):
            self.metrics.escalation_lateness.observe(max(0.0, float(lateness)))

    # --- actions ---------------------------------------------------------------------------------

    async def _run_action(self, target_key: str, effect: RunAction) -> None:
        started = time.monotonic()
        run = await self._runner.run(action_request(effect))
        if self.metrics is not None:
            outcome = "reconciled" if run.reconciled else "ok" if run.ok else "failed"
            self.metrics.action_seconds.labels(action=effect.action, outcome=outcome).observe(
                time.monotonic() - started
            )
        log.info(
            "remediation.action_finished",
            incident_id=effect.incident_id,
            action=effect.action,
            key=effect.key,
            ok=run.ok,
            reconciled=run.reconciled,
        )
        await self.send(
            target_key,
            ActionFinished(
                incident_id=effect.incident_id,
                step=effect.step,
                attempt=effect.attempt,
                ok=run.ok,
                detail=run.detail[:1000],
                result=run.result_json,
                reconciled=run.reconciled,
            ),
        )

    # --- verifications ---------------------------------------------------------------------------

    async def _verify(self, target_key: str, effect: StartVerify) -> None:
        """Report ok once the check holds; at the window's end report the last failing verdict
        with what it measured (the engine's deadline, due at the same time, fails the step if
        it is handled first; the verdict is then audited as late)."""
        verdict = await self._verifier.verify(verify_spec(effect))
        if not verdict.ok:
            log.info(
                "remediation.verify_window_over",
                incident_id=effect.incident_id,
                detail=verdict.detail,
            )
        await self.send(
            target_key,
            VerifyFinished(
                incident_id=effect.incident_id,
                step=effect.step,
                attempt=effect.attempt,
                ok=verdict.ok,
                detail=verdict.detail[:1000],
                measured=dict(verdict.measured),
            ),
        )
