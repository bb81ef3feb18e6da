"""region.failover / region.failback on a real Gateway API HTTPRoute and a real Service."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes_asyncio import client as k8s

from responder.actions.base import Action, ActionContext
from responder.actions.params import RegionFailbackParams, RegionFailoverParams
from responder.actions.traffic import PREVIOUS_ANNOTATION
from responder.errors import PermanentError
from responder.models.target import Target

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

GROUP, VERSION, PLURAL = "gateway.networking.k8s.io", "v1", "httproutes"


def route_body(weights: dict[str, int]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "HTTPRoute",
        "metadata": {"name": "api"},
        "spec": {
            "parentRefs": [{"name": "public"}],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/health"}}],
                    "backendRefs": [{"name": "api-primary", "port": 80}],
                },
                {"backendRefs": [{"name": n, "port": 80, "weight": w} for n, w in weights.items()]},
            ],
        },
    }


async def read_route(admin_api: k8s.ApiClient, namespace: str) -> dict[str, Any]:
    route: dict[str, Any] = await k8s.CustomObjectsApi(admin_api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "api"
    )
    return route


def weights(route: dict[str, Any]) -> list[dict[str, int]]:
    return [
        {r["name"]: r.get("weight", 1) for r in rule["backendRefs"]}
        for rule in route["spec"]["rules"]
    ]


FAILOVER = RegionFailoverParams.model_validate(
    {"httproute": {"name": "api", "primary": "api-primary", "backup": "api-backup"}}
)
FAILBACK = RegionFailbackParams.model_validate({"httproute": {"name": "api"}})


async def test_httproute_failover_and_exact_failback(
    actions: dict[str, Action],
    admin_api: k8s.ApiClient,
    namespace: str,
    make_ctx: Callable[..., ActionContext],
) -> None:
    await k8s.CustomObjectsApi(admin_api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, route_body({"api-primary": 90, "api-backup": 10})
    )
    original = weights(await read_route(admin_api, namespace))
    target = Target(namespace=namespace, name="api")

    dry = await actions["region.failover"].run(make_ctx(dry_run=True), target, FAILOVER)
    assert dry.after == {"1": {"api-primary": 0, "api-backup": 100}}
    assert weights(await read_route(admin_api, namespace)) == original

    ctx = make_ctx()
    result = await actions["region.failover"].run(ctx, target, FAILOVER)
    assert result.before == {"1": {"api-primary": 90, "api-backup": 10}}
    route = await read_route(admin_api, namespace)
    assert weights(route) == [{"api-primary": 1}, {"api-primary": 0, "api-backup": 100}]
    assert json.loads(route["metadata"]["annotations"][PREVIOUS_ANNOTATION]) == {
        "1": {"api-primary": 90, "api-backup": 10}
    }
    assert await actions["region.failover"].reconcile(ctx, target, ctx.key) is True

    again = await actions["region.failover"].run(ctx, target, FAILOVER)
    assert again.repeat_of is not None
    # A second failover (a new incident) keeps the original weights on record.
    await actions["region.failover"].run(make_ctx(), target, FAILOVER)
    assert json.loads(
        (await read_route(admin_api, namespace))["metadata"]["annotations"][PREVIOUS_ANNOTATION]
    ) == {"1": {"api-primary": 90, "api-backup": 10}}

    back = await actions["region.failback"].run(make_ctx(), target, FAILBACK)
    assert back.after == {"1": {"api-primary": 90, "api-backup": 10}}
    restored = await read_route(admin_api, namespace)
    assert weights(restored) == original
    assert PREVIOUS_ANNOTATION not in restored["metadata"]["annotations"]
    with pytest.raises(PermanentError, match="nothing recorded to restore"):
        await actions["region.failback"].run(make_ctx(), target, FAILBACK)


async def test_httproute_without_both_backends_is_refused(
    actions: dict[str, Action],
    admin_api: k8s.ApiClient,
    namespace: str,
    make_ctx: Callable[..., ActionContext],
) -> None:
    await k8s.CustomObjectsApi(admin_api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, route_body({"api-primary": 100})
    )
    with pytest.raises(PermanentError, match="no rule with both backends"):
        await actions["region.failover"].run(
            make_ctx(), Target(namespace=namespace, name="api"), FAILOVER
        )


async def test_service_selector_switch_and_back(
    actions: dict[str, Action],
    admin_api: k8s.ApiClient,
    namespace: str,
    make_ctx: Callable[..., ActionContext],
) -> None:
    core = k8s.CoreV1Api(admin_api)
    await core.create_namespaced_service(
        namespace,
        {
            "metadata": {"name": "api"},
            "spec": {"selector": {"app": "api", "region": "eu-1"}, "ports": [{"port": 80}]},
        },
    )
    target = Target(namespace=namespace, name="api")
    over = RegionFailoverParams.model_validate(
        {"service": {"name": "api", "selector": {"app": "api-dr"}}}
    )
    ctx = make_ctx()
    result = await actions["region.failover"].run(ctx, target, over)
    assert result.before == {"selector": {"app": "api", "region": "eu-1"}}
    assert (await core.read_namespaced_service("api", namespace)).spec.selector == {"app": "api-dr"}
    # The shipped RBAC does not let the responder list Services: reconcile says "cannot tell".
    assert await actions["region.failover"].reconcile(ctx, target, ctx.key) in (True, None)
    await actions["region.failback"].run(
        make_ctx(), target, RegionFailbackParams.model_validate({"service": {"name": "api"}})
    )
    svc = await core.read_namespaced_service("api", namespace)
    assert svc.spec.selector == {"app": "api", "region": "eu-1"}
    assert PREVIOUS_ANNOTATION not in (svc.metadata.annotations or {})
