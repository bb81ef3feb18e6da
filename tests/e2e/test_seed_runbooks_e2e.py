"""The four seed runbooks end to end, dry-run off: each runbook's example alert goes through
the real ingest app onto Kafka, a real ``responder worker`` (the production action catalogue,
KUBECONFIG of the responder's ServiceAccount) walks its steps, and the test checks, on the
real objects, that every step's effect happened and in the runbook's order: Redis keys
deleted, model servers and the WebSocket hub called on the pods' addresses, Deployments
restarted and scaled, the HTTPRoute and the Service moved once a person approved, with the
audit trail of every action on ``responder.audit``.

The shipped runbooks are used as they are except for their waits (see ``seed_support``).
A PromQL verification cannot pass here (the test Prometheus has no MuseAroo series), so it
fails at the end of its short window and the incident goes on to its next step; a last step
that verifies on the alert resolving is satisfied by the resolved webhook Alertmanager sends.
The example alerts are sent with their ``namespace`` label set to the test's namespace,
the only one the worker may act in. The last test serves the health score ai_model_failure
verifies to Prometheus, and checks that the verification then holds after the first step.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestClient, TestServer
from k8s import conftest as kube_fixtures
from k8s.actions.conftest import deployment_body, rolled_out
from k8s.support import allow_pod_reads, eventually
from kubernetes_asyncio import client as k8s
from pydantic import SecretStr
from seed_support import (
    PROBE_PATH,
    AuditTail,
    HealthServer,
    PodServers,
    Worker,
    cli,
    example_webhook,
    first,
    resolved,
    shortened_copy,
    worker_env,
)

from responder.ingest.app import create_app
from responder.ingest.keys import load_store, runbook_keyer
from responder.ingest.publisher import KafkaPublisher
from responder.models.incidents import AuditEvent
from responder.models.topics import ALERTS, topic_name
from responder.settings import (
    ActionsSettings,
    IngestSettings,
    KafkaSettings,
    RemediationSettings,
    Settings,
    WorkerSettings,
)
from responder_dev.stack.kafka import create_topics_async
from responder_dev.stack.kube import KubeControlPlane, KubeOptions, KubePorts

pytestmark = [pytest.mark.slow, pytest.mark.k8s, pytest.mark.kafka]

# The control plane's per-test fixtures (admin client, fresh namespace, the responder's
# RoleBinding and kubeconfig) are those of tests/k8s, over this module's own control plane.
admin_api = kube_fixtures.admin_api
namespace = kube_fixtures.namespace
responder_kubeconfig = kube_fixtures.responder_kubeconfig

TOKEN = "seed-e2e-token"
SEED_PORT = 8080  # the port the seed runbooks' model.reload / connections.reset call
REDIS_DB = 11
FIRST_EVENT_S = 90.0  # worker start-up (group join, topic creation) plus the first step
STEP_S = 30.0
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
TOPICS = (
    "alerts",
    "incidents",
    "audit",
    "remediation",
    "commands",
    "remediation-routes",
    "notifications",
)
ACTION_KINDS = {"action_started", "action_finished", "awaiting_approval", "command", "halted"}


@pytest.fixture(scope="module")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeControlPlane]:
    """A control plane of this module's own (kwok pods on 127.64.x.y), stopped after it."""
    plane = KubeControlPlane(
        tmp_path_factory.mktemp("kube"), KubeOptions(ports=KubePorts.free(), nodes=2)
    )
    try:
        plane.start(lambda _message: None)
        yield plane
    finally:
        plane.stop()


