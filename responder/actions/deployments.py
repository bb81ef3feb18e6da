"""``deployment.restart``, ``deployment.scale``, ``deployment.rollback``: what ``kubectl rollout
restart``, ``kubectl scale`` and ``kubectl rollout undo`` do, made idempotent and guarded.

Each change carries the ``responder.musearoo.io/last-action`` annotation in the
same write as the effect (restart, rollback, HPA) so "did it happen?" has one
answer; scaling goes through the scale subresource, which cannot carry
annotations, so it records its intent first and marks it done after.
Every write sends the resourceVersion it read: a concurrent change makes the
API answer 409 and the whole read-modify-write is retried.
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
from collections.abc import Awaitable, Callable
from typing import Any

from responder.actions.base import (
    LAST_ACTION_ANNOTATION,
    ActionContext,
    ActionResult,
    repeat_result,
)
from responder.actions.guards import Guards
from responder.actions.kube import (
    JSON_PATCH,
    MERGE_PATCH,
    Kube,
    Obj,
    annotations_of,
    applied,
    dry_run_arg,
    last_action,
    record_value,
    rv,
)
from responder.actions.params import (
    DeploymentRestartParams,
    DeploymentRollbackParams,
    DeploymentScaleParams,
)
from responder.actions.retry import Operation
from responder.errors import PermanentError, TemporaryError
from responder.models.target import Target

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
REVISION = "deployment.kubernetes.io/revision"
DEPLOYMENTS = "deployments.apps"


def _get(target: Target) -> Operation:
    return Operation("get", DEPLOYMENTS, target.namespace, target.name)


def _patch(target: Target, resource: str = DEPLOYMENTS, name: str | None = None) -> Operation:
    return Operation("patch", resource, target.namespace, name or target.name)


def _as_deployment(target: Target) -> Target:
    if target.kind != "deployment":
        return target.model_copy(update={"kind": "deployment"})
    return target


class _DeploymentAction:
    """What the three deployment actions share: guards, the client, reading and reconciling."""

    name = ""

    def __init__(self, kube: Kube, guards: Guards) -> None:
        self._kube = kube
        self._guards = guards

    async def _read(self, ctx: ActionContext, target: Target) -> Obj:
        return await self._kube.call(
            ctx,
            _get(target),
            self._kube.apps.read_namespaced_deployment,
            target.name,
            target.namespace,
        )

    async def _patch_deployment(
        self,
        ctx: ActionContext,
        target: Target,
        body: Obj | list[Obj],
        content_type: str = MERGE_PATCH,
    ) -> Obj:
        """One patch of the Deployment (a dry run asks the API to validate only)."""
        return await self._kube.call(
            ctx,
            _patch(target),
            self._kube.apps.patch_namespaced_deployment,
            target.name,
            target.namespace,
            body,
            _content_type=content_type,
            **dry_run_arg(ctx),
        )

    async def reconcile(self, ctx: ActionContext, target: Target, key: str) -> bool | None:
        self._guards.check_target(target)
        return applied(await self._read(ctx, target), key) is not None

    async def _apply(
        self,
        ctx: ActionContext,
        target: Target,
        decide: Callable[[Obj], Awaitable[tuple[ActionResult, Obj | list[Obj], str]]],
        *,
        wait: bool,
        started: float,
    ) -> ActionResult:
        """Read, answer a repeat with the earlier result, else patch what ``decide`` says
        (result, body, content type) in one write; retried whole on 409; then ``_finish``."""

        async def attempt() -> tuple[ActionResult, Obj]:
            dep = await self._read(ctx, target)
            earlier = applied(dep, ctx.key)
            if earlier is not None:
                return repeat_result(earlier, ctx, started), dep
            result, body, content_type = await decide(dep)
            patched = await self._patch_deployment(ctx, target, body, content_type)
            result.data = {"patch": body}
            return result, patched

        result, dep = await self._kube.retrying(ctx, f"{self.name} {target}", attempt)
        return await self._finish(ctx, target, result, dep, wait=wait, started=started)

    async def _finish(
        self,
        ctx: ActionContext,
        target: Target,
        result: ActionResult,
        dep: Obj,
        *,
        wait: bool,
        started: float,
    ) -> ActionResult:
        """Wait for the rollout the patch started (when asked), then stamp duration and log."""
        if wait and not ctx.dry_run and result.repeat_of is None:
            done = await wait_for_rollout(
                self._kube, ctx, target, int(dep["metadata"]["generation"])
            )
            status = done.get("status") or {}
            result.data["rollout"] = {
                "updatedReplicas": status.get("updatedReplicas"),
                "availableReplicas": status.get("availableReplicas"),
            }
        result.duration_s = ctx.clock.monotonic() - started
        ctx.logger.info("action.done", action=self.name, target=str(target), changed=result.changed)
        return result

    def _result(self, ctx: ActionContext, target: Target, **fields: Any) -> ActionResult:
        return ActionResult(
            action=self.name,
            target=str(_as_deployment(target)),
            key=ctx.key,
            dry_run=ctx.dry_run,
            **fields,
        )


async def wait_for_rollout(kube: Kube, ctx: ActionContext, target: Target, generation: int) -> Obj:
    """Poll until the rollout of ``generation`` is complete (as ``kubectl rollout status`` judges)."""
    while True:
        dep = await kube.call(
            ctx, _get(target), kube.apps.read_namespaced_deployment, target.name, target.namespace
        )
        spec_replicas = int(dep["spec"].get("replicas", 1))
        status = dep.get("status") or {}
        if (
            int(status.get("observedGeneration", 0)) >= generation
            and int(status.get("updatedReplicas", 0)) == spec_replicas
            and int(status.get("replicas", 0)) == spec_replicas
            and int(status.get("availableReplicas", 0)) == spec_replicas
        ):
            return dep
        if (
            ctx.deadline is not None
            and ctx.clock.monotonic() + kube.settings.rollout_poll_s >= ctx.deadline
        ):
            raise TemporaryError(
                f"rollout of {target} not complete before the step deadline: "
                f"{status.get('updatedReplicas', 0)}/{spec_replicas} updated, "
                f"{status.get('availableReplicas', 0)} available"
            )
        await asyncio.sleep(kube.settings.rollout_poll_s)


class DeploymentRestart(_DeploymentAction):
    """Rolling restart: a new ``restartedAt`` pod-template annotation, as ``kubectl rollout restart``."""

    name = "deployment.restart"

    async def run(
        self, ctx: ActionContext, target: Target, params: DeploymentRestartParams
    ) -> ActionResult:
        started = ctx.clock.monotonic()
        target = _as_deployment(target)
        self._guards.check_target(target)

        async def decide(dep: Obj) -> tuple[ActionResult, Obj | list[Obj], str]:
            at = ctx.utc_iso()
            template_annotations = (dep["spec"]["template"].get("metadata") or {}).get(
                "annotations"
            ) or {}
            result = self._result(
                ctx,
                target,
                changed=not ctx.dry_run,
                before={
                    "restartedAt": template_annotations.get(RESTARTED_AT),
                    "generation": dep["metadata"].get("generation"),
                },
                after={"restartedAt": at},
                detail=f"{'would restart' if ctx.dry_run else 'restarted'} {target} (restartedAt={at})",
            )
            body = {
                "metadata": {
                    "resourceVersion": rv(dep),
                    "annotations": {LAST_ACTION_ANNOTATION: record_value(result)},
                },
                "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: at}}}},
            }
            return result, body, MERGE_PATCH

        return await self._apply(ctx, target, decide, wait=params.wait, started=started)


class DeploymentScale(_DeploymentAction):
    """Scale to an absolute count or by a factor, clamped; raises the HPA's floor when one owns it."""

    name = "deployment.scale"

    async def run(
        self, ctx: ActionContext, target: Target, params: DeploymentScaleParams
    ) -> ActionResult:
        started = ctx.clock.monotonic()
        target = _as_deployment(target)
        self._guards.check_target(target)
        hpa = await self._owning_hpa(ctx, target)
        if hpa is not None and params.hpa == "fail":
            raise PermanentError(
                f"HorizontalPodAutoscaler {hpa['metadata']['name']} owns {target} and the runbook says "
                "hpa: fail; not scaling"
            )
        if hpa is not None:
            result = await self._kube.retrying(
                ctx,
                f"{self.name} {target}",
                lambda: self._raise_hpa(ctx, target, params, hpa["metadata"]["name"], started),
            )
        else:
            result = await self._kube.retrying(
                ctx, f"{self.name} {target}", lambda: self._scale(ctx, target, params, started)
            )
        result.duration_s = ctx.clock.monotonic() - started
        ctx.logger.info("action.done", action=self.name, target=str(target), changed=result.changed)
        return result

    async def reconcile(self, ctx: ActionContext, target: Target, key: str) -> bool | None:
        self._guards.check_target(target)
        hpa = await self._owning_hpa(ctx, target)
        if hpa is not None and applied(hpa, key) is not None:
            return True
        return applied(await self._read(ctx, target), key) is not None

    def _wanted(self, current: int, params: DeploymentScaleParams) -> int:
        wanted = (
            params.replicas
            if params.replicas is not None
            else math.ceil(current * (params.factor or 1))
        )
        return self._guards.clamp_replicas(wanted, low=params.min, high=params.max)

    async def _owning_hpa(self, ctx: ActionContext, target: Target) -> Obj | None:
        listing = await self._kube.call_retrying(
            ctx,
            Operation("list", "horizontalpodautoscalers.autoscaling", target.namespace),
            self._kube.autoscaling.list_namespaced_horizontal_pod_autoscaler,
            target.namespace,
        )
        hpa: Obj
        for hpa in listing.get("items") or []:
            ref = hpa["spec"]["scaleTargetRef"]
            if (
                ref.get("kind") == "Deployment"
                and ref.get("name") == target.name
                and str(ref.get("apiVersion", "apps/v1")).startswith("apps/")
            ):
                return hpa
        return None

    async def _raise_hpa(
        self,
        ctx: ActionContext,
        target: Target,
        params: DeploymentScaleParams,
        hpa_name: str,
        started: float,
    ) -> ActionResult:
        op = Operation("get", "horizontalpodautoscalers.autoscaling", target.namespace, hpa_name)
        hpa = await self._kube.call(
            ctx,
            op,
            self._kube.autoscaling.read_namespaced_horizontal_pod_autoscaler,
            hpa_name,
            target.namespace,
        )
        earlier = applied(hpa, ctx.key)
        if earlier is not None:
            return repeat_result(earlier, ctx, started)
        spec = hpa["spec"]
        current_min = int(spec.get("minReplicas", 1))
        current_max = int(spec["maxReplicas"])
        replicas = int((hpa.get("status") or {}).get("currentReplicas") or current_min)
        new_min = max(current_min, self._wanted(replicas, params))
        new_max = max(current_max, new_min)
        changed = new_min != current_min or new_max != current_max
        verb = "would raise" if ctx.dry_run else "raised"
        result = self._result(
            ctx,
            target,
            changed=changed and not ctx.dry_run,
            before={"minReplicas": current_min, "maxReplicas": current_max, "replicas": replicas},
            after={"minReplicas": new_min, "maxReplicas": new_max},
            detail=(
                f"HorizontalPodAutoscaler {hpa_name} owns {target}: {verb} its minReplicas "
                f"{current_min} -> {new_min} instead of scaling the Deployment"
            ),
        )
        body = {
            "metadata": {
                "resourceVersion": rv(hpa),
                "annotations": {LAST_ACTION_ANNOTATION: record_value(result)},
            },
            "spec": {"minReplicas": new_min, "maxReplicas": new_max},
        }
        await self._kube.call(
            ctx,
            _patch(target, "horizontalpodautoscalers.autoscaling", hpa_name),
            self._kube.autoscaling.patch_namespaced_horizontal_pod_autoscaler,
            hpa_name,
            target.namespace,
            body,
            _content_type=MERGE_PATCH,
            **dry_run_arg(ctx),
        )
        result.data = {"patch": body, "hpa": hpa_name}
        return result

    async def _scale(
        self, ctx: ActionContext, target: Target, params: DeploymentScaleParams, started: float
    ) -> ActionResult:
        dep = await self._read(ctx, target)
        earlier = applied(dep, ctx.key)
        if earlier is not None:
            return repeat_result(earlier, ctx, started)
        record = last_action(dep)
        current = int(dep["spec"].get("replicas", 1))
        if record is not None and record.get("key") == ctx.key and record.get("phase") == "started":
            # A crash between intent and effect: finish what was decided, do not recompute a factor.
            current = int(record["before"]["replicas"])
            wanted = int(record["after"]["replicas"])
        else:
            wanted = self._wanted(current, params)
        verb = "would scale" if ctx.dry_run else "scaled"
        result = self._result(
            ctx,
            target,
            changed=wanted != current and not ctx.dry_run,
            before={"replicas": current},
            after={"replicas": wanted},
            detail=f"{verb} {target} from {current} to {wanted} replicas",
        )
        scale_body = {"spec": {"replicas": wanted}}
        result.data = {"patch": scale_body}
        if ctx.dry_run:
            await self._patch_scale(ctx, target, scale_body)
            return result
        intent = {
            "metadata": {
                "resourceVersion": rv(dep),
                "annotations": {
                    LAST_ACTION_ANNOTATION: json.dumps({**result.summary(), "phase": "started"})
                },
            }
        }
        await self._patch_deployment(ctx, target, intent)
        await self._patch_scale(ctx, target, scale_body)
        done = {"metadata": {"annotations": {LAST_ACTION_ANNOTATION: record_value(result)}}}
        await self._patch_deployment(ctx, target, done)
        return result

    async def _patch_scale(self, ctx: ActionContext, target: Target, body: Obj) -> Obj:
        return await self._kube.call(
            ctx,
            _patch(target, "deployments.apps/scale"),
            self._kube.apps.patch_namespaced_deployment_scale,
            target.name,
            target.namespace,
            body,
            _content_type=MERGE_PATCH,
            **dry_run_arg(ctx),
        )


