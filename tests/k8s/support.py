"""Helpers shared by the tests against the local control plane."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes_asyncio import client as k8s

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "deploy" / "k8s"
RESPONDER_NAMESPACE = "responder"
RESPONDER_SA = "responder"
REMEDIATION_ROLE = "musearoo-responder-remediation"

T = TypeVar("T")


async def eventually(
    check: Callable[[], Awaitable[T | None]], *, timeout_s: float = 60.0, what: str = "condition"
) -> T:
    """Poll ``check`` until it returns something other than None, or fail at the deadline."""
    deadline = time.monotonic() + timeout_s
    last: object = None
    while True:
        try:
            result = await check()
        except AssertionError as exc:
            result, last = None, exc
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout_s:.0f} s (last: {last})")
        await asyncio.sleep(0.2)


async def responder_token(admin_api: k8s.ApiClient, *, seconds: int = 3600) -> str:
    """A token for serviceaccount responder/responder from the TokenRequest API."""
    request = k8s.AuthenticationV1TokenRequest(
        spec=k8s.V1TokenRequestSpec(audiences=[], expiration_seconds=seconds)
    )
    response = await k8s.CoreV1Api(admin_api).create_namespaced_service_account_token(
        RESPONDER_SA, RESPONDER_NAMESPACE, request
    )
    token: str = response.status.token
    return token


def shipped_role_binding(namespace: str) -> dict[str, Any]:
    """deploy/k8s/rbac.yaml's RoleBinding, moved to ``namespace`` (how an operator allows one)."""
    for doc in yaml.safe_load_all((MANIFESTS / "rbac.yaml").read_text()):
        if doc and doc["kind"] == "RoleBinding":
            doc["metadata"]["namespace"] = namespace
            return dict(doc)
    raise AssertionError("rbac.yaml ships no RoleBinding")


async def allow_pod_reads(admin: k8s.ApiClient, namespace: str) -> None:
    """The extra Role the local control plane needs (endpoint_source=pods: the API server
    refuses kwok's loopback addresses in EndpointSlices), bound to the responder's SA."""
    rbac = k8s.RbacAuthorizationV1Api(admin)
    await rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "read-pods"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
        },
    )
    await rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "read-pods"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "read-pods",
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": RESPONDER_SA, "namespace": RESPONDER_NAMESPACE}
            ],
        },
    )

    async def allowed() -> bool | None:
        review = await k8s.AuthorizationV1Api(admin).create_subject_access_review(
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {
                    "user": f"system:serviceaccount:{RESPONDER_NAMESPACE}:{RESPONDER_SA}",
                    "groups": ["system:serviceaccounts", "system:authenticated"],
                    "resourceAttributes": {
                        "namespace": namespace,
                        "verb": "list",
                        "resource": "pods",
                    },
                },
            }
        )
        return True if review.status.allowed else None

    await eventually(allowed, timeout_s=30, what="read-pods binding in effect")