class Seed:
    """One runbook's run: the namespace's objects, the worker, ingest, and what to observe."""

    def __init__(
        self, admin: k8s.ApiClient, namespace: str, settings: Settings, health: HealthServer
    ) -> None:
        self.admin = admin
        self.namespace = namespace
        self.settings = settings
        self.apps = k8s.AppsV1Api(admin)
        self.core = k8s.CoreV1Api(admin)
        self.custom = k8s.CustomObjectsApi(admin)
        self.pods = PodServers()
        self.health = health  # the http verification's base URL
        self.audit = AuditTail(settings)
        self.env: dict[str, str] = {}
        self.ingest: TestClient[Any, Any] | None = None
        self.incident = ""

    # --- the namespace's workload, created as an operator would ---------------------------

    async def workload(self, name: str, replicas: int = 2) -> list[str]:
        """Deployment + Service ``name``; HTTP servers on its pods' addresses; the addresses."""
        await self.apps.create_namespaced_deployment(
            self.namespace, deployment_body(name, replicas)
        )
        await eventually(
            lambda: rolled_out(self.apps, self.namespace, name), what=f"{name} rolled out"
        )
        await self.core.create_namespaced_service(
            self.namespace,
            {
                "metadata": {"name": name},
                "spec": {"selector": {"name": name}, "ports": [{"port": SEED_PORT}]},
            },
        )
        pods = await self.core.list_namespaced_pod(self.namespace, label_selector=f"name={name}")
        addresses = sorted(p.status.pod_ip for p in pods.items)
        assert len(addresses) == replicas
        assert all(a.startswith("127.64.") for a in addresses)
        await self.pods.serve(addresses, SEED_PORT)
        return addresses

    async def deployment(self, name: str) -> Any:
        return await self.apps.read_namespaced_deployment(name, self.namespace)

    async def restarted_at(self, name: str) -> str | None:
        annotations = (await self.deployment(name)).spec.template.metadata.annotations or {}
        value: str | None = annotations.get(RESTARTED_AT)
        return value

    # --- the pipeline -------------------------------------------------------------------

    async def post(self, body: dict[str, Any]) -> None:
        assert self.ingest is not None
        response = await self.ingest.post(
            "/v1/alertmanager", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert response.status == 200, await response.text()

    async def fire(self, runbook_id: str) -> dict[str, Any]:
        """The runbook's example alert, through ingest; the incident it opened."""
        body = example_webhook(runbook_id, self.namespace)
        await self.post(body)
        opened = await self.audit.wait(
            first("opened", runbook=runbook_id), timeout_s=FIRST_EVENT_S, what="incident opened"
        )
        self.incident = opened.incident_id
        return body

    async def finished(self, step: int) -> AuditEvent:
        event: AuditEvent = await self.audit.wait(
            lambda events: next(
                (
                    e
                    for e in events
                    if e.incident_id == self.incident
                    and e.kind == "remediation.action_finished"
                    and e.data["step"] == step
                ),
                None,
            ),
            timeout_s=STEP_S,
            what=f"step {step} finished",
        )
        assert event.data["ok"], event.data
        assert event.data["result"]["dry_run"] is False, event.data
        assert event.data["result"]["changed"] is True, event.data
        return event

    async def waits_for_approval(self, step: int) -> None:
        await self.audit.wait(
            first("awaiting_approval", step=step), timeout_s=STEP_S, what=f"step {step} gated"
        )

    async def approve(self, step: int) -> None:
        out = await cli(
            self.env,
            "incidents",
            "approve",
            self.incident,
            "--step",
            str(step),
            "--actor",
            "e2e-sre",
            "--reason",
            "seed e2e",
        )
        assert f"approve sent for {self.incident}" in out

    async def ended(self, kind: str, **data: Any) -> AuditEvent:
        event: AuditEvent = await self.audit.wait(
            first(kind, **data), timeout_s=STEP_S, what=f"{kind} {data}"
        )
        return event

    def trail(self) -> list[tuple[str, Any]]:
        """The incident's step-related audit events, in the order they were written."""
        return [(k, s) for k, s in self.audit.kinds(self.incident) if k in ACTION_KINDS]

    def assert_actions_live(self, expected: list[str]) -> None:
        """Each action started and finished once, in order, none in dry-run."""
        started = [
            e
            for e in self.audit.events
            if e.incident_id == self.incident and e.kind == "remediation.action_started"
        ]
        assert [e.data["action"] for e in started] == expected
        assert [e.data["step"] for e in started] == sorted(e.data["step"] for e in started)
        assert all(e.data["dry_run"] is False and e.data["attempt"] == 1 for e in started)


@pytest.fixture
async def cache(redis_server: Any) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(f"{str(redis_server.url).rsplit('/', 1)[0]}/{REDIS_DB}")
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


@pytest.fixture
async def seed(
    kafka: Any,
    prometheus: Any,
    redis_server: Any,
    cache: aioredis.Redis,
    admin_api: k8s.ApiClient,
    namespace: str,
    responder_kubeconfig: Path,
    tmp_path: Path,
) -> AsyncIterator[Seed]:
    """Everything but the alert: RBAC in the namespace, the worker running, ingest serving."""
    await allow_pod_reads(admin_api, namespace)
    run = uuid.uuid4().hex[:10]
    redis_url = f"{str(redis_server.url).rsplit('/', 1)[0]}/{REDIS_DB}"
    health = HealthServer()
    await health.start()
    settings = Settings(
        kafka=KafkaSettings(
            bootstrap=kafka.bootstrap, topic_prefix=f"s{run}", partitions=4, request_timeout_s=5.0
        ),
        ingest=IngestSettings(bearer_token=SecretStr(TOKEN)),
        worker=WorkerSettings(
            app_id=f"seed-e2e-{run}",
            store="rocksdb://",
            data_dir=str(tmp_path / "worker-data"),
            web_enabled=False,
            session_timeout_s=6.0,
        ),
        remediation=RemediationSettings(
            runbooks_dir=str(shortened_copy(tmp_path / "runbooks")),
            prometheus_url=str(prometheus.url),
            timer_interval_s=0.2,
            rescan_interval_s=1.0,
            resume_grace_s=2.0,
        ),
        actions=ActionsSettings(
            allowed_namespaces=[namespace],
            endpoint_source="pods",
            redis_urls={"default": redis_url},
            http_base_urls={"realtime-gateway": health.url},
            call_timeout_s=10.0,
            retry_base_s=0.05,
            retry_cap_s=0.5,
            rollout_poll_s=0.2,
        ),
    )
    made = Seed(admin_api, namespace, settings, health)
    made.env = worker_env(settings, responder_kubeconfig)
    publisher = KafkaPublisher(
        settings.kafka,
        topic_name(settings.kafka.topic_prefix, ALERTS),
        retry_after_s=settings.ingest.retry_after_s,
    )
    app = create_app(
        settings.ingest,
        publisher,
        keyer=runbook_keyer(load_store(settings.remediation.runbooks_dir)),
    )
    worker: Worker | None = None
    try:
        await create_topics_async(
            kafka.bootstrap, {f"{settings.kafka.topic_prefix}.{n}": 4 for n in TOPICS}
        )
        await made.audit.start()
        worker = Worker(made.env, tmp_path / "worker.log")
        await publisher.start()
        assert await publisher.wait_connected(30), "ingest could not reach the broker"
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            made.ingest = client
            yield made
    finally:
        await publisher.stop()
        if worker is not None:
            await asyncio.to_thread(worker.stop)
            print(f"--- worker log\n{worker.log_tail()}")  # shown when the test fails
        await made.audit.stop()
        await made.pods.close()
        await health.close()


async def prometheus_queries(prometheus: Any) -> float:
    """Instant queries Prometheus has answered: the verifications' traffic."""
    async with ClientSession() as http, http.get(f"{prometheus.url}/metrics") as response:
        text = await response.text()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("prometheus_http_requests_total{") and 'handler="/api/v1/query"' in line
    )


