"""The four seed runbooks' steps, as loaded from runbooks/, carried out by the action catalogue
against the local stack (control plane with kwok pods, the session Redis, HTTP servers on the
pods' addresses), dry-run off. Alert labels go through the runbooks' own matching and target
templates, so what a real alert would reach is what is acted on.

(The remediation engine's end-to-end runs, with Kafka and the Faust worker, live with the
engine; this checks that every step the seed runbooks name works on real objects.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from kubernetes_asyncio import client as k8s

from k8s.support import allow_pod_reads, eventually
from responder.actions.base import Action, ActionContext, ActionResult
from responder.actions.registry import ActionDeps, build_actions
from responder.models.target import Target
from responder.runbooks.loader import load_directory
from responder.runbooks.resolve import Matched, resolve
from responder.settings import ActionsSettings
from responder_dev.stack.process import free_port

from .conftest import rolled_out, start_http

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

RUNBOOKS = Path(__file__).resolve().parents[3] / "runbooks"
DB = 10


@pytest.fixture
async def stack_actions(
    responder_api: k8s.ApiClient,
    admin_api: k8s.ApiClient,
    namespace: str,
    actions_settings: ActionsSettings,
    redis_server: Any,
) -> AsyncIterator[dict[str, Action]]:
    """The catalogue as the worker would run it here: pods as the endpoint source (with the
    Role it needs), the session Redis as the cache."""
    await allow_pod_reads(admin_api, namespace)
    redis_url = f"{str(redis_server.url).rsplit('/', 1)[0]}/{DB}"
    settings = actions_settings.model_copy(
        update={"endpoint_source": "pods", "redis_urls": {"default": redis_url}}
    )
    deps = ActionDeps.build(settings, responder_api)
    yield build_actions(deps)
    await deps.close()


class World:
    """Objects the runbooks expect, created as admin; pod HTTP servers that record calls."""

    def __init__(
        self, admin_api: k8s.ApiClient, namespace: str, make_deployment: Callable[..., Any]
    ) -> None:
        self.admin_api = admin_api
        self.namespace = namespace
        self.make_deployment = make_deployment
        self.runners: list[web.AppRunner] = []
        self.calls: list[tuple[str, str]] = []

    async def workload(self, name: str, replicas: int = 2) -> int:
        """Deployment + Service ``name``; its pods answer HTTP on a free port (returned)."""
        await self.make_deployment(name=name, replicas=replicas)
        await k8s.CoreV1Api(self.admin_api).create_namespaced_service(
            self.namespace,
            {
                "metadata": {"name": name},
                "spec": {"selector": {"name": name}, "ports": [{"port": 80}]},
            },
        )
        pods = await k8s.CoreV1Api(self.admin_api).list_namespaced_pod(
            self.namespace, label_selector=f"name={name}"
        )
        ips = [p.status.pod_ip for p in pods.items]
        port = free_port(ips[0])

        async def handle(request: web.Request) -> web.Response:
            self.calls.append((request.host, request.path))
            return web.json_response({"ok": True})

        for ip in ips:
            self.runners.append(await start_http(ip, port, handle))
        return port


@pytest.fixture
async def world(
    admin_api: k8s.ApiClient, namespace: str, make_deployment: Callable[..., Any]
) -> AsyncIterator[World]:
    made = World(admin_api, namespace, make_deployment)
    yield made
    for runner in made.runners:
        await runner.cleanup()


def matched(labels: dict[str, str]) -> Matched:
    loaded = load_directory(RUNBOOKS)
    assert loaded.runbooks is not None, loaded.errors
    found = resolve(labels, {}, loaded.runbooks)
    assert isinstance(found, Matched), found
    return found


def as_target(m: Matched) -> Target:
    return Target(namespace=m.target.namespace, kind=m.target.kind.lower(), name=m.target.name)  # type: ignore[arg-type]


async def run_steps(
    actions: dict[str, Action],
    m: Matched,
    make_ctx: Callable[..., ActionContext],
    port: int | None = None,
) -> list[ActionResult]:
    results = []
    incident = f"{m.runbook.id}-e2e"
    for index, step in enumerate(m.runbook.steps):
        params = step.params
        if port is not None and "port" in type(params).model_fields:
            params = params.model_copy(
                update={"port": port}
            )  # the seed's 8080, moved to a free port
        results.append(
            await actions[step.action].run(
                make_ctx(incident_id=incident, step=index), as_target(m), params
            )
        )
    return results


async def test_high_generation_latency(
    stack_actions: dict[str, Action],
    world: World,
    admin_api: k8s.ApiClient,
    namespace: str,
    redis_server: Any,
    make_ctx: Callable[..., ActionContext],
) -> None:
    port = await world.workload("generation-engine", replicas=2)
    await k8s.CustomObjectsApi(admin_api).create_namespaced_custom_object(
        "gateway.networking.k8s.io",
        "v1",
        namespace,
        "httproutes",
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "generation-api"},
            "spec": {
                "rules": [
                    {
                        "backendRefs": [
                            {"name": "generation-primary", "port": 80, "weight": 100},
                            {"name": "generation-backup", "port": 80, "weight": 0},
                        ]
                    }
                ]
            },
        },
    )
    cache = aioredis.Redis.from_url(f"{str(redis_server.url).rsplit('/', 1)[0]}/{DB}")
    await cache.flushdb()
    await cache.mset({f"generation:{i}": "x" for i in range(500)} | {"session:1": "keep"})
    try:
        m = matched(
            {
                "alertname": "HighGenerationLatency",
                "severity": "critical",
                "engine": "generation",
                "namespace": namespace,
            }
        )
        results = await run_steps(stack_actions, m, make_ctx, port)
        assert [r.action for r in results] == [
            "cache.clear",
            "model.reload",
            "deployment.scale",
            "region.failover",
        ]
        assert await cache.keys("generation:*") == []
        assert await cache.get("session:1") == b"keep"
    finally:
        await cache.flushdb()
        await cache.aclose()
    assert sorted(path for _, path in world.calls) == ["/admin/models/reload"] * 2
    dep = await k8s.AppsV1Api(admin_api).read_namespaced_deployment("generation-engine", namespace)
    assert dep.spec.replicas == 4
    route = await k8s.CustomObjectsApi(admin_api).get_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", namespace, "httproutes", "generation-api"
    )
    assert [r["weight"] for r in route["spec"]["rules"][0]["backendRefs"]] == [0, 100]


async def test_ai_model_failure(
    stack_actions: dict[str, Action],
    world: World,
    admin_api: k8s.ApiClient,
    namespace: str,
    make_ctx: Callable[..., ActionContext],
) -> None:
    port = await world.workload("generation-engine", replicas=2)
    m = matched({"alertname": "EngineHealthLow", "engine": "generation", "namespace": namespace})
    results = await run_steps(stack_actions, m, make_ctx, port)
    assert [r.action for r in results] == ["model.reload", "model.reload", "deployment.restart"]
    assert len(world.calls) == 4  # two pods, two reloads
    assert results[2].data["rollout"] == {"updatedReplicas": 2, "availableReplicas": 2}
    assert await rolled_out(k8s.AppsV1Api(admin_api), namespace, "generation-engine") is not None


async def test_websocket_connection_issues(
    stack_actions: dict[str, Action],
    world: World,
    admin_api: k8s.ApiClient,
    namespace: str,
    make_ctx: Callable[..., ActionContext],
) -> None:
    port = await world.workload("realtime-gateway", replicas=2)
    m = matched(
        {"alertname": "HighWebSocketLatency", "service": "realtime-gateway", "namespace": namespace}
    )
    results = await run_steps(stack_actions, m, make_ctx, port)
    assert [r.action for r in results] == [
        "connections.reset",
        "deployment.restart",
        "deployment.scale",
    ]
    assert sorted(path for _, path in world.calls) == ["/admin/connections/drain"] * 2
    assert results[2].after == {"replicas": 3}  # 2 x 1.5
    dep = await eventually(
        lambda: rolled_out(k8s.AppsV1Api(admin_api), namespace, "realtime-gateway"),
        what="scaled gateway",
    )
    assert dep.spec.replicas == 3


async def test_database_performance(
    stack_actions: dict[str, Action],
    admin_api: k8s.ApiClient,
    namespace: str,
    make_ctx: Callable[..., ActionContext],
) -> None:
    core = k8s.CoreV1Api(admin_api)
    for name, selector in [
        ("musearoo-db", {"app.kubernetes.io/name": "musearoo-db"}),
        ("musearoo-db-read", {"app.kubernetes.io/name": "musearoo-db", "role": "primary"}),
    ]:
        await core.create_namespaced_service(
            namespace,
            {"metadata": {"name": name}, "spec": {"selector": selector, "ports": [{"port": 5432}]}},
        )
    m = matched(
        {
            "alertname": "DatabasePerformanceDegraded",
            "service": "musearoo-db",
            "namespace": namespace,
        }
    )
    [result] = await run_steps(stack_actions, m, make_ctx)
    assert result.action == "region.failover"
    svc = await core.read_namespaced_service("musearoo-db-read", namespace)
    assert svc.spec.selector == {"app.kubernetes.io/name": "musearoo-db", "role": "replica"}
