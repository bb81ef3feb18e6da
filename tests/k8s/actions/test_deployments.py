"""deployment.restart / scale / rollback against the real apiserver, as the responder's
ServiceAccount (RBAC from deploy/k8s/rbac.yaml), with kwok pods and the real controllers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
import structlog
from kubernetes_asyncio import client as k8s

from k8s.support import eventually
from responder.actions.base import LAST_ACTION_ANNOTATION, Action, ActionContext
from responder.actions.params import (
    DeploymentRestartParams,
    DeploymentRollbackParams,
    DeploymentScaleParams,
)
from responder.actions.retry import NotFoundError
from responder.errors import PermanentError
from responder.models.target import Target

from .conftest import rolled_out

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
EXPECTED_AT = "2026-05-28T20:26:40.000Z"  # FixedClock's 1_780_000_000


async def read(admin_api: k8s.ApiClient, namespace: str, name: str = "web") -> Any:
    return await k8s.AppsV1Api(admin_api).read_namespaced_deployment(name, namespace)


def record(dep: Any) -> dict[str, Any]:
    return dict(json.loads(dep.metadata.annotations[LAST_ACTION_ANNOTATION]))


async def test_restart_rolls_out_a_new_replicaset_once_per_key(
    actions: dict[str, Action],
    admin_api: k8s.ApiClient,
    namespace: str,
    make_deployment: Callable[..., Any],
    make_ctx: Callable[..., ActionContext],
) -> None:
    before = await make_deployment()
    target = Target(namespace=namespace, name="web")
    ctx = make_ctx()
    result = await actions["deployment.restart"].run(
        ctx, target, DeploymentRestartParams(wait=True)
    )
    assert result.changed
    assert result.after == {"restartedAt": EXPECTED_AT}
    assert result.data["rollout"] == {"updatedReplicas": 2, "availableReplicas": 2}
    after = await read(admin_api, namespace)
    assert after.spec.template.metadata.annotations[RESTARTED_AT] == EXPECTED_AT
    assert after.metadata.generation == before.metadata.generation + 1
    assert record(after)["key"] == ctx.key
    assert await rolled_out(k8s.AppsV1Api(admin_api), namespace, "web") is not None
    sets = await k8s.AppsV1Api(admin_api).list_namespaced_replica_set(namespace)
    assert len(sets.items) == 2

    again = await actions["deployment.restart"].run(
        ctx, target, DeploymentRestartParams(wait=False)
    )
    assert not again.changed
    assert again.repeat_of is not None
    assert again.repeat_of.after == {"restartedAt": EXPECTED_AT}
    assert (await read(admin_api, namespace)).metadata.generation == after.metadata.generation
    assert await actions["deployment.restart"].reconcile(ctx, target, ctx.key) is True
    assert await actions["deployment.restart"].reconcile(ctx, target, "other/0/1") is False


async def test_restart_dry_run_uses_server_dry_run_and_changes_nothing(
    actions: dict[str, Action],
    admin_api: k8s.ApiClient,
    namespace: str,
    make_deployment: Callable[..., Any],
    make_ctx: Callable[..., ActionContext],
) -> None:
    before = await make_deployment()
    ctx = make_ctx(dry_run=True)
    result = await actions["deployment.restart"].run(
        ctx, Target(namespace=namespace, name="web"), DeploymentRestartParams()
    )
    assert result.dry_run
    assert not result.changed
    assert result.data["patch"]["spec"]["template"]["metadata"]["annotations"] == {
        RESTARTED_AT: EXPECTED_AT
    }
    after = await read(admin_api, namespace)
    assert after.metadata.resource_version == before.metadata.resource_version
    assert LAST_ACTION_ANNOTATION not in (after.metadata.annotations or {})


async def test_concurrent_restarts_conflict_and_all_land(
    actions: dict[str, Action],
    admin_api: k8s.ApiClient,
    namespace: str,
    make_deployment: Callable[..., Any],
    make_ctx: Callable[..., ActionContext],
) -> None:
    await make_deployment()
    target = Target(namespace=namespace, name="web")
    contexts = [make_ctx() for _ in range(4)]
    with structlog.testing.capture_logs() as logs:
        results = await asyncio.gather(
            *(
                actions["deployment.restart"].run(c, target, DeploymentRestartParams(wait=False))
                for c in contexts
            )
        )
    assert all(r.changed for r in results)
    conflicts = [e for e in logs if e["event"] == "action.retry" and "409" in e["error"]]
    assert conflicts, "four writers on one resourceVersion must meet a 409"
    final = record(await read(admin_api, namespace))
    assert final["key"] in {c.key for c in contexts}


async def test_forbidden_namespace_is_a_permanent_rbac_sentence(
    actions: dict[str, Action],
    admin_api: k8s.ApiClient,
    make_ctx: Callable[..., ActionContext],
) -> None:
    other = "unbound-" + make_ctx().incident_id
    core = k8s.CoreV1Api(admin_api)
    await core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=other)))
    try:
        with pytest.raises(PermanentError) as caught:
            await actions["deployment.restart"].run(
                make_ctx(), Target(namespace=other, name="web"), DeploymentRestartParams()
            )
        assert str(caught.value) == (
            f"RBAC: serviceaccount responder/responder cannot get deployments.apps in namespace {other}"
        )
    finally:
        await core.delete_namespace(other)


async def test_missing_deployment_is_not_found(
    actions: dict[str, Action], namespace: str, make_ctx: Callable[..., ActionContext]
) -> None:
    with pytest.raises(NotFoundError, match="not found"):
        await actions["deployment.restart"].run(
            make_ctx(), Target(namespace=namespace, name="nope"), DeploymentRestartParams()
        )


async def test_crafted_names_never_reach_the_api(
    actions: dict[str, Action], namespace: str, make_ctx: Callable[..., ActionContext]
) -> None:
    for bad in ["x; rm -rf /", "../../etc", "a" * 300, "w\u0435b"]:
        sneaky = Target.model_construct(
            namespace=namespace, kind="deployment", name=bad, region=None
        )
        with (
            structlog.testing.capture_logs() as logs,
            pytest.raises(PermanentError, match="refusing target"),
        ):
            await actions["deployment.restart"].run(make_ctx(), sneaky, DeploymentRestartParams())
        assert logs == []


async def test_scale_by_factor_through_the_scale_subresource_clamped(
    actions: dict[str, Action],
    admin_api: k8s.ApiClient,
    namespace: str,
    make_deployment: Callable[..., Any],
    make_ctx: Callable[..., ActionContext],
) -> None:
    await make_deployment(replicas=2)
    target = Target(namespace=namespace, name="web")
    ctx = make_ctx()
    result = await actions["deployment.scale"].run(
        ctx, target, DeploymentScaleParams(factor=2, max=3)
    )
    assert result.before == {"replicas": 2}
    assert result.after == {"replicas": 3}
    dep = await read(admin_api, namespace)
    assert dep.spec.replicas == 3
    assert record(dep)["phase"] == "done"
    again = await actions["deployment.scale"].run(
        ctx, target, DeploymentScaleParams(factor=2, max=3)
    )
    assert again.repeat_of is not None
    assert (await read(admin_api, namespace)).spec.replicas == 3
    assert await actions["deployment.scale"].reconcile(ctx, target, ctx.key) is True

    dry = await actions["deployment.scale"].run(
        make_ctx(dry_run=True), target, DeploymentScaleParams(replicas=1)
    )
    assert dry.after == {"replicas": 1}
    assert (await read(admin_api, namespace)).spec.replicas == 3


async def test_scale_respects_the_global_ceiling(
    actions: dict[str, Action],
    admin_api: k8s.ApiClient,
    namespace: str,
    make_deployment: Callable[..., Any],
    make_ctx: Callable[..., ActionContext],
) -> None:
    await make_deployment(replicas=4)
    result = await actions["deployment.scale"].run(
        make_ctx(),
        Target(namespace=namespace, name="web"),
        DeploymentScaleParams(factor=10, max=1000),
    )
    assert result.after == {"replicas": 20}
    assert (await read(admin_api, namespace)).spec.replicas == 20


async def test_scale_raises_the_hpa_floor_instead(
    actions: dict[str, Action],
    admin_api: k8s.ApiClient,
    namespace: str,
    make_deployment: Callable[..., Any],
    make_ctx: Callable[..., ActionContext],
) -> None:
    await make_deployment(replicas=2)
    hpas = k8s.AutoscalingV2Api(admin_api)
    await hpas.create_namespaced_horizontal_pod_autoscaler(
        namespace,
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 2,
                "maxReplicas": 3,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 80},
                        },
                    }
                ],
            },
        },
    )
    result = await actions["deployment.scale"].run(
        make_ctx(),
        Target(namespace=namespace, name="web"),
        DeploymentScaleParams(replicas=5, max=10),
    )
    assert "HorizontalPodAutoscaler web owns" in result.detail
    assert result.after == {"minReplicas": 5, "maxReplicas": 5}
    hpa = await hpas.read_namespaced_horizontal_pod_autoscaler("web", namespace)
    assert (hpa.spec.min_replicas, hpa.spec.max_replicas) == (5, 5)


async def test_rollback_returns_to_the_previous_template(
    actions: dict[str, Action],
    admin_api: k8s.ApiClient,
    namespace: str,
    make_deployment: Callable[..., Any],
    make_ctx: Callable[..., ActionContext],
) -> None:
    apps = k8s.AppsV1Api(admin_api)
    await make_deployment(image="registry.invalid/web:1")
    target = Target(namespace=namespace, name="web")
    with pytest.raises(PermanentError, match="no previous revision"):
        await actions["deployment.rollback"].run(make_ctx(), target, DeploymentRollbackParams())
    await apps.patch_namespaced_deployment(
        "web",
        namespace,
        {
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "web", "image": "registry.invalid/web:2"}]}
                }
            }
        },
    )
    await eventually(lambda: rolled_out(apps, namespace, "web"), what="v2 rolled out")
    dry = await actions["deployment.rollback"].run(
        make_ctx(dry_run=True), target, DeploymentRollbackParams()
    )
    assert dry.after is not None
    assert dry.after["revision"] == 1
    assert (await read(admin_api, namespace)).spec.template.spec.containers[0].image.endswith(":2")

    ctx = make_ctx()
    result = await actions["deployment.rollback"].run(ctx, target, DeploymentRollbackParams())
    assert result.before == {"revision": 2}
    dep = await read(admin_api, namespace)
    assert dep.spec.template.spec.containers[0].image == "registry.invalid/web:1"
    assert "pod-template-hash" not in dep.spec.template.metadata.labels
    assert record(dep)["key"] == ctx.key
    rolled = await eventually(
        lambda: rolled_out(apps, namespace, "web"), what="rollback rolled out"
    )
    assert rolled.metadata.annotations["deployment.kubernetes.io/revision"] == "3"
    again = await actions["deployment.rollback"].run(ctx, target, DeploymentRollbackParams())
    assert again.repeat_of is not None
    assert (await read(admin_api, namespace)).spec.template.spec.containers[
        0
    ].image == "registry.invalid/web:1"


async def test_scale_interrupted_after_its_intent_finishes_what_was_decided(
    actions: dict[str, Action],
    admin_api: k8s.ApiClient,
    namespace: str,
    make_deployment: Callable[..., Any],
    make_ctx: Callable[..., ActionContext],
) -> None:
    """A worker died after recording the intent (2 -> 5) and before scaling: the repeat with
    the same key scales to the recorded 5, not to a fresh factor of the current count."""
    await make_deployment(replicas=2)
    ctx = make_ctx()
    target = Target(namespace=namespace, name="web")
    intent = {
        "key": ctx.key,
        "action": "deployment.scale",
        "target": str(target),
        "phase": "started",
        "changed": True,
        "before": {"replicas": 2},
        "after": {"replicas": 5},
        "detail": "",
    }
    await k8s.AppsV1Api(admin_api).patch_namespaced_deployment(
        "web",
        namespace,
        {"metadata": {"annotations": {LAST_ACTION_ANNOTATION: json.dumps(intent)}}},
    )
    assert await actions["deployment.scale"].reconcile(ctx, target, ctx.key) is False
    result = await actions["deployment.scale"].run(ctx, target, DeploymentScaleParams(factor=2))
    assert result.after == {"replicas": 5}
    dep = await read(admin_api, namespace)
    assert dep.spec.replicas == 5
    assert record(dep)["phase"] == "done"
    assert await actions["deployment.scale"].reconcile(ctx, target, ctx.key) is True
