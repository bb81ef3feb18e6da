"""Fixtures for the Kubernetes actions: the actions built over the responder's own
ServiceAccount client (so RBAC is real), objects created as admin, and a fixed clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from action_support import FixedClock, context_factory
from aiohttp import web
from kubernetes_asyncio import client as k8s

from k8s.support import eventually
from responder.actions.base import Action, ActionContext
from responder.actions.registry import ActionDeps, build_actions
from responder.settings import ActionsSettings

LABELS = {"app": "web"}


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def make_ctx(clock: FixedClock) -> Callable[..., ActionContext]:
    return context_factory(clock, deadline_s=90)


@pytest.fixture
def actions_settings(namespace: str) -> ActionsSettings:
    return ActionsSettings(
        allowed_namespaces=[namespace, "unbound-*"],
        call_timeout_s=10.0,
        retry_attempts=8,
        retry_base_s=0.02,
        retry_cap_s=0.2,
        rollout_poll_s=0.2,
        endpoint_parallelism=4,
    )


@pytest.fixture
async def deps(
    responder_api: k8s.ApiClient, actions_settings: ActionsSettings
) -> AsyncIterator[ActionDeps]:
    built = ActionDeps.build(actions_settings, responder_api)
    yield built
    await built.close()


@pytest.fixture
def actions(deps: ActionDeps) -> dict[str, Action]:
    return build_actions(deps)


def deployment_body(
    name: str, replicas: int = 2, image: str = "registry.invalid/web:1"
) -> dict[str, Any]:
    labels = {**LABELS, "name": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
        },
    }


async def rolled_out(apps: k8s.AppsV1Api, namespace: str, name: str) -> k8s.V1Deployment | None:
    dep = await apps.read_namespaced_deployment(name, namespace)
    status = dep.status
    want = dep.spec.replicas
    done = (
        (status.observed_generation or 0) >= dep.metadata.generation
        and status.updated_replicas == want
        and status.replicas == want
        and status.available_replicas == want
    )
    return dep if done else None


@pytest.fixture
def make_deployment(admin_api: k8s.ApiClient, namespace: str) -> Callable[..., Any]:
    """Create a Deployment as admin and wait until kwok has rolled it out."""
    apps = k8s.AppsV1Api(admin_api)

    async def make(
        name: str = "web", replicas: int = 2, image: str = "registry.invalid/web:1"
    ) -> k8s.V1Deployment:
        await apps.create_namespaced_deployment(namespace, deployment_body(name, replicas, image))
        return await eventually(
            lambda: rolled_out(apps, namespace, name), what=f"{name} rolled out"
        )

    return make


async def start_http(host: str, port: int, handler: Callable[[web.Request], Any]) -> web.AppRunner:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
