"""``region.failover`` / ``region.failback``: move traffic to the backup region and back, exactly.

Two mechanisms, chosen by the runbook: the weights of a Gateway API HTTPRoute's
backendRefs, or a Service's selector. Failover writes what it replaced into
``responder.musearoo.io/previous-traffic`` on the same object in the same
write, and only the first failover writes it (a second failover keeps the
original), so failback restores precisely what was there before, then removes
the record. Every write carries the resourceVersion it read (409 on a
concurrent change, then a fresh read and a fresh decision).
"""

from __future__ import annotations

import copy
import json
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
    MERGE_PATCH,
    Kube,
    Obj,
    annotations_of,
    applied,
    dry_run_arg,
    record_value,
    rv,
)
from responder.actions.params import RegionFailbackParams, RegionFailoverParams
from responder.actions.retry import Operation
from responder.errors import PermanentError
from responder.models.target import Target

PREVIOUS_ANNOTATION = "responder.musearoo.io/previous-traffic"
GATEWAY_GROUP = "gateway.networking.k8s.io"
GATEWAY_VERSION = "v1"
HTTPROUTES = "httproutes"
DEFAULT_WEIGHT = 1  # Gateway API: a backendRef without weight has weight 1


class _Traffic:
    def __init__(self, kube: Kube, guards: Guards) -> None:
        self._kube = kube
        self._guards = guards

    async def _read_route(self, ctx: ActionContext, namespace: str, name: str) -> Obj:
        return await self._kube.call(
            ctx,
            Operation("get", f"{HTTPROUTES}.{GATEWAY_GROUP}", namespace, name),
            self._kube.custom.get_namespaced_custom_object,
            GATEWAY_GROUP,
            GATEWAY_VERSION,
            namespace,
            HTTPROUTES,
            name,
        )

    async def _patch_route(self, ctx: ActionContext, namespace: str, name: str, body: Obj) -> Obj:
        return await self._kube.call(
            ctx,
            Operation("patch", f"{HTTPROUTES}.{GATEWAY_GROUP}", namespace, name),
            self._kube.custom.patch_namespaced_custom_object,
            GATEWAY_GROUP,
            GATEWAY_VERSION,
            namespace,
            HTTPROUTES,
            name,
            body,
            _content_type=MERGE_PATCH,
            **dry_run_arg(ctx),
        )

    async def _read_service(self, ctx: ActionContext, namespace: str, name: str) -> Obj:
        return await self._kube.call(
            ctx,
            Operation("get", "services", namespace, name),
            self._kube.core.read_namespaced_service,
            name,
            namespace,
        )

    async def _patch_service(self, ctx: ActionContext, namespace: str, name: str, body: Obj) -> Obj:
        return await self._kube.call(
            ctx,
            Operation("patch", "services", namespace, name),
            self._kube.core.patch_namespaced_service,
            name,
            namespace,
            body,
            _content_type=MERGE_PATCH,
            **dry_run_arg(ctx),
        )

    async def _once(
        self,
        ctx: ActionContext,
        target: Target,
        read: Callable[[], Awaitable[Obj]],
        decide: Callable[[Obj], tuple[ActionResult, Obj] | None],
        patch: Callable[[Obj], Awaitable[Obj]],
        started: float,
    ) -> ActionResult:
        """Read, return the earlier result on a repeat, else decide a patch and send it (with retries)."""

        async def attempt() -> ActionResult:
            obj = await read()
            earlier = applied(obj, ctx.key)
            if earlier is not None:
                return repeat_result(earlier, ctx, started)
            decided = decide(obj)
            if decided is None:
                raise PermanentError(f"nothing recorded to restore on {target}")
            result, body = decided
            body.setdefault("metadata", {})["resourceVersion"] = rv(obj)
            body["metadata"].setdefault("annotations", {})[LAST_ACTION_ANNOTATION] = record_value(
                result
            )
            await patch(body)
            result.data = {"patch": body}
            return result

        result: ActionResult = await self._kube.retrying(ctx, f"traffic {target}", attempt)
        result.duration_s = ctx.clock.monotonic() - started
        ctx.logger.info(
            "action.done", action=result.action, target=result.target, changed=result.changed
        )
        return result

    async def reconcile(self, ctx: ActionContext, target: Target, key: str) -> bool | None:
        """Look for ``key`` on the namespace's HTTPRoutes, then its Services.

        The runbook names the object in its parameters, which a reconcile after a crash
        does not get, so it searches. The shipped RBAC may not allow listing Services:
        then a key not found on a route is "cannot tell" (None), not "did not happen".
        """
        self._guards.check_target(target)
        ns = target.namespace
        routes = await self._kube.call(
            ctx,
            Operation("list", f"{HTTPROUTES}.{GATEWAY_GROUP}", ns),
            self._kube.custom.list_namespaced_custom_object,
            GATEWAY_GROUP,
            GATEWAY_VERSION,
            ns,
            HTTPROUTES,
        )
        if any(applied(obj, key) is not None for obj in routes.get("items") or []):
            return True
        try:
            services = await self._kube.call(
                ctx, Operation("list", "services", ns), self._kube.core.list_namespaced_service, ns
            )
        except PermanentError as exc:
            ctx.logger.info("action.reconcile_unknown", key=key, reason=str(exc))
            return None
        return any(applied(obj, key) is not None for obj in services.get("items") or [])