async def test_high_generation_latency(seed: Seed, cache: aioredis.Redis, prometheus: Any) -> None:
    engine = "melody-engine"  # the example alert's engine label, templated by the runbook
    pods = await seed.workload(engine, replicas=11)  # doubling would give 22: over the cap
    await seed.custom.create_namespaced_custom_object(
        "gateway.networking.k8s.io",
        "v1",
        seed.namespace,
        "httproutes",
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "generation-api"},
            "spec": {
                "rules": [
                    {
                        "backendRefs": [
                            {"name": "generation-primary", "port": 80, "weight": 100},
                            {"name": "generation-backup", "port": 80, "weight": 0},
                        ]
                    }
                ]
            },
        },
    )

    async def weights() -> list[int]:
        route = await seed.custom.get_namespaced_custom_object(
            "gateway.networking.k8s.io", "v1", seed.namespace, "httproutes", "generation-api"
        )
        return [ref["weight"] for ref in route["spec"]["rules"][0]["backendRefs"]]

    await cache.mset({f"generation:{i}": "stale" for i in range(300)} | {"session:42": "keep"})
    queries_before = await prometheus_queries(prometheus)
    body = await seed.fire("high_generation_latency")

    await seed.finished(0)  # clear-cache
    assert await cache.keys("generation:*") == []
    assert await cache.get("session:42") == b"keep"
    assert seed.pods.calls == []  # model.reload has not run yet

    await seed.finished(1)  # reload-models: every ready pod of the Service, once
    assert sorted((host, path) for host, path, _ in seed.pods.to("/admin/models/reload")) == [
        (pod, "/admin/models/reload") for pod in pods
    ]
    assert (await seed.deployment(engine)).spec.replicas == 11  # not scaled yet

    # Its verification: a test generation on every pod, still unsure (confidence 0.42).
    probed = await seed.ended("verify_failed", step=1)
    assert probed.data["ok"] is False
    measured = probed.data["measured"]
    assert measured["verdict"] == "quality_degraded"
    assert (measured["success"], measured["confidence"]) == (True, 0.42)
    assert measured["latency_ms"] > 0
    assert {urlsplit(p["url"]).hostname for p in measured["probes"]} == set(pods)
    probes = seed.pods.to(PROBE_PATH)
    assert {host for host, _, _ in probes} == set(pods)  # kwok's loopback pod addresses
    assert all(body == {"complexity": 0.5, "style": "test"} for _, _, body in probes)

    scaled = await seed.finished(2)  # scale-up: doubled, capped at the runbook's max of 20
    assert (await seed.deployment(engine)).spec.replicas == 20
    assert scaled.data["result"]["before"] == {"replicas": 11}
    assert scaled.data["result"]["after"] == {"replicas": 20}

    await seed.waits_for_approval(3)  # failover moves every user: a person decides
    assert await weights() == [100, 0]
    await seed.approve(3)
    await seed.finished(3)
    assert await weights() == [0, 100]

    await seed.post(resolved(body))  # its verification: the alert resolving
    await seed.ended("resolved", how="alert_resolved")
    assert seed.trail() == [
        ("action_started", 0),
        ("action_finished", 0),
        ("action_started", 1),
        ("action_finished", 1),
        ("action_started", 2),
        ("action_finished", 2),
        ("awaiting_approval", 3),
        ("command", 3),
        ("action_started", 3),
        ("action_finished", 3),
    ]
    seed.assert_actions_live(["cache.clear", "model.reload", "deployment.scale", "region.failover"])
    assert first("escalated")(seed.audit.events) is None  # fixed before anyone was paged
    # The two PromQL verifications asked the test Prometheus (and found no series).
    assert await prometheus_queries(prometheus) >= queries_before + 2


