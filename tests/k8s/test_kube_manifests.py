"""Every manifest in deploy/k8s/ is accepted by a real API server (server-side dry run:
schema, admission, Pod Security "restricted"), without a single warning."""

from __future__ import annotations

import asyncio
import re

import pytest
import yaml
from kubernetes_asyncio import client as k8s

from responder_dev.stack.kube import KubeControlPlane

from .support import MANIFESTS, eventually

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

KIND_TO_RESOURCE = {
    "Namespace": "namespace",
    "ServiceAccount": "serviceaccount",
    "ClusterRole": "clusterrole.rbac.authorization.k8s.io",
    "RoleBinding": "rolebinding.rbac.authorization.k8s.io",
    "Deployment": "deployment.apps",
    "Service": "service",
    "NetworkPolicy": "networkpolicy.networking.k8s.io",
    "PodDisruptionBudget": "poddisruptionbudget.policy",
}


def shipped_objects() -> set[str]:
    objects = set()
    for path in sorted(MANIFESTS.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                objects.add(f"{KIND_TO_RESOURCE[doc['kind']]}/{doc['metadata']['name']}")
    return objects


async def test_kubectl_apply_server_dry_run_accepts_every_manifest(
    control_plane: KubeControlPlane,
) -> None:
    out = await asyncio.to_thread(
        control_plane.kubectl, "apply", "--dry-run=server", "-f", str(MANIFESTS)
    )

    assert "Warning" not in out, out
    accepted = {
        match.group(1)
        for match in re.finditer(
            r"^(\S+) (?:created|configured|unchanged) \(server dry run\)$", out, re.M
        )
    }
    assert accepted == shipped_objects(), out


async def test_the_worker_alone_mounts_an_api_token() -> None:
    tokens = {}
    for path in MANIFESTS.glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] == "Deployment":
                spec = doc["spec"]["template"]["spec"]
                tokens[doc["metadata"]["name"]] = (
                    spec["serviceAccountName"],
                    spec["automountServiceAccountToken"],
                )
    assert tokens == {
        "responder-ingest": ("responder-ingest", False),
        "responder-worker": ("responder", True),
    }


async def test_shipped_deployments_run_under_restricted_pod_security(
    control_plane: KubeControlPlane, admin_api: k8s.ApiClient
) -> None:
    """Applied for real: Pod Security "restricted" admits the pods the ReplicaSets create
    (enforced at pod creation, which a dry run of a Deployment never reaches), selectors
    match, and both Deployments roll out on the kwok nodes."""
    files = [str(MANIFESTS / name) for name in ("ingest.yaml", "worker.yaml", "pdb.yaml")]
    apply = [arg for path in files for arg in ("-f", path)]
    await asyncio.to_thread(control_plane.kubectl, "apply", *apply)
    apps = k8s.AppsV1Api(admin_api)
    try:
        for name in ("responder-ingest", "responder-worker"):

            async def rolled_out(name: str = name) -> k8s.V1Deployment | None:
                dep = await apps.read_namespaced_deployment(name, "responder")
                want = dep.spec.replicas
                done = dep.status.available_replicas == want and dep.status.updated_replicas == want
                return dep if done else None

            await eventually(rolled_out, what=f"{name} rolled out")

        async def budgets_count_the_pods() -> bool | None:
            pdbs = await k8s.PolicyV1Api(admin_api).list_namespaced_pod_disruption_budget(
                "responder"
            )
            healthy = {pdb.metadata.name: pdb.status.current_healthy for pdb in pdbs.items}
            assert healthy == {"responder-ingest": 2, "responder-worker": 2}, healthy
            return True

        await eventually(budgets_count_the_pods, what="PodDisruptionBudgets see the pods")
    finally:
        await asyncio.to_thread(control_plane.kubectl, "delete", "--wait=false", *apply)
