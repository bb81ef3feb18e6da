"""Carrying out the engine's effects: actions and verifications as tasks, messages as messages.

An action or a verification runs in a task of its own, spawned by the remediate agent,
so one slow action never stalls the partition; its outcome comes back as an event on
``responder.remediation`` (keyed by the target), where the engine decides what it means.
A task keeps nothing the engine needs: if the worker dies, the table says the step was
started and the timer's resume path reconciles it (``Action.reconcile(key)``) instead of
running it blindly again.

The action table is injected (``ActionProvider``): production builds the catalogue of
``responder.actions.registry`` lazily on first use (it needs a Kubernetes client); tests
pass their recording action.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import structlog
from pydantic import ValidationError

from responder.actions.base import Action, ActionContext
from responder.actions.params import ACTION_PARAMS
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
    TargetRef,
    VerifyFinished,
)
from responder.errors import ResponderError
from responder.models.incidents import AuditEvent
from responder.models.target import Target
from responder.models.topics import audit_key
from responder.settings import ActionsSettings, RemediationSettings
from streams.metrics import WorkerMetrics

log = structlog.get_logger(__name__)

ActionProvider = Callable[[], Awaitable[Mapping[str, Action]]]
"""Returns the action table (built once, on first use)."""

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


def action_target(ref: TargetRef) -> Target:
    """The runbook's validated target in the actions' model (kind names differ in case)."""
    kind = ref.kind.lower()
    if kind not in ("deployment", "service", "httproute", "redis", "http"):
        kind = "deployment"  # StatefulSet & co. are acted on through their own actions' params
    return Target.model_validate(
        {"namespace": ref.namespace, "kind": kind, "name": ref.name, "region": ref.region}
    )


@dataclass
class EffectRunner:
    """Runs effects for one worker; tracks its own tasks so the timer can tell orphans."""

    settings: RemediationSettings
    actions_settings: ActionsSettings
    actions: ActionProvider
    send: Send
    outbound: Outbound
    metrics: WorkerMetrics | None = None
    _tasks: dict[tuple[str, str], asyncio.Task[None]] = field(default_factory=dict)
    _action_keys: dict[str, str] = field(default_factory=dict)
    _prometheus: Any = None
    _http: aiohttp.ClientSession | None = None

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
        if self._http is not None:
            await self._http.close()

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
        ok, detail, result, reconciled = await self._attempt(effect)
        if self.metrics is not None:
            outcome = "reconciled" if reconciled else "ok" if ok else "failed"
            self.metrics.action_seconds.labels(action=effect.action, outcome=outcome).observe(
                time.monotonic() - started
            )
        log.info(
            "remediation.action_finished",
            incident_id=effect.incident_id,
            action=effect.action,
            key=effect.key,
            ok=ok,
            reconciled=reconciled,
        )
        await self.send(
            target_key,
            ActionFinished(
                incident_id=effect.incident_id,
                step=effect.step,
                attempt=effect.attempt,
                ok=ok,
                detail=detail[:1000],
                result=result,
                reconciled=reconciled,
            ),
        )

    async def _attempt(self, effect: RunAction) -> tuple[bool, str, dict[str, Any] | None, bool]:
        table = await self.actions()
        action = table.get(effect.action)
        if action is None:
            return False, f"no action {effect.action!r} in this worker's catalogue", None, False
        model = ACTION_PARAMS.get(effect.action)
        try:
            params = model.model_validate(effect.params) if model is not None else effect.params
            target = action_target(effect.target)
        except (ValidationError, ValueError) as exc:
            return False, f"invalid parameters or target: {exc}", None, False
        timeout = max(effect.timeout_s, 0.001)
        ctx = ActionContext(
            incident_id=effect.incident_id,
            step=effect.step,
            attempt=effect.attempt,
            dry_run=effect.dry_run,
            deadline=time.monotonic() + timeout,
            logger=log.bind(incident_id=effect.incident_id, action=effect.action, key=effect.key),
        )
        try:
            if effect.reconcile:
                happened = await asyncio.wait_for(action.reconcile(ctx, target, ctx.key), timeout)
                if happened:
                    return True, f"reconciled: {ctx.key} had taken effect", None, True
            result = await asyncio.wait_for(action.run(ctx, target, params), timeout)
        except TimeoutError:
            return False, f"timed out after {timeout:.1f}s", None, False
        except ResponderError as exc:
            return False, f"{type(exc).__name__}: {exc}", None, False
        except Exception as exc:  # an action bug must not kill the worker; it fails the step
            log.exception("remediation.action_crashed", action=effect.action, key=effect.key)
            return False, f"action failed unexpectedly: {exc!r}", None, False
        return True, result.detail or "done", result.model_dump(mode="json"), False

    # --- verifications ---------------------------------------------------------------------------

    async def _verify(self, target_key: str, effect: StartVerify) -> None:
        """Poll until the check holds (report ok) or the window ends (the engine's deadline fails it)."""
        detail = ""
        while True:
            try:
                ok, detail = await self._check(effect)
            except Exception as exc:  # noqa: BLE001 - a failing check is "not yet", never a crash
                ok, detail = False, f"check failed: {exc!r}"
            if ok:
                await self.send(
                    target_key,
                    VerifyFinished(
                        incident_id=effect.incident_id,
                        step=effect.step,
                        attempt=effect.attempt,
                        ok=True,
                        detail=detail[:1000],
                    ),
                )
                return
            left = (effect.until - datetime.now(UTC)).total_seconds()
            if left <= 0:
                log.info(
                    "remediation.verify_window_over", incident_id=effect.incident_id, detail=detail
                )
                return
            await asyncio.sleep(min(effect.every_s, left))

    async def _check(self, effect: StartVerify) -> tuple[bool, str]:
        timeout = self.settings.query_timeout_s
        if effect.kind == "promql":
            assert effect.promql is not None
            result = await asyncio.wait_for(
                asyncio.to_thread(self._query, effect.promql, timeout), timeout + 1
            )
            return bool(result), f"{len(result)} series satisfy the query"
        base = self.actions_settings.http_base_urls.get(effect.http_base or "")
        if base is None:
            return False, f"http base {effect.http_base!r} is not configured"
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(trust_env=False)
        url = base.rstrip("/") + "/" + (effect.http_path or "").lstrip("/")
        async with self._http.get(
            url, timeout=aiohttp.ClientTimeout(total=timeout), allow_redirects=False
        ) as response:
            return response.status in effect.http_expect, f"HTTP {response.status}"

    def _query(self, query: str, timeout: float) -> list[Any]:
        if self._prometheus is None:
            from prometheus_api_client import PrometheusConnect

            self._prometheus = PrometheusConnect(url=self.settings.prometheus_url, disable_ssl=True)
        # Prometheus reads a duration parameter as float seconds ("5.0") or as its own
        # duration syntax ("5s"); "5.0s" is neither and is refused with 400.
        result = self._prometheus.custom_query(
            query, params={"timeout": repr(float(timeout))}, timeout=timeout
        )
        return list(result) if isinstance(result, list) else []