async def test_websocket_connection_issues(seed: Seed) -> None:
    hub = "ws-hub"  # the example alert's service label
    pods = await seed.workload(hub, replicas=2)
    body = await seed.fire("websocket_connection_issues")

    await seed.finished(0)  # reset-connections: the hub's drain endpoint on every pod
    assert sorted((host, path) for host, path, _ in seed.pods.calls) == [
        (pod, "/admin/connections/drain") for pod in pods
    ]
    assert await seed.restarted_at(hub) is None  # not restarted yet

    await seed.finished(1)  # rolling-restart, waited for
    assert await seed.restarted_at(hub) is not None
    assert (await seed.deployment(hub)).spec.replicas == 2  # not scaled yet

    await seed.finished(2)  # scale-up: 2 x 1.5 = 3
    assert (await seed.deployment(hub)).spec.replicas == 3
    # The restart's verification polled the gateway's health endpoint (503: not healthy).
    assert seed.health.hits
    assert set(seed.health.hits) == {"/healthz"}
    await eventually(lambda: rolled_out(seed.apps, seed.namespace, hub), what="ws-hub scaled out")

    await seed.post(resolved(body))
    await seed.ended("resolved", how="alert_resolved")
    assert seed.trail() == [
        ("action_started", 0),
        ("action_finished", 0),
        ("action_started", 1),
        ("action_finished", 1),
        ("action_started", 2),
        ("action_finished", 2),
    ]
    seed.assert_actions_live(["connections.reset", "deployment.restart", "deployment.scale"])
    assert first("escalated")(seed.audit.events) is None


async def test_database_performance(seed: Seed) -> None:
    for name, selector in [
        ("catalog-api", {"app.kubernetes.io/name": "catalog-api"}),
        ("musearoo-db-read", {"app.kubernetes.io/name": "musearoo-db", "role": "primary"}),
    ]:
        await seed.core.create_namespaced_service(
            seed.namespace,
            {"metadata": {"name": name}, "spec": {"selector": selector, "ports": [{"port": 5432}]}},
        )

    async def read_selector() -> dict[str, str]:
        selector: dict[str, str] = (
            await seed.core.read_namespaced_service("musearoo-db-read", seed.namespace)
        ).spec.selector
        return selector

    await seed.fire("database_performance")
    # No automatic recovery: the DBA is paged at once and the one remediation waits.
    await seed.waits_for_approval(0)
    kinds = [k for k, _ in seed.audit.kinds(seed.incident)]
    assert kinds.index("escalated") < kinds.index("awaiting_approval"), kinds
    escalated = first("escalated", level=1)(seed.audit.events)
    assert escalated is not None
    assert escalated.data["notify"] == "slack"  # the DBA channel
    assert escalated.data["lateness_s"] < 5.0
    # Its second level (PagerDuty, the DBA rota) has no wait either; the third waits 15 min.
    paged = await seed.ended("escalated", level=2)
    assert paged.data["notify"] == "pagerduty"
    assert (paged.at - escalated.at).total_seconds() < 5.0
    assert "action_started" not in kinds
    assert await read_selector() == {"app.kubernetes.io/name": "musearoo-db", "role": "primary"}

    await seed.approve(0)
    await seed.finished(0)
    assert await read_selector() == {"app.kubernetes.io/name": "musearoo-db", "role": "replica"}
    # Its PromQL verification fails here: automation is over, people have it.
    await seed.ended("halted")
    assert seed.trail() == [
        ("awaiting_approval", 0),
        ("command", 0),
        ("action_started", 0),
        ("action_finished", 0),
        ("halted", None),
    ]
    seed.assert_actions_live(["region.failover"])
    assert first("escalated", level=3)(seed.audit.events) is None