def _weights(rules: list[Obj], names: set[str]) -> dict[str, dict[str, int]]:
    """{rule index: {backend name: weight}} for the backends in ``names``."""
    found: dict[str, dict[str, int]] = {}
    for index, rule in enumerate(rules):
        for ref in rule.get("backendRefs") or []:
            if ref.get("name") in names:
                found.setdefault(str(index), {})[ref["name"]] = int(
                    ref.get("weight", DEFAULT_WEIGHT)
                )
    return found


def _with_weights(rules: list[Obj], weights: dict[str, dict[str, int]]) -> list[Obj]:
    new_rules = copy.deepcopy(rules)
    for index, by_name in weights.items():
        for ref in new_rules[int(index)].get("backendRefs") or []:
            if ref.get("name") in by_name:
                ref["weight"] = by_name[ref["name"]]
    return new_rules


def _selector_patch(old: dict[str, str], new: dict[str, str]) -> dict[str, str | None]:
    """A merge patch turning selector ``old`` into ``new`` (removed keys as null)."""
    return {**{k: None for k in old if k not in new}, **new}


class RegionFailover(_Traffic):
    """Send traffic to the backup: HTTPRoute weights or the Service selector."""

    name = "region.failover"

    async def run(
        self, ctx: ActionContext, target: Target, params: RegionFailoverParams
    ) -> ActionResult:
        started = ctx.clock.monotonic()
        self._guards.check_target(target)
        ns = target.namespace
        if params.httproute is not None:
            spec = params.httproute

            def decide_route(route: Obj) -> tuple[ActionResult, Obj]:
                rules = route["spec"].get("rules") or []
                found = _weights(rules, {spec.primary, spec.backup})
                # Only rules that split traffic between the two backends move; a rule that
                # sends, say, health checks to the primary alone is left as it is.
                before = {
                    i: by for i, by in found.items() if spec.primary in by and spec.backup in by
                }
                both = list(before)
                if not both:
                    raise PermanentError(
                        f"HTTPRoute {ns}/{spec.name} has no rule with both backends {spec.primary} and {spec.backup}"
                    )
                after = {
                    i: {spec.primary: 100 - spec.backup_weight, spec.backup: spec.backup_weight}
                    for i in both
                }
                result = self._result(
                    ctx,
                    target,
                    f"httproute/{ns}/{spec.name}",
                    before,
                    after,
                    f"{spec.backup_weight}% of traffic to {spec.backup}",
                )
                body: Obj = {"spec": {"rules": _with_weights(rules, after)}}
                if PREVIOUS_ANNOTATION not in annotations_of(route):
                    body["metadata"] = {"annotations": {PREVIOUS_ANNOTATION: json.dumps(before)}}
                return result, body

            return await self._once(
                ctx,
                target,
                lambda: self._read_route(ctx, ns, spec.name),
                decide_route,
                lambda body: self._patch_route(ctx, ns, spec.name, body),
                started,
            )
        assert params.service is not None
        svc = params.service

        def decide_service(service: Obj) -> tuple[ActionResult, Obj]:
            old: dict[str, str] = service["spec"].get("selector") or {}
            result = self._result(
                ctx,
                target,
                f"service/{ns}/{svc.name}",
                {"selector": old},
                {"selector": svc.selector},
                f"selector switched to {svc.selector}",
            )
            body: Obj = {"spec": {"selector": _selector_patch(old, svc.selector)}}
            if PREVIOUS_ANNOTATION not in annotations_of(service):
                body["metadata"] = {
                    "annotations": {PREVIOUS_ANNOTATION: json.dumps({"selector": old})}
                }
            return result, body

        return await self._once(
            ctx,
            target,
            lambda: self._read_service(ctx, ns, svc.name),
            decide_service,
            lambda body: self._patch_service(ctx, ns, svc.name, body),
            started,
        )

    def _result(
        self,
        ctx: ActionContext,
        target: Target,
        what: str,
        before: dict[str, Any],
        after: dict[str, Any],
        how: str,
    ) -> ActionResult:
        verb = "would fail over" if ctx.dry_run else "failed over"
        return ActionResult(
            action=self.name,
            target=what,
            key=ctx.key,
            changed=not ctx.dry_run,
            dry_run=ctx.dry_run,
            before=before,
            after=after,
            detail=f"{verb} {what}: {how}",
        )


