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
