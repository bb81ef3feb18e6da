"""Every manifest in deploy/k8s/ is accepted by a real API server (server-side dry run:
schema, admission, Pod Security "restricted"), without a single warning."""

from __future__ import annotations

import asyncio
import re

import pytest
import yaml

from responder.stack.kube import KubeControlPlane

from .support import MANIFESTS

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
