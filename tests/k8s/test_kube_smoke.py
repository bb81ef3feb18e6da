"""The local control plane behaves like a cluster: Deployments roll out through ReplicaSets
to Ready pods (kwok), pod IPs stay on loopback, and the Gateway API is installed."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from kubernetes_asyncio import client as k8s

from responder_dev.stack.kube import KUBE_VERSION, KubeControlPlane

from .support import eventually

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

LABELS = {"app": "web"}


def deployment(name: str, replicas: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": LABELS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": LABELS},
            "template": {
                "metadata": {"labels": LABELS},
                # kwok runs no container: the image is never pulled.
                "spec": {"containers": [{"name": "web", "image": "registry.invalid/web:1"}]},
            },
        },
    }


async def rolled_out(apps: k8s.AppsV1Api, namespace: str, name: str) -> k8s.V1Deployment | None:
    """The Deployment once `kubectl rollout status` would call it complete."""
    dep = await apps.read_namespaced_deployment(name, namespace)
    want = dep.spec.replicas
    status = dep.status
    done = (
        status.observed_generation is not None
        and status.observed_generation >= dep.metadata.generation
        and status.updated_replicas == want
        and status.replicas == want
        and status.available_replicas == want
    )
    return dep if done else None


async def owned_replica_sets(
    apps: k8s.AppsV1Api, namespace: str, dep: k8s.V1Deployment
) -> list[k8s.V1ReplicaSet]:
    sets = await apps.list_namespaced_replica_set(namespace)
    return [
        rs
        for rs in sets.items
        if any(ref.uid == dep.metadata.uid for ref in rs.metadata.owner_references or [])
    ]


async def test_version_is_the_built_one(admin_api: k8s.ApiClient) -> None:
    info = await k8s.VersionApi(admin_api).get_code()
    assert info.git_version == KUBE_VERSION


async def test_deployment_rolls_out_to_ready_pods_and_rolls_again_on_template_change(
    admin_api: k8s.ApiClient, namespace: str, control_plane: KubeControlPlane
) -> None:
    apps = k8s.AppsV1Api(admin_api)
    core = k8s.CoreV1Api(admin_api)
    await apps.create_namespaced_deployment(namespace, deployment("web"))

    dep = await eventually(lambda: rolled_out(apps, namespace, "web"), what="first rollout")
    first_sets = await owned_replica_sets(apps, namespace, dep)
    assert len(first_sets) == 1
    assert first_sets[0].status.ready_replicas == 2

    pods = (await core.list_namespaced_pod(namespace, label_selector="app=web")).items
    assert len(pods) == 2
    for pod in pods:
        ready = {c.type: c.status for c in pod.status.conditions}
        assert ready.get("Ready") == "True"
        assert pod.spec.node_name in control_plane.node_names()
        assert pod.status.phase == "Running"

    # A rollout restart, as `kubectl rollout restart` does it.
    patch = {
        "spec": {
            "template": {
                "metadata": {
                    "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}
                }
            }
        }
    }
    await apps.patch_namespaced_deployment("web", namespace, patch)

    async def second_rollout() -> k8s.V1Deployment | None:
        dep = await rolled_out(apps, namespace, "web")
        if dep is None or dep.metadata.generation < 2:
            return None
        sets = await owned_replica_sets(apps, namespace, dep)
        new = [rs for rs in sets if rs.metadata.uid != first_sets[0].metadata.uid]
        old = [rs for rs in sets if rs.metadata.uid == first_sets[0].metadata.uid]
        if len(new) != 1 or new[0].status.ready_replicas != 2 or old[0].spec.replicas != 0:
            return None
        return dep

    dep = await eventually(second_rollout, what="second rollout")
    assert dep.metadata.annotations["deployment.kubernetes.io/revision"] == "2"

    # Without a kubelet, old pods would hang in Terminating; kwok finishes them.
    new_set = [rs for rs in await owned_replica_sets(apps, namespace, dep) if rs.spec.replicas]
    pod_hash = new_set[0].metadata.labels["pod-template-hash"]

    async def only_new_pods() -> list[k8s.V1Pod] | None:
        pods = (await core.list_namespaced_pod(namespace, label_selector="app=web")).items
        hashes = {pod.metadata.labels["pod-template-hash"] for pod in pods}
        return pods if len(pods) == 2 and hashes == {pod_hash} else None

    await eventually(only_new_pods, what="old pods gone")


async def test_pods_and_nodes_get_loopback_addresses_only(
    admin_api: k8s.ApiClient, namespace: str, control_plane: KubeControlPlane
) -> None:
    apps = k8s.AppsV1Api(admin_api)
    core = k8s.CoreV1Api(admin_api)
    await apps.create_namespaced_deployment(namespace, deployment("addr", replicas=4))
    await eventually(lambda: rolled_out(apps, namespace, "addr"), what="rollout")

    pod_net = ipaddress.ip_network(control_plane.options.pod_cidr)
    pods = (await core.list_namespaced_pod(namespace, label_selector="app=web")).items
    ips = [ip.ip for pod in pods for ip in pod.status.pod_ips]
    assert len(ips) == 4
    assert len(set(ips)) == 4
    for ip in ips:
        assert ipaddress.ip_address(ip).is_loopback
        assert ipaddress.ip_address(ip) in pod_net
    for pod in pods:
        assert ipaddress.ip_address(pod.status.host_ip).is_loopback

    for node in (await core.list_node()).items:
        for address in node.status.addresses:
            if address.type == "InternalIP":
                assert ipaddress.ip_address(address.address).is_loopback

    service = await core.create_namespaced_service(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "addr"},
            "spec": {"selector": LABELS, "ports": [{"port": 80}]},
        },
    )
    assert ipaddress.ip_address(service.spec.cluster_ip).is_loopback


async def test_gateway_api_httproute_weights_can_be_patched(
    admin_api: k8s.ApiClient, namespace: str
) -> None:
    custom = k8s.CustomObjectsApi(admin_api)
    group, version, plural = "gateway.networking.k8s.io", "v1", "httproutes"
    route = {
        "apiVersion": f"{group}/{version}",
        "kind": "HTTPRoute",
        "metadata": {"name": "generation"},
        "spec": {
            "parentRefs": [{"name": "edge"}],
            "rules": [
                {
                    "backendRefs": [
                        {"name": "generation-primary", "port": 80, "weight": 100},
                        {"name": "generation-backup", "port": 80, "weight": 0},
                    ]
                }
            ],
        },
    }
    await custom.create_namespaced_custom_object(group, version, namespace, plural, route)
    route["spec"]["rules"][0]["backendRefs"][0]["weight"] = 0  # type: ignore[index]
    route["spec"]["rules"][0]["backendRefs"][1]["weight"] = 100  # type: ignore[index]
    await custom.patch_namespaced_custom_object(
        group,
        version,
        namespace,
        plural,
        "generation",
        {"spec": route["spec"]},
        _content_type="application/merge-patch+json",
    )
    stored = await custom.get_namespaced_custom_object(
        group, version, namespace, plural, "generation"
    )
    weights = [ref["weight"] for ref in stored["spec"]["rules"][0]["backendRefs"]]
    assert weights == [0, 100]

    # The CRD's own validation runs: a weight above 1,000,000 is refused.
    bad = {"spec": {"rules": [{"backendRefs": [{"name": "x", "port": 80, "weight": 2_000_000}]}]}}
    with pytest.raises(k8s.ApiException) as err:
        await custom.patch_namespaced_custom_object(
            group,
            version,
            namespace,
            plural,
            "generation",
            bad,
            _content_type="application/merge-patch+json",
        )
    assert err.value.status == 422
