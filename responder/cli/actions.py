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

from responder.actions.params import ACTION_PARAMS

if TYPE_CHECKING:
    from responder.actions.runner import ActionRequest, ActionRun

# The catalogue pulls in kubernetes_asyncio, aiohttp and redis (most of `responder --help`'s
# start-up time), so it is imported only by the command that runs an action. Its names are
# ACTION_PARAMS' names, in the same order (tests/actions/test_registry.py holds them equal).


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
    from responder.actions.runner import ActionRequest

    namespace, _, name = target.partition("/")
    try:
        params = json.loads(with_)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    if not isinstance(params, dict):
        raise click.BadParameter("--with must be a JSON object")
    request = ActionRequest(
        action=action,
        params=params,
        namespace=namespace,
        name=name,
        kind=kind,
        incident_id=f"cli-{uuid.uuid4().hex[:8]}",
        dry_run=not apply,
        timeout_s=timeout,
    )
    done = asyncio.run(_run(request, kubeconfig=kubeconfig))
    if done.refused:
        raise click.BadParameter(str(done.error or done.detail))
    if done.result is None:
        click.echo(done.detail, err=True)
        sys.exit(1)
    click.echo(done.result.model_dump_json(indent=2))


async def _run(request: ActionRequest, *, kubeconfig: str | None) -> ActionRun:
    from responder.actions.catalogue import ActionCatalogue
    from responder.actions.runner import ActionRunner
    from responder.settings import get_settings

    # Families are built on first use: a Redis or HTTP action needs no kubeconfig.
    catalogue = ActionCatalogue(get_settings().actions, kubeconfig=kubeconfig)
    try:
        return await ActionRunner(catalogue).run(request)
    finally:
        await catalogue.close()