class RegionFailback(_Traffic):
    """Restore exactly the weights or selector the failover recorded, and drop the record."""

    name = "region.failback"

    async def run(
        self, ctx: ActionContext, target: Target, params: RegionFailbackParams
    ) -> ActionResult:
        started = ctx.clock.monotonic()
        self._guards.check_target(target)
        ns = target.namespace
        verb = "would restore" if ctx.dry_run else "restored"
        if params.httproute is not None:
            name = params.httproute.name

            def decide_route(route: Obj) -> tuple[ActionResult, Obj] | None:
                raw = annotations_of(route).get(PREVIOUS_ANNOTATION)
                if raw is None:
                    return None
                previous: dict[str, dict[str, int]] = json.loads(raw)
                rules = route["spec"].get("rules") or []
                names = {n for by in previous.values() for n in by}
                result = ActionResult(
                    action=self.name,
                    target=f"httproute/{ns}/{name}",
                    key=ctx.key,
                    changed=not ctx.dry_run,
                    dry_run=ctx.dry_run,
                    before=_weights(rules, names),
                    after=previous,
                    detail=f"{verb} the weights of httproute/{ns}/{name} recorded at failover",
                )
                return result, {
                    "metadata": {"annotations": {PREVIOUS_ANNOTATION: None}},
                    "spec": {"rules": _with_weights(rules, previous)},
                }

            return await self._once(
                ctx,
                target,
                lambda: self._read_route(ctx, ns, name),
                decide_route,
                lambda body: self._patch_route(ctx, ns, name, body),
                started,
            )
        assert params.service is not None
        svc_name = params.service.name

        def decide_service(service: Obj) -> tuple[ActionResult, Obj] | None:
            raw = annotations_of(service).get(PREVIOUS_ANNOTATION)
            if raw is None:
                return None
            previous: dict[str, str] = json.loads(raw)["selector"]
            current: dict[str, str] = service["spec"].get("selector") or {}
            result = ActionResult(
                action=self.name,
                target=f"service/{ns}/{svc_name}",
                key=ctx.key,
                changed=not ctx.dry_run,
                dry_run=ctx.dry_run,
                before={"selector": current},
                after={"selector": previous},
                detail=f"{verb} the selector of service/{ns}/{svc_name} recorded at failover",
            )
            return result, {
                "metadata": {"annotations": {PREVIOUS_ANNOTATION: None}},
                "spec": {"selector": _selector_patch(current, previous)},
            }

        return await self._once(
            ctx,
            target,
            lambda: self._read_service(ctx, ns, svc_name),
            decide_service,
            lambda body: self._patch_service(ctx, ns, svc_name, body),
            started,
        )
