"""model.reload and connections.reset: pods found through EndpointSlices (created here with
127.0.0.N addresses), real HTTP servers listening on those addresses, real RBAC."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from kubernetes_asyncio import client as k8s

from responder.actions.base import LAST_ACTION_ANNOTATION, Action, ActionContext
from responder.actions.params import ConnectionsResetParams, ModelReloadParams
from responder.errors import PermanentError, TemporaryError
from responder.models.target import Target
from responder.stack.process import free_port

from .conftest import start_http

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]


@dataclass
class Pod:
    """One fake model-server pod: a real HTTP server on its own loopback address."""

    host: str
    script: list[int] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append(
            {"method": request.method, "path": request.path, "body": await request.text()}
        )
        status = self.script.pop(0) if self.script else 200
        return web.json_response({"host": self.host}, status=status)


@pytest.fixture
async def pods() -> AsyncIterator[tuple[int, list[Pod]]]:
    port = free_port(HOSTS[0])
    servers = [Pod(h) for h in HOSTS]
    runners = [await start_http(p.host, port, p.handle) for p in servers]
    yield port, servers
    for runner in runners:
        await runner.cleanup()


async def make_service(
    admin_api: k8s.ApiClient,
    namespace: str,
    name: str,
    port: int,
    endpoints: list[tuple[str, bool]],
) -> None:
    await k8s.CoreV1Api(admin_api).create_namespaced_service(
        namespace, {"metadata": {"name": name}, "spec": {"ports": [{"name": "http", "port": port}]}}
    )
    await k8s.DiscoveryV1Api(admin_api).create_namespaced_endpoint_slice(
        namespace,
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {"name": f"{name}-1", "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": [a], "conditions": {"ready": ready}} for a, ready in endpoints
            ],
        },
    )


async def service_record(
    admin_api: k8s.ApiClient, namespace: str, name: str
) -> dict[str, Any] | None:
    svc = await k8s.CoreV1Api(admin_api).read_namespaced_service(name, namespace)
    raw = (svc.metadata.annotations or {}).get(LAST_ACTION_ANNOTATION)
    return None if raw is None else dict(json.loads(raw))


async def test_reload_posts_to_every_ready_pod_once_per_key(
    actions: dict[str, Action],
    admin_api: k8s.ApiClient,
    namespace: str,
    pods: tuple[int, list[Pod]],
    make_ctx: Callable[..., ActionContext],
) -> None:
    port, servers = pods
    await make_service(
        admin_api, namespace, "model", port, [(HOSTS[0], True), (HOSTS[1], True), (HOSTS[2], False)]
    )
    target = Target(namespace=namespace, kind="service", name="model")
    params = ModelReloadParams(port=port, variant="backup", concurrency=2)
    ctx = make_ctx()
    servers[1].script = [500]  # a transient failure: retried, then 200
    result = await actions["model.reload"].run(ctx, target, params)
    assert result.after == {"reloaded": 2, "failed": 0}
    assert [len(s.calls) for s in servers] == [1, 2, 0]  # the unready pod is left alone
    assert servers[0].calls[0] == {
        "method": "POST",
        "path": "/reload",
        "body": '{"variant": "backup"}',
    }
    assert sorted(a["address"] for a in result.data["answers"]) == HOSTS[:2]
    assert (await service_record(admin_api, namespace, "model") or {})["key"] == ctx.key

    again = await actions["model.reload"].run(ctx, target, params)
    assert again.repeat_of is not None
    assert [len(s.calls) for s in servers] == [1, 2, 0]
    assert await actions["model.reload"].reconcile(ctx, target, ctx.key) is True
    assert await actions["model.reload"].reconcile(ctx, target, "x/1/1") is False


async def test_reload_dry_run_calls_nobody(
    actions: dict[str, Action],
    admin_api: k8s.ApiClient,
    namespace: str,
    pods: tuple[int, list[Pod]],
    make_ctx: Callable[..., ActionContext],
) -> None:
    port, servers = pods
    await make_service(admin_api, namespace, "model", port, [(h, True) for h in HOSTS])
    result = await actions["model.reload"].run(
        make_ctx(dry_run=True),
        Target(namespace=namespace, name="model"),
        ModelReloadParams(port=port),
    )
    assert result.dry_run
    assert result.data["addresses"] == HOSTS
    assert all(not s.calls for s in servers)
    assert await service_record(admin_api, namespace, "model") is None


async def test_non_loopback_endpoint_refused_before_any_call(
    actions: dict[str, Action],
    admin_api: k8s.ApiClient,
    namespace: str,
    pods: tuple[int, list[Pod]],
    make_ctx: Callable[..., ActionContext],
) -> None:
    port, servers = pods
    await make_service(admin_api, namespace, "model", port, [(HOSTS[0], True), ("10.1.2.3", True)])
    with pytest.raises(
        PermanentError, match=r"10\.1\.2\.3 is outside actions\.allowed_endpoint_networks"
    ):
        await actions["model.reload"].run(
            make_ctx(), Target(namespace=namespace, name="model"), ModelReloadParams(port=port)
        )
    assert all(not s.calls for s in servers)


async def test_reload_with_no_pod_answering_is_temporary(
    actions: dict[str, Action],
    admin_api: k8s.ApiClient,
    namespace: str,
    pods: tuple[int, list[Pod]],
    make_ctx: Callable[..., ActionContext],
) -> None:
    port, servers = pods
    await make_service(admin_api, namespace, "model", port, [(HOSTS[0], True)])
    servers[0].script = [404]
    with pytest.raises(TemporaryError, match="no pod"):
        await actions["model.reload"].run(
            make_ctx(), Target(namespace=namespace, name="model"), ModelReloadParams(port=port)
        )


async def test_reload_by_restart(
    actions: dict[str, Action],
    admin_api: k8s.ApiClient,
    namespace: str,
    make_deployment: Callable[..., Any],
    make_ctx: Callable[..., ActionContext],
) -> None:
    await make_deployment(name="model")
    ctx = make_ctx()
    target = Target(namespace=namespace, name="model")
    result = await actions["model.reload"].run(ctx, target, ModelReloadParams(restart=True))
    assert result.action == "model.reload"
    assert result.data["rollout"] == {"updatedReplicas": 2, "availableReplicas": 2}
    dep = await k8s.AppsV1Api(admin_api).read_namespaced_deployment("model", namespace)
    assert "kubectl.kubernetes.io/restartedAt" in dep.spec.template.metadata.annotations
    assert await actions["model.reload"].reconcile(ctx, target, ctx.key) is True


async def test_connections_drained_on_every_pod(
    actions: dict[str, Action],
    admin_api: k8s.ApiClient,
    namespace: str,
    pods: tuple[int, list[Pod]],
    make_ctx: Callable[..., ActionContext],
) -> None:
    port, servers = pods
    await make_service(admin_api, namespace, "hub", port, [(h, True) for h in HOSTS])
    ctx = make_ctx()
    target = Target(namespace=namespace, name="hub")
    result = await actions["connections.reset"].run(ctx, target, ConnectionsResetParams(port=port))
    assert result.after == {"drained": 3}
    assert [s.calls[0]["path"] for s in servers] == ["/admin/connections/drain"] * 3
    again = await actions["connections.reset"].run(ctx, target, ConnectionsResetParams(port=port))
    assert again.repeat_of is not None
    assert [len(s.calls) for s in servers] == [1, 1, 1]


async def test_failed_drain_falls_back_to_rolling_restart(
    actions: dict[str, Action],
    admin_api: k8s.ApiClient,
    namespace: str,
    pods: tuple[int, list[Pod]],
    make_deployment: Callable[..., Any],
    make_ctx: Callable[..., ActionContext],
) -> None:
    port, servers = pods
    await make_deployment(name="hub")
    await make_service(admin_api, namespace, "hub", port, [(HOSTS[0], True), (HOSTS[1], True)])
    servers[1].script = [404]
    ctx = make_ctx()
    target = Target(namespace=namespace, name="hub")
    result = await actions["connections.reset"].run(ctx, target, ConnectionsResetParams(port=port))
    assert result.action == "connections.reset"
    assert result.detail.startswith("drain failed on 1/2 pods; fell back to a rolling restart")
    dep = await k8s.AppsV1Api(admin_api).read_namespaced_deployment("hub", namespace)
    assert "kubectl.kubernetes.io/restartedAt" in dep.spec.template.metadata.annotations
    again = await actions["connections.reset"].run(ctx, target, ConnectionsResetParams(port=port))
    assert again.repeat_of is not None
    assert [len(s.calls) for s in servers] == [1, 1, 0]
    servers[1].script = [404]
    with pytest.raises(TemporaryError, match="drain failed"):
        await actions["connections.reset"].run(
            make_ctx(), target, ConnectionsResetParams(port=port, fallback="none")
        )
