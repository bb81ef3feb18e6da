"""``connections.reset``: drain the WebSocket hub's connections, or restart it when draining fails.

Draining asks each hub pod to close its clients gracefully (they reconnect,
spread over the healthy pods); when the drain endpoint fails on any pod, or no
pod is ready, a rolling restart of the Deployment of the same name does the
job the hard way, unless the runbook says ``fallback: none``.
"""

from __future__ import annotations

from typing import Any

from responder.actions.base import ActionContext, ActionResult, dry_run_result
from responder.actions.deployments import DeploymentRestart
from responder.actions.endpoints import EndpointAction
from responder.actions.guards import Guards
from responder.actions.http import HttpClient
from responder.actions.kube import Kube
from responder.actions.params import ConnectionsResetParams
from responder.actions.retry import RetryPolicy
from responder.errors import TemporaryError
from responder.models.target import Target
from responder.settings import ActionsSettings


class ConnectionsReset(EndpointAction):
    """POST the drain endpoint on each ready hub pod; fall back to a rolling restart."""

    name = "connections.reset"

    def __init__(
        self,
        kube: Kube,
        http: HttpClient,
        settings: ActionsSettings,
        guards: Guards,
        policy: RetryPolicy,
        restart: DeploymentRestart,
    ) -> None:
        super().__init__(kube, http, guards, policy, restart)
        self._settings = settings

    async def run(
        self, ctx: ActionContext, target: Target, params: ConnectionsResetParams
    ) -> ActionResult:
        started = ctx.clock.monotonic()
        self._guards.check_target(target)
        service = target.model_copy(update={"kind": "service"})
        repeat = await self._repeat(ctx, target, started)
        if repeat is not None:
            return repeat
        addresses = await self._addresses(ctx, service)
        if ctx.dry_run:
            return dry_run_result(
                self.name,
                service,
                ctx,
                started,
                detail=f"would POST {params.path} on {len(addresses)} pods of {service}"
                + (", falling back to a rolling restart" if params.fallback == "restart" else ""),
                data={"addresses": addresses, "port": params.port, "path": params.path},
            )
        answers: list[dict[str, Any]] = []
        if addresses:
            answers = await self._post(
                ctx,
                addresses,
                port=params.port,
                path=params.path,
                body={},
                concurrency=self._settings.endpoint_parallelism,
            )
        drained = sum(1 for a in answers if a["ok"])
        if addresses and drained == len(addresses):
            result = ActionResult(
                action=self.name,
                target=str(service),
                key=ctx.key,
                changed=True,
                after={"drained": drained},
                detail=f"drained connections on {drained} pods of {service}",
                data={"answers": answers},
                duration_s=ctx.clock.monotonic() - started,
            )
            return await self._done(ctx, service, result, drained=drained)
        why = (
            f"drain failed on {len(addresses) - drained}/{len(addresses)} pods"
            if addresses
            else "no ready pods"
        )
        if params.fallback == "none":
            raise TemporaryError(f"connections.reset on {service}: {why}")
        ctx.logger.warning("action.fallback", action=self.name, target=str(service), reason=why)
        rolled = await self._rolling_restart(ctx, target)
        return rolled.model_copy(
            update={
                "action": self.name,
                "detail": f"{why}; fell back to a rolling restart: {rolled.detail}",
                "data": {**rolled.data, "answers": answers},
                "duration_s": ctx.clock.monotonic() - started,
            }
        )
