"""Running one action once: the single path the engine's steps, ``/responder run`` and the CLI take.

Each of them names an action, its parameters and a target as plain text and fields; this
module turns that into a checked call: the action looked up in the catalogue, the
parameters validated with the action's own model (``ACTION_PARAMS``), the target built
as a ``Target`` (RFC 1123 names, so untrusted label text never reaches an API), an
``ActionContext`` under the caller's idempotency key and clock, reconcile-before-run when
a started step is resumed, and the timeout. Whatever happens comes back as an
``ActionRun``, never as an exception: an action bug fails the step (logged), it never
kills the worker. Callers decide only how to report it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, get_args

import structlog
from pydantic import BaseModel, ValidationError

from responder.actions.base import Action, ActionContext, ActionResult
from responder.actions.params import ACTION_PARAMS
from responder.clock import Clock, SystemClock
from responder.errors import ResponderError
from responder.models.target import Target, TargetKind

__all__ = [
    "ActionProvider",
    "ActionRequest",
    "ActionRun",
    "ActionRunner",
    "Outcome",
    "make_target",
]

ActionProvider = Callable[[], Awaitable[Mapping[str, Action]]]
"""Returns the action table (production: ``responder.actions.catalogue.ActionCatalogue``)."""

KIND_ALIASES: Mapping[str, TargetKind] = {"statefulset": "deployment"}
"""Runbook kinds the actions know under another name: a StatefulSet is acted on through the
deployment actions' own parameters."""


def make_target(
    namespace: str, name: str, kind: str = "deployment", region: str | None = None
) -> Target:
    """A validated ``Target``; kinds are case-insensitive (runbooks say ``Deployment``).

    Raises ``ValidationError`` for a name that is not RFC 1123 or a kind no action knows.
    """
    lowered = kind.lower()
    normalised = KIND_ALIASES.get(lowered, lowered)
    if normalised not in get_args(TargetKind):
        normalised = lowered  # let the model refuse it with its own message
    return Target.model_validate(
        {"namespace": namespace, "kind": normalised, "name": name, "region": region}
    )


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """One execution asked for: which action, with what, on what, under which key."""

    action: str
    params: Mapping[str, Any] | BaseModel
    namespace: str
    name: str
    incident_id: str
    kind: str = "deployment"
    region: str | None = None
    step: int = 0
    attempt: int = 1
    dry_run: bool = True
    timeout_s: float = 60.0
    reconcile: bool = False
    """Resuming a started-but-unfinished run: ask ``reconcile(key)`` before running again."""

    @property
    def key(self) -> str:
        """The idempotency key (``ActionContext.key``)."""
        return f"{self.incident_id}/{self.step}/{self.attempt}"


class Outcome(StrEnum):
    OK = "ok"
    RECONCILED = "reconciled"
    UNKNOWN_ACTION = "unknown_action"
    INVALID_PARAMS = "invalid_params"
    INVALID_TARGET = "invalid_target"
    TIMED_OUT = "timed_out"
    FAILED = "failed"
    """The action raised a ``ResponderError``: it said what went wrong."""
    CRASHED = "crashed"
    """The action raised anything else: a bug, logged with its traceback."""


REFUSALS = frozenset({Outcome.UNKNOWN_ACTION, Outcome.INVALID_PARAMS, Outcome.INVALID_TARGET})


@dataclass(frozen=True, slots=True)
class ActionRun:
    """What came of one request; ``detail`` is the one-line account the engine records."""

    outcome: Outcome
    detail: str
    key: str
    result: ActionResult | None = None
    target: Target | None = None
    """The validated target (None when refused before it was built)."""
    error: BaseException | None = None
    """The validation error of a refusal, or what the action raised."""
    timeout_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome in (Outcome.OK, Outcome.RECONCILED)

    @property
    def reconciled(self) -> bool:
        return self.outcome is Outcome.RECONCILED

    @property
    def refused(self) -> bool:
        """Never started: unknown action, bad parameters or a bad target."""
        return self.outcome in REFUSALS

    @property
    def result_json(self) -> dict[str, Any] | None:
        return None if self.result is None else self.result.model_dump(mode="json")


@dataclass
class ActionRunner:
    """Looks up, checks and runs actions from one table; never raises for an action's faults."""

    actions: ActionProvider
    clock: Clock = field(default_factory=SystemClock)
    logger: Any = field(default_factory=lambda: structlog.get_logger(__name__))

    async def check(self, request: ActionRequest) -> tuple[Action, Any, Target] | ActionRun:
        """The action, its validated parameters and target; or the refusal."""
        table = await self.actions()
        action, model = table.get(request.action), ACTION_PARAMS.get(request.action)
        if action is None or model is None:
            detail = f"no action {request.action!r} in this worker's catalogue"
            return ActionRun(Outcome.UNKNOWN_ACTION, detail, request.key)
        try:
            params = model.model_validate(_plain(request.params))
        except ValidationError as exc:
            return ActionRun(
                Outcome.INVALID_PARAMS,
                f"invalid parameters or target: {exc}",
                request.key,
                error=exc,
            )
        try:
            target = make_target(request.namespace, request.name, request.kind, request.region)
        except ValidationError as exc:
            return ActionRun(
                Outcome.INVALID_TARGET,
                f"invalid parameters or target: {exc}",
                request.key,
                error=exc,
            )
        return action, params, target

    async def run(self, request: ActionRequest) -> ActionRun:
        """Check the request, then run it (reconciling first if asked) within its timeout."""
        checked = await self.check(request)
        if isinstance(checked, ActionRun):
            return checked
        action, params, target = checked
        timeout = max(request.timeout_s, 0.001)
        ctx = ActionContext(
            incident_id=request.incident_id,
            step=request.step,
            attempt=request.attempt,
            dry_run=request.dry_run,
            deadline=self.clock.monotonic() + timeout,
            clock=self.clock,
            logger=self.logger.bind(
                incident_id=request.incident_id, action=request.action, key=request.key
            ),
        )
        try:
            if request.reconcile:
                happened = await asyncio.wait_for(action.reconcile(ctx, target, ctx.key), timeout)
                if happened:
                    detail = f"reconciled: {ctx.key} had taken effect"
                    return ActionRun(
                        Outcome.RECONCILED, detail, ctx.key, target=target, timeout_s=timeout
                    )
            result = await asyncio.wait_for(action.run(ctx, target, params), timeout)
        except TimeoutError as exc:
            detail = f"timed out after {timeout:.1f}s"
            return ActionRun(
                Outcome.TIMED_OUT, detail, ctx.key, target=target, error=exc, timeout_s=timeout
            )
        except ResponderError as exc:
            detail = f"{type(exc).__name__}: {exc}"
            return ActionRun(
                Outcome.FAILED, detail, ctx.key, target=target, error=exc, timeout_s=timeout
            )
        except Exception as exc:  # an action bug must not kill the caller; it fails the run
            ctx.logger.exception("action.crashed")
            detail = f"action failed unexpectedly: {exc!r}"
            return ActionRun(
                Outcome.CRASHED, detail, ctx.key, target=target, error=exc, timeout_s=timeout
            )
        detail = result.detail or "done"
        return ActionRun(
            Outcome.OK, detail, ctx.key, result=result, target=target, timeout_s=timeout
        )


def _plain(params: Mapping[str, Any] | BaseModel) -> Any:
    """What the action's model validates: a mapping as a dict; a model of its own type as is."""
    return params if isinstance(params, BaseModel) else dict(params)
