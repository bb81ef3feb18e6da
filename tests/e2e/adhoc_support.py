"""Helpers of the ``/responder run|silence`` end-to-end tests: ingest, worker, what to observe.

A real ``responder worker`` subprocess (production action catalogue), the real ingest's
Slack endpoint, and the local Slack's ``response_url`` to read the answers from.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaProducer
from e2e_escalation_support import ALICE, slack_headers, slack_settings, slash_body
from e2e_support import WorkerProcess, read_topic
from pydantic import SecretStr

from responder.ingest.app import create_app
from responder.ingest.publisher import KafkaPublisher
from responder.ingest.wiring import ChatOpsWiring, build_chatops
from responder.models.commands import Command
from responder.models.incidents import AuditEvent
from responder.models.topics import ALERTS, AUDIT, COMMANDS, topic_name
from responder.settings import (
    ActionsSettings,
    AdhocSettings,
    IngestSettings,
    KafkaSettings,
    NotifySettings,
    RemediationSettings,
    Settings,
    WorkerSettings,
)
from responder_dev.fakes.slack_api import FakeSlack
from responder_dev.settings import settings_env

Client = TestClient[Any, Any]

KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: unused
  cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}
users:
- name: unused
  user: {token: never-used}
contexts:
- name: unused
  context: {cluster: unused, user: unused}
current-context: unused
"""
"""The catalogue builds a Kubernetes client at start; cache.clear never calls it."""


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s")
        await asyncio.sleep(0.2)  # polling interval, bounded by the deadline


@contextlib.asynccontextmanager
async def ingest_for(settings: Settings) -> AsyncIterator[tuple[Client, ChatOpsWiring]]:
    """The real ingest app (Alertmanager webhook + ChatOps) with its Kafka clients, on loopback."""
    publisher = KafkaPublisher(
        settings.kafka,
        topic_name(settings.kafka.topic_prefix, ALERTS),
        retry_after_s=settings.ingest.retry_after_s,
    )
    wiring = build_chatops(settings)
    assert wiring is not None
    app = create_app(settings.ingest, publisher)
    wiring.mount(app)
    await publisher.start()
    try:
        async with TestClient(TestServer(app, host="127.0.0.1")) as ingest:
            assert await wiring.wait_connected(30), "ingest could not reach the broker"
            yield ingest, wiring
    finally:
        await publisher.stop()


class Harness:
    def __init__(self, ingest: Client, slack: FakeSlack, settings: Settings) -> None:
        self.ingest, self.slack, self.settings = ingest, slack, settings

    async def slash(self, text: str) -> tuple[str, str]:
        """Send ``/responder TEXT`` as Alice; (the immediate answer, the response_url id)."""
        url = self.slack.response_url()
        body = slash_body(text, user_id=ALICE, trigger_id=uuid.uuid4().hex, response_url=url)
        response = await self.ingest.post(
            "/v1/slack/commands", data=body, headers=slack_headers(body)
        )
        assert response.status == 200, await response.text()
        return (await response.json())["text"], url.rsplit("/", 1)[1]

    async def reply(self, rid: str, timeout_s: float = 60.0) -> str:
        async def answered() -> bool:
            return bool(self.slack.replies[rid])

        await eventually(answered, timeout_s)
        return str(self.slack.replies[rid][0].body["text"])

    async def publish(self, command: Command) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.settings.kafka.bootstrap)
        await producer.start()
        try:
            topic = topic_name(self.settings.kafka.topic_prefix, COMMANDS)
            await producer.send_and_wait(topic, command.model_dump_json().encode(), key=b"")
        finally:
            await producer.stop()

    async def audits(self, until: Callable[[list[AuditEvent]], bool]) -> list[AuditEvent]:
        def parsed(records: list[tuple[bytes, bytes, int]]) -> list[AuditEvent]:
            return [AuditEvent.model_validate_json(v) for _, v, _ in records]

        records = await read_topic(
            self.settings.kafka.bootstrap,
            topic_name(self.settings.kafka.topic_prefix, AUDIT),
            until=lambda r: until(parsed(r)),
            timeout_s=30,
        )
        return parsed(records)


@contextlib.asynccontextmanager
async def start_harness(
    *,
    bootstrap: str,
    alertmanager_url: str,
    redis_url: str,
    slack: FakeSlack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    namespace: str,
    kubeconfig: Path | None = None,
) -> AsyncIterator[Harness]:
    """Worker and ingest for one test; ``kubeconfig`` None: a client that is never called."""
    run = uuid.uuid4().hex[:10]
    (tmp_path / "runbooks").mkdir()
    settings = Settings(
        kafka=KafkaSettings(
            bootstrap=bootstrap, topic_prefix=f"a{run}", partitions=2, request_timeout_s=5.0
        ),
        ingest=IngestSettings(bearer_token=SecretStr("adhoc-e2e-token")),
        worker=WorkerSettings(
            app_id=f"adhoc-e2e-{run}",
            store="rocksdb://",
            data_dir=str(tmp_path / "worker-data"),
            web_enabled=False,
            session_timeout_s=6.0,
        ),
        remediation=RemediationSettings(runbooks_dir=str(tmp_path / "runbooks")),
        actions=ActionsSettings(
            allowed_namespaces=[namespace],
            redis_urls={"default": redis_url},
            call_timeout_s=5.0,
            retry_base_s=0.05,
            retry_cap_s=0.5,
            rollout_poll_s=0.2,
        ),
        slack=slack_settings(slack.url),
        notify=NotifySettings(retry_budget_s=20.0, retry_max_delay_s=2.0),
        adhoc=AdhocSettings(alertmanager_url=alertmanager_url, run_timeout_s=20.0),
    )
    if kubeconfig is None:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    for name, value in (
        settings_env(settings, ("slack", "pagerduty", "notify", "actions", "adhoc", "remediation"))
    ).items():
        monkeypatch.setenv(name, value)  # the worker subprocess reads its settings from these
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        async with ingest_for(settings) as (ingest, _wiring):
            yield Harness(ingest, slack, settings)
    finally:
        await asyncio.to_thread(worker.stop, timeout_s=30)
        print(f"--- worker log\n{worker.log_tail()}")