class DeploymentRollback(_DeploymentAction):
    """Back to the previous ReplicaSet's pod template, as ``kubectl rollout undo``."""

    name = "deployment.rollback"

    async def run(
        self, ctx: ActionContext, target: Target, params: DeploymentRollbackParams
    ) -> ActionResult:
        started = ctx.clock.monotonic()
        target = _as_deployment(target)
        self._guards.check_target(target)

        async def decide(dep: Obj) -> tuple[ActionResult, Obj | list[Obj], str]:
            current_rev, previous = await self._previous(ctx, target, dep, params.to_revision)
            template = copy.deepcopy(previous["spec"]["template"])
            (template.get("metadata") or {}).get("labels", {}).pop("pod-template-hash", None)
            previous_rev = int(annotations_of(previous)[REVISION])
            verb = "would roll back" if ctx.dry_run else "rolled back"
            result = self._result(
                ctx,
                target,
                changed=not ctx.dry_run,
                before={"revision": current_rev},
                after={"revision": previous_rev, "replicaSet": previous["metadata"]["name"]},
                detail=f"{verb} {target} from revision {current_rev} to revision {previous_rev} ({previous['metadata']['name']})",
            )
            body: list[Obj] = [
                {"op": "replace", "path": "/metadata/resourceVersion", "value": rv(dep)},
                {"op": "replace", "path": "/spec/template", "value": template},
            ]
            if annotations_of(dep):
                body.append(
                    {
                        "op": "add",
                        "path": "/metadata/annotations/"
                        + LAST_ACTION_ANNOTATION.replace("~", "~0").replace("/", "~1"),
                        "value": record_value(result),
                    }
                )
            else:
                body.append(
                    {
                        "op": "add",
                        "path": "/metadata/annotations",
                        "value": {LAST_ACTION_ANNOTATION: record_value(result)},
                    }
                )
            return result, body, JSON_PATCH

        return await self._apply(ctx, target, decide, wait=params.wait, started=started)

    async def _previous(
        self, ctx: ActionContext, target: Target, dep: Obj, to_revision: int | None
    ) -> tuple[int, Obj]:
        if dep["spec"].get("paused"):
            raise PermanentError(f"{target} is paused; resume it before rolling back")
        listing = await self._kube.call(
            ctx,
            Operation("list", "replicasets.apps", target.namespace),
            self._kube.apps.list_namespaced_replica_set,
            target.namespace,
        )
        uid = dep["metadata"]["uid"]
        owned = [
            rs
            for rs in listing.get("items") or []
            if any(ref.get("uid") == uid for ref in rs["metadata"].get("ownerReferences") or [])
            and REVISION in annotations_of(rs)
        ]
        current_rev = int(annotations_of(dep).get(REVISION, "0"))
        if to_revision is not None:
            chosen = [rs for rs in owned if int(annotations_of(rs)[REVISION]) == to_revision]
            if not chosen or to_revision == current_rev:
                raise PermanentError(
                    f"{target} has no earlier revision {to_revision} to roll back to (current {current_rev})"
                )
            return current_rev, chosen[0]
        older = [rs for rs in owned if int(annotations_of(rs)[REVISION]) < current_rev]
        if not older:
            raise PermanentError(
                f"{target} has no previous revision to roll back to (current revision {current_rev})"
            )
        return current_rev, max(older, key=lambda rs: int(annotations_of(rs)[REVISION]))