async def test_ai_model_failure(seed: Seed) -> None:
    engine = "harmony-engine"  # the example alert's engine label
    pods = await seed.workload(engine, replicas=2)
    await seed.fire("ai_model_failure")

    await seed.finished(0)  # reload-models
    assert sorted((h, p, b) for h, p, b in seed.pods.calls) == [
        (pod, "/admin/models/reload", {}) for pod in pods
    ]
    await seed.finished(1)  # switch-to-backup-models: the same endpoint, the backup variant
    assert sorted((h, p, b) for h, p, b in seed.pods.calls[2:]) == [
        (pod, "/admin/models/reload", {"variant": "backup"}) for pod in pods
    ]
    assert await seed.restarted_at(engine) is None

    await seed.finished(2)  # restart, waited for
    assert await seed.restarted_at(engine) is not None
    assert await rolled_out(seed.apps, seed.namespace, engine) is not None

    # Every step's verification failed: steps exhausted, escalated at once (not at 180 s).
    await seed.ended("halted")
    escalated = await seed.ended("escalated", level=1)
    assert escalated.incident_id == seed.incident
    assert escalated.data["reason"] == "steps exhausted"
    assert seed.trail() == [
        ("action_started", 0),
        ("action_finished", 0),
        ("action_started", 1),
        ("action_finished", 1),
        ("action_started", 2),
        ("action_finished", 2),
        ("halted", None),
    ]
    seed.assert_actions_live(["model.reload", "model.reload", "deployment.restart"])


@pytest.fixture
async def healthy_engine(prometheus: Any, namespace: str) -> AsyncIterator[str]:
    """Prometheus scraping an engine whose health score is back above 0.7: the metric the
    ai_model_failure runbook verifies, served on loopback. Yields the engine label."""
    engine = "harmony"  # the example alert's engine label

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(
            text=f'musearoo_engine_health_score{{namespace="{namespace}",engine="{engine}"}} 0.93\n',
            content_type="text/plain",
        )

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    await asyncio.to_thread(
        prometheus.configure, scrape_targets={"musearoo-engine": [f"127.0.0.1:{port}"]}
    )
    query = (
        f'min(musearoo_engine_health_score{{namespace="{namespace}", engine="{engine}"}}) >= 0.7'
    )

    async def scraped() -> bool | None:
        async with (
            ClientSession() as http,
            http.get(f"{prometheus.url}/api/v1/query", params={"query": query}) as response,
        ):
            body = await response.json()
        return True if body["data"]["result"] else None

    try:
        await eventually(scraped, timeout_s=30, what="health score scraped")
        yield engine
    finally:
        await asyncio.to_thread(prometheus.configure, scrape_targets={})
        await runner.cleanup()


async def test_ai_model_failure_verified_by_prometheus(seed: Seed, healthy_engine: str) -> None:
    """The happy path: the engine's health score is back above 0.7 once the models are
    reloaded, so the first step's PromQL verification holds and the incident resolves.

    (Found failing: the effect runner sent Prometheus ``timeout=5.0s``, which it refuses
    with 400, so no PromQL verification could pass whatever the metrics said.)"""
    engine = f"{healthy_engine}-engine"
    pods = await seed.workload(engine, replicas=2)
    await seed.fire("ai_model_failure")
    await seed.finished(0)
    assert sorted((h, p) for h, p, _ in seed.pods.calls) == [
        (pod, "/admin/models/reload") for pod in pods
    ]
    # Verified within the step's window (4 s here), or the incident moved on to step 1.
    outcome = await seed.audit.wait(
        lambda events: next(
            (
                e
                for e in events
                if e.incident_id == seed.incident
                and (
                    e.kind == "remediation.resolved"
                    or (e.kind == "remediation.action_started" and e.data["step"] == 1)
                )
            ),
            None,
        ),
        timeout_s=STEP_S,
        what="verified or next step",
    )
    assert outcome.kind == "remediation.resolved", outcome
    assert outcome.data["how"] == "verified"
    seed.assert_actions_live(["model.reload"])
