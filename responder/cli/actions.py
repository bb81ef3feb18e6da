"""``responder actions list|run``: the action catalogue from a shell, dry-run unless ``--apply``.

For an operator checking what a runbook step would do to a real target, and for
trying an action against the local stack; the same registry, guards and
parameter models the worker uses, so what works here works there.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from typing import TYPE_CHECKING

import click
from pydantic import ValidationError

from responder.actions.params import ACTION_PARAMS
from responder.errors import ResponderError
from responder.models.target import Target

if TYPE_CHECKING:
    from responder.actions.base import ActionResult

# The registry pulls in kubernetes_asyncio, aiohttp and redis (most of `responder --help`'s
# start-up time), so it is imported only by the command that runs an action. Its names are
# ACTION_PARAMS' names, in the same order (tests/actions/test_registry.py holds them equal).

NO_KUBERNETES = frozenset({"cache.clear", "http.request", "notify"})


@click.group()
def actions() -> None:
    """The remediation actions."""


@actions.command("list")
def list_actions() -> None:
    """Every action and the parameters it accepts."""
    for name in ACTION_PARAMS:
        fields = ", ".join(ACTION_PARAMS[name].model_fields)
        click.echo(f"{name:<22} {fields}")


@actions.command("run")
@click.argument("action", type=click.Choice(sorted(ACTION_PARAMS)))
@click.argument("target", metavar="NAMESPACE/NAME")
@click.option("--kind", default="deployment", show_default=True, help="Target kind.")
@click.option("--with", "with_", default="{}", help="Parameters as JSON, as in a runbook's with:.")
@click.option("--apply", is_flag=True, help="Really do it (default: dry run).")
@click.option("--kubeconfig", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds.")
def run(
    action: str,
    target: str,
    kind: str,
    with_: str,
    apply: bool,
    kubeconfig: str | None,
    timeout: float,
) -> None:
    """Run ACTION on NAMESPACE/NAME and print its result as JSON."""
    namespace, _, name = target.partition("/")
    try:
        parsed = Target.model_validate({"namespace": namespace, "name": name, "kind": kind})
        params = ACTION_PARAMS[action].model_validate(json.loads(with_))
    except (ValidationError, ValueError) as exc:
        raise click.BadParameter(str(exc)) from exc
    try:
        result = asyncio.run(
            _run(action, parsed, params, apply=apply, kubeconfig=kubeconfig, deadline_s=timeout)
        )
    except ResponderError as exc:
        click.echo(f"{type(exc).__name__}: {exc}", err=True)
        sys.exit(1)
    click.echo(result.model_dump_json(indent=2))


async def _run(
    action: str,
    target: Target,
    params: object,
    *,
    apply: bool,
    kubeconfig: str | None,
    deadline_s: float,
) -> ActionResult:
    from kubernetes_asyncio import client as k8s
    from kubernetes_asyncio.config import new_client_from_config

    from responder.actions.base import ActionContext
    from responder.actions.registry import ActionDeps, build_actions
    from responder.clock import SystemClock
    from responder.settings import get_settings

    # Redis/HTTP actions never call the API: they need no kubeconfig.
    needs_kube = action not in NO_KUBERNETES
    api = await new_client_from_config(config_file=kubeconfig) if needs_kube else k8s.ApiClient()
    deps = ActionDeps.build(get_settings().actions, api)
    try:
        clock = SystemClock()
        ctx = ActionContext(
            incident_id=f"cli-{uuid.uuid4().hex[:8]}",
            step=0,
            dry_run=not apply,
            deadline=clock.monotonic() + deadline_s,
            clock=clock,
        )
        return await build_actions(deps)[action].run(ctx, target, params)
    finally:
        await deps.close()
        await api.close()
