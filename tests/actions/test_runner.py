"""The one action runner: lookup, parameters, target, context, reconcile, timeout, errors."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest
from action_support import FixedClock

from responder.actions.base import Action, ActionContext, ActionResult
from responder.actions.runner import ActionRequest, ActionRunner, Outcome, make_target
from responder.errors import PermanentError
from responder.models.target import Target


class Scripted:
    """An action that does what the test says and remembers what it was given."""

    def __init__(self, name: str, behaviour: str = "ok", reconciled: bool | None = False) -> None:
        self.name = name
        self.behaviour = behaviour
        self.reconciled = reconciled
        self.calls: list[tuple[str, ActionContext, Target, Any]] = []

    async def run(self, ctx: ActionContext, target: Target, params: Any) -> ActionResult:
        self.calls.append(("run", ctx, target, params))
        if self.behaviour == "slow":
            await asyncio.Event().wait()  # never set: only the timeout ends it
        if self.behaviour == "refuse":
            raise PermanentError("not allowed here")
        if self.behaviour == "bug":
            raise KeyError("oops")
        return ActionResult(
            action=self.name, target=str(target), key=ctx.key, changed=True, detail="did it"
        )

    async def reconcile(self, ctx: ActionContext, target: Target, key: str) -> bool | None:
        self.calls.append(("reconcile", ctx, target, key))
        return self.reconciled


def runner(*actions: Scripted, clock: FixedClock | None = None) -> ActionRunner:
    table: Mapping[str, Action] = {a.name: a for a in actions}

    async def provide() -> Mapping[str, Action]:
        return table

    return ActionRunner(provide, clock=clock or FixedClock())


def request(**overrides: Any) -> ActionRequest:
    fields: dict[str, Any] = {
        "action": "notify",
        "params": {"message": "hi"},
        "namespace": "payments",
        "name": "api",
        "incident_id": "inc-1",
        "step": 2,
        "attempt": 3,
        "dry_run": True,
        "timeout_s": 5.0,
    }
    return ActionRequest(**(fields | overrides))


async def test_runs_with_validated_params_target_and_the_callers_key_and_clock() -> None:
    action, clock = Scripted("notify"), FixedClock()
    run = await runner(action, clock=clock).run(request(kind="StatefulSet"))
    assert (run.outcome, run.ok, run.detail, run.key) == (Outcome.OK, True, "did it", "inc-1/2/3")
    assert run.result_json is not None
    assert run.result_json["key"] == "inc-1/2/3"
    (_, ctx, target, params), *_ = action.calls
    assert target == Target(namespace="payments", kind="deployment", name="api")
    assert params.message == "hi"
    assert (ctx.dry_run, ctx.clock, ctx.key) == (True, clock, "inc-1/2/3")
    assert ctx.deadline is not None


def test_kinds_are_normalised_and_unknown_kinds_refused() -> None:
    assert make_target("payments", "api", "Deployment").kind == "deployment"
    assert make_target("payments", "api", "Service").kind == "service"
    assert make_target("payments", "api", "StatefulSet").kind == "deployment"
    with pytest.raises(ValueError, match="kind"):
        make_target("payments", "api", "CronJob")


async def test_refusals_never_reach_the_action() -> None:
    action = Scripted("notify")
    run = runner(action).run
    unknown = await run(request(action="deployment.scale"))
    assert (unknown.outcome, unknown.detail) == (
        Outcome.UNKNOWN_ACTION,
        "no action 'deployment.scale' in this worker's catalogue",
    )
    bad_params = await run(request(params={"message": "hi", "colour": "red"}))
    assert bad_params.outcome is Outcome.INVALID_PARAMS
    assert bad_params.refused
    assert bad_params.detail.startswith("invalid parameters or target:")
    crafted = await run(request(name="x;rm -rf /"))
    assert crafted.outcome is Outcome.INVALID_TARGET
    assert "RFC 1123" in crafted.detail
    assert action.calls == []


async def test_reconcile_first_when_resuming() -> None:
    happened = Scripted("notify", reconciled=True)
    run = await runner(happened).run(request(reconcile=True))
    assert (run.outcome, run.reconciled, run.ok) == (Outcome.RECONCILED, True, True)
    assert run.detail == "reconciled: inc-1/2/3 had taken effect"
    assert [c[0] for c in happened.calls] == ["reconcile"]
    unknown = Scripted("notify", reconciled=None)
    assert (await runner(unknown).run(request(reconcile=True))).outcome is Outcome.OK
    assert [c[0] for c in unknown.calls] == ["reconcile", "run"]


async def test_errors_become_results() -> None:
    slow = await runner(Scripted("notify", "slow")).run(request(timeout_s=0.05))
    assert (slow.outcome, slow.detail) == (Outcome.TIMED_OUT, "timed out after 0.1s")
    refused = await runner(Scripted("notify", "refuse")).run(request())
    assert (refused.outcome, refused.detail) == (
        Outcome.FAILED,
        "PermanentError: not allowed here",
    )
    bug = await runner(Scripted("notify", "bug")).run(request())
    assert bug.outcome is Outcome.CRASHED
    assert not bug.ok
    assert bug.detail == "action failed unexpectedly: KeyError('oops')"
    assert isinstance(bug.error, KeyError)
