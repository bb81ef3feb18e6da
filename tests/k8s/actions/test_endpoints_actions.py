"""model.reload and connections.reset: the ready pods behind a Service, found through the real
API as the responder's ServiceAccount, and real HTTP servers listening on those pods' addresses.

The API server refuses loopback addresses in EndpointSlices, so on the local control plane
(whose kwok pods have 127.64.x.y IPs) the calls go through ``endpoint_source: pods``, with
get/list on pods granted by an extra Role the test binds; the EndpointSlice source is
tested with non-loopback addresses, which the guard must refuse before any call.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from kubernetes_asyncio import client as k8s

from k8s.support import allow_pod_reads, eventually
from responder.actions.base import LAST_ACTION_ANNOTATION, Action, ActionContext
from responder.actions.params import ConnectionsResetParams, ModelReloadParams
from responder.actions.registry import ActionDeps, build_actions
from responder.errors import PermanentError, TemporaryError
from responder.models.target import Target
from responder.settings import ActionsSettings
from responder_dev.stack.process import free_port

from .conftest import start_http

pytestmark = [pytest.mark.k8s, pytest.mark.slow]


@dataclass
class Pod:
    """One fake pod's HTTP server, listening on the pod's own (loopback) IP."""

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
async def pod_actions(
    responder_api: k8s.ApiClient,
    admin_api: k8s.ApiClient,
    namespace: str,
    actions_settings: ActionsSettings,
) -> AsyncIterator[dict[str, Action]]:
    """The actions with ``endpoint_source: pods``, and the Role that source needs, bound."""
    await allow_pod_reads(admin_api, namespace)
    deps = ActionDeps.build(
        actions_settings.model_copy(update={"endpoint_source": "pods"}), responder_api
    )
    yield build_actions(deps)
    await deps.close()


async def ready_pod_ips(
    admin_api: k8s.ApiClient, namespace: str, name: str, count: int
) -> list[str]:
    async def check() -> list[str] | None:
        pods = await k8s.CoreV1Api(admin_api).list_namespaced_pod(
            namespace, label_selector=f"name={name}"
        )
        ips = sorted(
            p.status.pod_ip
            for p in pods.items
            if p.status.pod_ip
            and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
        )
        return ips if len(ips) == count else None

    return await eventually(check, what=f"{count} ready pods of {name}")


@pytest.fixture
async def serve_pods(
    admin_api: k8s.ApiClient, namespace: str, make_deployment: Callable[..., Any]
) -> AsyncIterator[Callable[..., Any]]:
    """A Deployment + Service ``name`` whose kwok pods answer HTTP on their IPs (port returned)."""
    runners: list[web.AppRunner] = []

    async def make(name: str, replicas: int = 3) -> tuple[int, list[Pod]]:
        await make_deployment(name=name, replicas=replicas)
        await k8s.CoreV1Api(admin_api).create_namespaced_service(
            namespace,
            {
                "metadata": {"name": name},
                "spec": {"selector": {"name": name}, "ports": [{"port": 80}]},
            },
        )
        ips = await ready_pod_ips(admin_api, namespace, name, replicas)
        port = free_port(ips[0])
        pods = [Pod(ip) for ip in ips]
        for pod in pods:
            runners.append(await start_http(pod.host, port, pod.handle))
        return port, pods

    yield make
    for runner in runners:
        await runner.cleanup()


async def service_record(
    admin_api: k8s.ApiClient, namespace: str, name: str
) -> dict[str, Any] | None:
    svc = await k8s.CoreV1Api(admin_api).read_namespaced_service(name, namespace)
    raw = (svc.metadata.annotations or {}).get(LAST_ACTION_ANNOTATION)
    return None if raw is None else dict(json.loads(raw))


async def test_reload_posts_to_every_ready_pod_once_per_key(
    pod_actions: dict[str, Action],
    admin_api: k8s.ApiClient,
    namespace: str,
    serve_pods: Callable[..., Any],
    make_ctx: Callable[..., ActionContext],
) -> None:
    port, pods = await serve_pods("model")
    target = Target(namespace=namespace, kind="service", name="model")
    params = ModelReloadParams(port=port, variant="backup", concurrency=2)
    ctx = make_ctx()
    pods[1].script = [500]  # a transient failure: retried, then 200
    result = await pod_actions["model.reload"].run(ctx, target, params)
    assert result.after == {"reloaded": 3, "failed": 0}
    assert [len(p.calls) for p in pods] == [1, 2, 1]
    assert pods[0].calls[0] == {
        "method": "POST",
        "path": "/reload",
        "body": '{"variant": "backup"}',
    }
    assert sorted(a["address"] for a in result.data["answers"]) == sorted(p.host for p in pods)
    assert (await service_record(admin_api, namespace, "model") or {})["key"] == ctx.key

    again = await pod_actions["model.reload"].run(ctx, target, params)
    assert again.repeat_of is not None
    assert [len(p.calls) for p in pods] == [1, 2, 1]
    assert await pod_actions["model.reload"].reconcile(ctx, target, ctx.key) is True
    assert await pod_actions["model.reload"].reconcile(ctx, target, "x/1/1") is False


async def test_reload_dry_run_calls_nobody(
    pod_actions: dict[str, Action],
    admin_api: k8s.ApiClient,
    namespace: str,
    serve_pods: Callable[..., Any],
    make_ctx: Callable[..., ActionContext],
) -> None:
    port, pods = await serve_pods("model")
    result = await pod_actions["model.reload"].run(
        make_ctx(dry_run=True),
        Target(namespace=namespace, name="model"),
        ModelReloadParams(port=port),
    )
    assert result.dry_run
    assert result.data["addresses"] == sorted(p.host for p in pods)
    assert all(not p.calls for p in pods)
    assert await service_record(admin_api, namespace, "model") is None


async def test_reload_with_no_pod_accepting_is_temporary(
    pod_actions: dict[str, Action],
    namespace: str,
    serve_pods: Callable[..., Any],
    make_ctx: Callable[..., ActionContext],
) -> None:
    port, pods = await serve_pods("model", replicas=1)
    pods[0].script = [404]
    with pytest.raises(TemporaryError, match="no pod"):
        await pod_actions["model.reload"].run(
            make_ctx(), Target(namespace=namespace, name="model"), ModelReloadParams(port=port)
        )


async def test_pods_source_without_the_extra_role_is_a_403_sentence(
    responder_api: k8s.ApiClient,
    admin_api: k8s.ApiClient,
    namespace: str,
    actions_settings: ActionsSettings,
    make_ctx: Callable[..., ActionContext],
) -> None:
    await k8s.CoreV1Api(admin_api).create_namespaced_service(
        namespace,
        {
            "metadata": {"name": "model"},
            "spec": {"selector": {"name": "model"}, "ports": [{"port": 80}]},
        },
    )
    deps = ActionDeps.build(
        actions_settings.model_copy(update={"endpoint_source": "pods"}), responder_api
    )
    try:
        with pytest.raises(PermanentError) as caught:
            await build_actions(deps)["model.reload"].run(
                make_ctx(), Target(namespace=namespace, name="model"), ModelReloadParams()
            )
    finally:
        await deps.close()
    assert (
        str(caught.value)
        == f"RBAC: serviceaccount responder/responder cannot list pods in namespace {namespace}"
    )


async def make_slice_service(
    admin_api: k8s.ApiClient, namespace: str, endpoints: list[tuple[str, bool]]
) -> None:
    await k8s.CoreV1Api(admin_api).create_namespaced_service(
        namespace,
        {"metadata": {"name": "model"}, "spec": {"ports": [{"name": "http", "port": 8080}]}},
    )
    await k8s.DiscoveryV1Api(admin_api).create_namespaced_endpoint_slice(
        namespace,
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {"name": "model-1", "labels": {"kubernetes.io/service-name": "model"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": [a], "conditions": {"ready": ready}} for a, ready in endpoints
            ],
        },
    )


async def test_endpointslice_address_outside_allowed_networks_is_refused_before_any_call(
    actions: dict[str, Action],
    admin_api: k8s.ApiClient,
    namespace: str,
    make_ctx: Callable[..., ActionContext],
) -> None:
    # Nothing listens on 10.x here and nothing may be sent there: the guard refuses first.
    await make_slice_service(admin_api, namespace, [("10.1.2.3", True), ("10.1.2.4", False)])
    target = Target(namespace=namespace, name="model")
    with pytest.raises(
        PermanentError, match=r"10\.1\.2\.3 is outside actions\.allowed_endpoint_networks"
    ):
        await actions["model.reload"].run(make_ctx(), target, ModelReloadParams())
    with pytest.raises(PermanentError, match=r"10\.1\.2\.3 is outside"):
        await actions["connections.reset"].run(make_ctx(), target, ConnectionsResetParams())
    with pytest.raises(PermanentError, match=r"10\.1\.2\.3 is outside"):
        await actions["model.reload"].run(make_ctx(dry_run=True), target, ModelReloadParams())


async def test_endpointslice_unready_endpoints_are_skipped(
    actions: dict[str, Action],
    admin_api: k8s.ApiClient,
    namespace: str,
    make_ctx: Callable[..., ActionContext],
) -> None:
    await make_slice_service(admin_api, namespace, [("10.1.2.4", False)])
    with pytest.raises(TemporaryError, match="no ready endpoints"):
        await actions["model.reload"].run(
            make_ctx(), Target(namespace=namespace, name="model"), ModelReloadParams()
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
    pod_actions: dict[str, Action],
    namespace: str,
    serve_pods: Callable[..., Any],
    make_ctx: Callable[..., ActionContext],
) -> None:
    port, pods = await serve_pods("hub")
    ctx = make_ctx()
    target = Target(namespace=namespace, name="hub")
    result = await pod_actions["connections.reset"].run(
        ctx, target, ConnectionsResetParams(port=port)
    )
    assert result.after == {"drained": 3}
    assert [p.calls[0]["path"] for p in pods] == ["/admin/connections/drain"] * 3
    again = await pod_actions["connections.reset"].run(
        ctx, target, ConnectionsResetParams(port=port)
    )
    assert again.repeat_of is not None
    assert [len(p.calls) for p in pods] == [1, 1, 1]


async def test_failed_drain_falls_back_to_rolling_restart(
    pod_actions: dict[str, Action],
    admin_api: k8s.ApiClient,
    namespace: str,
    serve_pods: Callable[..., Any],
    make_ctx: Callable[..., ActionContext],
) -> None:
    port, pods = await serve_pods("hub", replicas=2)
    pods[1].script = [404]
    ctx = make_ctx()
    target = Target(namespace=namespace, name="hub")
    result = await pod_actions["connections.reset"].run(
        ctx, target, ConnectionsResetParams(port=port)
    )
    assert result.action == "connections.reset"
    assert result.detail.startswith("drain failed on 1/2 pods; fell back to a rolling restart")
    dep = await k8s.AppsV1Api(admin_api).read_namespaced_deployment("hub", namespace)
    assert "kubectl.kubernetes.io/restartedAt" in dep.spec.template.metadata.annotations
    again = await pod_actions["connections.reset"].run(
        ctx, target, ConnectionsResetParams(port=port)
    )
    assert again.repeat_of is not None
    assert [len(p.calls) for p in pods] == [1, 1]


async def test_failed_drain_without_fallback_is_temporary(
    pod_actions: dict[str, Action],
    admin_api: k8s.ApiClient,
    namespace: str,
    serve_pods: Callable[..., Any],
    make_ctx: Callable[..., ActionContext],
) -> None:
    port, pods = await serve_pods("hub", replicas=1)
    pods[0].script = [404]
    target = Target(namespace=namespace, name="hub")
    with pytest.raises(TemporaryError, match="drain failed on 1/1 pods"):
        await pod_actions["connections.reset"].run(
            make_ctx(), target, ConnectionsResetParams(port=port, fallback="none")
        )
    dep = await k8s.AppsV1Api(admin_api).read_namespaced_deployment("hub", namespace)
    assert "kubectl.kubernetes.io/restartedAt" not in (dep.spec.template.metadata.annotations or {})
