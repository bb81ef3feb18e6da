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

from responder.actions.base import ActionContext, ActionResult, dry_run_result
from responder.actions.endpoints import EndpointAction
from responder.actions.params import ModelReloadParams
from responder.errors import TemporaryError
from responder.models.target import Target


class ModelReload(EndpointAction):
    """POST the reload endpoint on each ready pod behind the Service ``target.name``."""

    name = "model.reload"

    async def run(
        self, ctx: ActionContext, target: Target, params: ModelReloadParams
    ) -> ActionResult:
        started = ctx.clock.monotonic()
        self._guards.check_target(target)
        if params.restart:
            rolled = await self._rolling_restart(ctx, target)
            return rolled.model_copy(
                update={
                    "action": self.name,
                    "detail": f"model reload by rolling restart: {rolled.detail}",
                }
            )
        service = target.model_copy(update={"kind": "service"})
        repeat = await self._repeat(ctx, target, started)
        if repeat is not None:
            return repeat
        addresses = await self._addresses(ctx, service)
        if not addresses:
            raise TemporaryError(f"model.reload: no ready endpoints behind {service}")
        body = {"variant": params.variant} if params.variant else {}
        if ctx.dry_run:
            return dry_run_result(
                self.name,
                service,
                ctx,
                started,
                detail=f"would POST {params.path} on {len(addresses)} pods of {service}",
                data={
                    "addresses": addresses,
                    "port": params.port,
                    "path": params.path,
                    "body": body,
                },
            )
        answers = await self._post(
            ctx,
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
        return await self._done(ctx, service, result, reloaded=ok, pods=len(addresses))
