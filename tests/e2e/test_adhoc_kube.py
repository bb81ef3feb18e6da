"""``/responder run deployment.restart`` end to end against the local kube-apiserver.

The worker acts as the responder's ServiceAccount (TokenRequest token, the shipped RBAC
bound in the test's namespace): a dry run goes to the API with ``dryRun=All`` and changes
nothing; ``--apply`` restarts the Deployment; the same command delivered again finds its
key in the ``last-action`` annotation and restarts nothing.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from adhoc_support import Harness, start_harness
from e2e_escalation_support import ALICE
from k8s import conftest as kube_fixtures
from k8s.actions.conftest import deployment_body, rolled_out
from k8s.support import eventually
from kubernetes_asyncio import client as k8s

from responder.actions.base import LAST_ACTION_ANNOTATION
from responder.models.commands import Actor, Command, CommandKind, CommandSource
from responder.models.incidents import AuditEvent
from responder_dev.fakes.slack_api import FakeSlack
from responder_dev.stack.kube import KubeControlPlane, KubeOptions, KubePorts

pytestmark = [pytest.mark.slow, pytest.mark.k8s, pytest.mark.kafka]

admin_api = kube_fixtures.admin_api
namespace = kube_fixtures.namespace
responder_kubeconfig = kube_fixtures.responder_kubeconfig
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


@pytest.fixture(scope="module")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeControlPlane]:
    """A control plane of this module's own, stopped after it."""
    plane = KubeControlPlane(
        tmp_path_factory.mktemp("kube"), KubeOptions(ports=KubePorts.free(), nodes=1)
    )
    try:
        plane.start(lambda _message: None)
        yield plane
    finally:
        plane.stop()


@pytest.fixture
async def harness(
    kafka: Any,
    alertmanager: Any,
    redis_server: Any,
    fake_slack: FakeSlack,
    namespace: str,
    responder_kubeconfig: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Harness]:
    async with start_harness(
        bootstrap=kafka.bootstrap,
        alertmanager_url=str(alertmanager.url),
        redis_url=str(redis_server.url),
        slack=fake_slack,
        tmp_path=tmp_path,
        monkeypatch=monkeypatch,
        namespace=namespace,
        kubeconfig=responder_kubeconfig,
    ) as made:
        yield made


def restarted_at(dep: k8s.V1Deployment) -> str | None:
    annotations = dep.spec.template.metadata.annotations or {}
    return annotations.get(RESTARTED_AT)


async def test_run_deployment_restart(
    harness: Harness,
    admin_api: k8s.ApiClient,
    namespace: str,
) -> None:
    apps = k8s.AppsV1Api(admin_api)
    await apps.create_namespaced_deployment(namespace, deployment_body("web", replicas=1))
    await eventually(lambda: rolled_out(apps, namespace, "web"), what="web rolled out")

    _, rid = await harness.slash(f"run deployment.restart {namespace}/web wait=false")
    text = await harness.reply(rid, timeout_s=90)
    assert text.startswith(f":mag: Dry run of `deployment.restart` on `deployment/{namespace}/web`")
    assert "would restart" in text
    dep = await apps.read_namespaced_deployment("web", namespace)
    assert restarted_at(dep) is None
    assert dep.metadata.generation == 1

    answer, rid = await harness.slash(f"run deployment.restart {namespace}/web wait=false --apply")
    assert "dry run" not in answer
    text = await harness.reply(rid, timeout_s=60)
    assert text.startswith(":white_check_mark: Done: `deployment.restart`"), text
    dep = await apps.read_namespaced_deployment("web", namespace)
    first = restarted_at(dep)
    assert first is not None
    ledger = json.loads(dep.metadata.annotations[LAST_ACTION_ANNOTATION])
    events = await harness.audits(lambda es: sum(e.kind == "adhoc.run" for e in es) >= 2)
    applied = next(e for e in events if e.kind == "adhoc.run" and not e.data["dry_run"])
    assert ledger["key"] == applied.data["key"]

    # The same command again, as a redelivery: the annotation's key makes it a no-op.
    command = Command(
        kind=CommandKind.RUN,
        idempotency_key=applied.data["idempotency_key"],
        actor=Actor(id=ALICE, name="alice"),
        source=CommandSource.SLACK_COMMAND,
        issued_at=datetime.now(UTC),
        action="deployment.restart",
        target=f"{namespace}/web",
        params={"wait": "false"},
        apply=True,
    )
    await harness.publish(command)
    key = applied.data["idempotency_key"]

    def runs_of_key(events: list[AuditEvent]) -> list[AuditEvent]:
        return [e for e in events if e.kind == "adhoc.run" and e.data["idempotency_key"] == key]

    events = await harness.audits(lambda es: len(runs_of_key(es)) >= 2)
    again = runs_of_key(events)[1]  # one key, one partition: in order
    assert again.data["result"]["repeat_of"] is not None
    assert again.data["result"]["changed"] is False
    dep = await apps.read_namespaced_deployment("web", namespace)
    assert restarted_at(dep) == first
