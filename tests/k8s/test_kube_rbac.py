"""deploy/k8s/rbac.yaml is enforced by a real API server: the responder's ServiceAccount
(TokenRequest token) may do exactly what the file documents, where it is bound, and
nothing anywhere else."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.config import new_client_from_config

from responder_dev.stack.kube import KubeControlPlane

from .support import MANIFESTS, REMEDIATION_ROLE

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

# Granted to every authenticated identity by the bootstrap policy (system:basic-user).
EVERYONE = {
    "selfsubjectaccessreviews.authorization.k8s.io",
    "selfsubjectrulesreviews.authorization.k8s.io",
    "selfsubjectreviews.authentication.k8s.io",
}


def web(name: str = "web") -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "registry.invalid/web:1"}]},
            },
        },
    }


@pytest.fixture
async def other_namespace(admin_api: k8s.ApiClient) -> AsyncIterator[str]:
    """A namespace where the responder is not bound."""
    core = k8s.CoreV1Api(admin_api)
    name = f"t-other-{secrets.token_hex(4)}"
    await core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        await core.delete_namespace(name)


async def status_of(call: Any) -> int:
    """The HTTP status an API call ends with (200 when it succeeds)."""
    try:
        await call
    except k8s.ApiException as exc:
        return int(exc.status)
    return 200


async def test_responder_patches_deployments_and_scale_where_bound_and_gets_403_elsewhere(
    admin_api: k8s.ApiClient, responder_api: k8s.ApiClient, namespace: str, other_namespace: str
) -> None:
    admin = k8s.AppsV1Api(admin_api)
    for ns in (namespace, other_namespace):
        await admin.create_namespaced_deployment(ns, web())
    apps = k8s.AppsV1Api(responder_api)
    restart = {"spec": {"template": {"metadata": {"annotations": {"responder/at": "1"}}}}}

    await apps.patch_namespaced_deployment("web", namespace, restart)
    await apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 3}})
    assert (await apps.read_namespaced_deployment_scale("web", namespace)).spec.replicas == 3
    assert (await admin.read_namespaced_deployment("web", namespace)).spec.replicas == 3

    assert await status_of(apps.patch_namespaced_deployment("web", other_namespace, restart)) == 403
    scale = {"spec": {"replicas": 5}}
    assert (
        await status_of(apps.patch_namespaced_deployment_scale("web", other_namespace, scale))
        == 403
    )
    assert (await admin.read_namespaced_deployment("web", other_namespace)).spec.replicas == 1

    # Least privilege in the bound namespace too: no create, delete, secrets or pods.
    core = k8s.CoreV1Api(responder_api)
    assert await status_of(apps.delete_namespaced_deployment("web", namespace)) == 403
    assert await status_of(apps.create_namespaced_deployment(namespace, web("new"))) == 403
    assert await status_of(core.list_namespaced_secret(namespace)) == 403
    assert await status_of(core.list_namespaced_pod(namespace)) == 403
    assert await status_of(core.list_namespace()) == 403


def kubectl_resource(resource: str, group: str) -> str:
    """A resource as `kubectl auth can-i --list` names it: deployments.apps/scale."""
    name, _, sub = resource.partition("/")
    combined = f"{name}.{group}" if group else name
    return f"{combined}/{sub}" if sub else combined


def rbac_rules() -> set[tuple[str, str]]:
    """(resource, verb) pairs the ClusterRole in rbac.yaml grants."""
    for doc in yaml.safe_load_all((MANIFESTS / "rbac.yaml").read_text()):
        if doc and doc["kind"] == "ClusterRole" and doc["metadata"]["name"] == REMEDIATION_ROLE:
            return {
                (kubectl_resource(resource, group), verb)
                for rule in doc["rules"]
                for group in rule["apiGroups"]
                for resource in rule["resources"]
                for verb in rule["verbs"]
            }
    raise AssertionError(f"rbac.yaml has no ClusterRole {REMEDIATION_ROLE}")


# Resources  Non-Resource URLs  Resource Names  Verbs; the first column is empty for URLs.
CAN_I_ROW = re.compile(r"^(\S*)\s+\[([^\]]*)\]\s+\[([^\]]*)\]\s+\[([^\]]*)\]\s*$")


async def can_i_list(
    plane: KubeControlPlane, kubeconfig: Path, namespace: str
) -> set[tuple[str, str]]:
    """What `kubectl auth can-i --list` says the identity may do on resources in ``namespace``."""
    out = await asyncio.to_thread(
        plane.kubectl,
        "auth",
        "can-i",
        "--list",
        "--no-headers",
        f"--namespace={namespace}",
        kubeconfig=kubeconfig,
    )
    granted: set[tuple[str, str]] = set()
    for line in out.splitlines():
        match = CAN_I_ROW.match(line)
        assert match is not None, f"unexpected can-i line: {line!r}"
        resource, _urls, names, verbs = match.groups()
        assert not names, f"rules limited to resource names are not expected: {line!r}"
        if resource:
            granted.update((resource, verb) for verb in verbs.split())
    return granted


async def test_can_i_list_as_the_responder_matches_rbac_yaml(
    control_plane: KubeControlPlane,
    responder_kubeconfig: Path,
    namespace: str,
    other_namespace: str,
) -> None:
    where_bound = await can_i_list(control_plane, responder_kubeconfig, namespace)
    elsewhere = await can_i_list(control_plane, responder_kubeconfig, other_namespace)

    assert {resource for resource, _ in elsewhere} == EVERYONE
    assert where_bound - elsewhere == rbac_rules()


async def test_the_stack_writes_a_working_kubeconfig_for_the_responder(
    control_plane: KubeControlPlane, admin_api: k8s.ApiClient
) -> None:
    """The kubeconfig `responder stack up` hands the worker: TokenRequest token, bound in
    namespace musearoo by the shipped RoleBinding, nowhere else."""
    name = f"web-{secrets.token_hex(3)}"
    await k8s.AppsV1Api(admin_api).create_namespaced_deployment("musearoo", web(name))
    api = await new_client_from_config(config_file=str(control_plane.responder_kubeconfig))
    try:
        apps = k8s.AppsV1Api(api)
        await apps.patch_namespaced_deployment_scale(name, "musearoo", {"spec": {"replicas": 2}})
        who = await k8s.AuthenticationV1Api(api).create_self_subject_review(
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        )
        assert who.status.user_info.username == "system:serviceaccount:responder:responder"
        assert await status_of(apps.list_namespaced_deployment("default")) == 403
    finally:
        await api.close()
        await k8s.AppsV1Api(admin_api).delete_namespaced_deployment(name, "musearoo")
