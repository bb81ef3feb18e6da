"""Fixtures for tests against the real local control plane (responder_dev.stack.kube).

One control plane per test session, on free loopback ports in a temporary folder;
a fresh namespace per test; API clients for two identities: the admin (static
token, system:masters) and the responder's ServiceAccount, whose token comes from
the TokenRequest API and whose rights come only from deploy/k8s/rbac.yaml.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.config import new_client_from_config

from responder_dev.stack.kube import KubeControlPlane, KubeOptions, KubePorts

from .support import (
    RESPONDER_NAMESPACE,
    RESPONDER_SA,
    eventually,
    responder_token,
    shipped_role_binding,
)


@pytest.fixture(scope="session")
def control_plane(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[KubeControlPlane]:
    """A ready control plane (etcd, apiserver, controller-manager, scheduler, kwok)."""
    plane = KubeControlPlane(
        tmp_path_factory.mktemp("kube"), KubeOptions(ports=KubePorts.free(), nodes=2)
    )
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")

    def progress(message: str) -> None:
        # The first build on a fresh machine takes minutes: say so past output capture.
        if reporter is not None and "[kube-build" in message:
            reporter.write_line(message)

    try:
        # start() applies deploy/k8s/namespace.yaml and rbac.yaml, as an operator would,
        # with the RoleBinding in namespace musearoo.
        plane.start(progress)
        yield plane
    finally:
        plane.stop()


@pytest.fixture
async def admin_api(control_plane: KubeControlPlane) -> AsyncIterator[k8s.ApiClient]:
    """An API client as the cluster admin."""
    api = await new_client_from_config(config_file=str(control_plane.admin_kubeconfig))
    try:
        yield api
    finally:
        await api.close()


@pytest.fixture
async def namespace(admin_api: k8s.ApiClient) -> AsyncIterator[str]:
    """A namespace of its own for each test, deleted afterwards."""
    name = f"t-{secrets.token_hex(4)}"
    core = k8s.CoreV1Api(admin_api)
    await core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        await core.delete_namespace(name)


@pytest.fixture
async def responder_kubeconfig(
    control_plane: KubeControlPlane, admin_api: k8s.ApiClient, namespace: str
) -> Path:
    """A kubeconfig for the responder's ServiceAccount, allowed in ``namespace`` only."""
    await k8s.RbacAuthorizationV1Api(admin_api).create_namespaced_role_binding(
        namespace, shipped_role_binding(namespace)
    )
    # The authorizer learns of the binding through a watch: wait until it applies, or
    # the test's first call could still get 403.
    user = f"system:serviceaccount:{RESPONDER_NAMESPACE}:{RESPONDER_SA}"

    async def bound() -> bool | None:
        review = await k8s.AuthorizationV1Api(admin_api).create_subject_access_review(
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {
                    "user": user,
                    "groups": ["system:serviceaccounts", "system:authenticated"],
                    "resourceAttributes": {
                        "namespace": namespace,
                        "verb": "patch",
                        "group": "apps",
                        "resource": "deployments",
                    },
                },
            }
        )
        return True if review.status.allowed else None

    await eventually(bound, timeout_s=30, what="RoleBinding in effect")
    token = await responder_token(admin_api)
    return control_plane.kubeconfig_for_token(f"responder-{namespace}", user, token)


@pytest.fixture
async def responder_api(responder_kubeconfig: Path) -> AsyncIterator[k8s.ApiClient]:
    """An API client as serviceaccount responder/responder (TokenRequest token)."""
    api = await new_client_from_config(config_file=str(responder_kubeconfig))
    try:
        yield api
    finally:
        await api.close()
