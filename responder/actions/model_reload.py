"""``model.reload``: ask every ready model-server pod to reload its model, or roll the Deployment.

A reload endpoint is faster and gentler than a restart (no cold start, no lost
connections), so it is the default; ``restart: true`` in the runbook rolls the
Deployment of the same name instead. Each pod's answer is kept in the result,
and the key is recorded on the Service so a repeat is a no-op.

The pods are those behind the Service named like the target (the seed runbooks target the
Deployment ``<engine>-engine``, served by a Service of the same name, as is the convention);
every address is checked against ``actions.allowed_endpoint_networks`` before any call.
"""

from __future__ import annotations

from responder.actions.base import ActionContext, ActionResult, repeat_result
from responder.actions.deployments import DeploymentRestart
from responder.actions.endpoints import (
    earlier_record,
    post_to_all,
    ready_addresses,
    record_on_service,
)
from responder.actions.guards import Guards
from responder.actions.http import HttpClient
from responder.actions.kube import Kube, record_value
from responder.actions.params import DeploymentRestartParams, ModelReloadParams
from responder.actions.retry import RetryPolicy
from responder.errors import TemporaryError
from responder.models.target import Target


class ModelReload:
    """POST the reload endpoint on each ready pod behind the Service ``target.name``."""

    name = "model.reload"

    def __init__(
        self,
        kube: Kube,
        http: HttpClient,
        guards: Guards,
        policy: RetryPolicy,
        restart: DeploymentRestart,
    ) -> None:
        self._kube = kube
        self._http = http
        self._guards = guards
        self._policy = policy
        self._restart = restart

    async def run(
        self, ctx: ActionContext, target: Target, params: ModelReloadParams
    ) -> ActionResult:
        started = ctx.clock.monotonic()
        self._guards.check_target(target)
        if params.restart:
            rolled = await self._restart.run(
                ctx,
                target.model_copy(update={"kind": "deployment"}),
                DeploymentRestartParams(wait=True),
            )
            return rolled.model_copy(
                update={
                    "action": self.name,
                    "detail": f"model reload by rolling restart: {rolled.detail}",
                }
            )
        service = target.model_copy(update={"kind": "service"})
        found = await earlier_record(self._kube, ctx, target, ctx.key)
        if found is not None:
            return repeat_result(found, ctx, started)
        addresses = await ready_addresses(self._kube, self._guards, ctx, service)
        if not addresses:
            raise TemporaryError(f"model.reload: no ready endpoints behind {service}")
        body = {"variant": params.variant} if params.variant else {}
        if ctx.dry_run:
            return ActionResult(
                action=self.name,
                target=str(service),
                key=ctx.key,
                changed=False,
                dry_run=True,
                detail=f"would POST {params.path} on {len(addresses)} pods of {service}",
                data={
                    "addresses": addresses,
                    "port": params.port,
                    "path": params.path,
                    "body": body,
                },
                duration_s=ctx.clock.monotonic() - started,
            )
        answers = await post_to_all(
            ctx,
            self._http,
            self._guards,
            self._policy,
            addresses,
            port=params.port,
            path=params.path,
            body=body,
            concurrency=params.concurrency,
        )
        ok = sum(1 for a in answers if a["ok"])
        if ok == 0:
            raise TemporaryError(
                f"model.reload: no pod of {service} accepted the reload: {answers[0].get('error')}"
            )
        result = ActionResult(
            action=self.name,
            target=str(service),
            key=ctx.key,
            changed=True,
            before={"pods": len(addresses)},
            after={"reloaded": ok, "failed": len(addresses) - ok},
            detail=f"reloaded {ok}/{len(addresses)} pods of {service}",
            data={"answers": answers},
            duration_s=ctx.clock.monotonic() - started,
        )
        await record_on_service(self._kube, ctx, service, record_value(result))
        ctx.logger.info(
            "action.done", action=self.name, target=str(service), reloaded=ok, pods=len(addresses)
        )
        return result

    async def reconcile(self, ctx: ActionContext, target: Target, key: str) -> bool | None:
        self._guards.check_target(target)
        return await earlier_record(self._kube, ctx, target, key) is not None
