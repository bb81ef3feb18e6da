"""``/responder run`` and ``/responder silence`` end to end: signed Slack command to the answer.

The real ingest (Slack signature, authorization, publish on ``responder.commands``), a real
``responder worker`` subprocess with the production action catalogue (``cache.clear``
against the session's real Redis; the Kubernetes client is configured but never called),
the session's real Alertmanager for silences, and the local Slack of ``tests/fakes`` whose
``response_url`` receives the answers. A redelivered command is published straight on the
topic, as Kafka would deliver it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaProducer
from e2e_escalation_support import ALICE, integration_env, slack_headers, slack_settings, slash_body
from e2e_support import WorkerProcess, read_topic
from fakes.slack_api import FakeSlack
from pydantic import SecretStr

from responder.ingest.app import create_app
from responder.ingest.publisher import KafkaAlertPublisher
from responder.ingest.wiring import build_chatops
from responder.integrations.alertmanager.silences import silence_ref
from responder.models.commands import Actor, Command, CommandKind, CommandSource
from responder.models.incidents import AuditEvent
from responder.models.topics import ALERTS, AUDIT, topic_name
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

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

Client = TestClient[Any, Any]
NAMESPACE = "musearoo"
REDIS_DB = 11
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


def env_of(settings: Settings, groups: tuple[str, ...]) -> dict[str, str]:
    env: dict[str, str] = {}
    for group in groups:
        for name, value in getattr(settings, group).model_dump(mode="json").items():
            text = json.dumps(value) if isinstance(value, dict | list) else str(value)
            env[f"RESPONDER_{group.upper()}__{name.upper()}"] = (
                str(value).lower() if isinstance(value, bool) else text
            )
    return env


@contextlib.asynccontextmanager
async def ingest_for(settings: Settings) -> AsyncIterator[Client]:
    publisher = KafkaAlertPublisher(
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
            yield ingest
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
            topic = topic_name(self.settings.kafka.topic_prefix, "commands")
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


@pytest.fixture
async def cache(redis_server: Any) -> AsyncIterator[tuple[aioredis.Redis, str]]:
    url = f"{str(redis_server.url).rsplit('/', 1)[0]}/{REDIS_DB}"
    client = aioredis.Redis.from_url(url)
    await client.flushdb()
    yield client, url
    await client.flushdb()
    await client.aclose()


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    from e2e_escalation_support import BOT_TOKEN

    slack = FakeSlack(token=BOT_TOKEN)
    await slack.start()
    yield slack
    await slack.stop()


@pytest.fixture
async def harness(
    kafka: Any,
    alertmanager: Any,
    cache: tuple[aioredis.Redis, str],
    fake_slack: FakeSlack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Harness]:
    run = uuid.uuid4().hex[:10]
    (tmp_path / "runbooks").mkdir()
    settings = Settings(
        kafka=KafkaSettings(
            bootstrap=kafka.bootstrap, topic_prefix=f"a{run}", partitions=2, request_timeout_s=5.0
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
            allowed_namespaces=[NAMESPACE],
            redis_urls={"default": cache[1]},
            call_timeout_s=5.0,
            retry_base_s=0.05,
            retry_cap_s=0.5,
        ),
        slack=slack_settings(fake_slack.url),
        notify=NotifySettings(retry_budget_s=20.0, retry_max_delay_s=2.0),
        adhoc=AdhocSettings(alertmanager_url=str(alertmanager.url), run_timeout_s=20.0),
    )
    (tmp_path / "kubeconfig").write_text(KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    for name, value in (
        integration_env(settings) | env_of(settings, ("actions", "adhoc", "remediation"))
    ).items():
        monkeypatch.setenv(name, value)  # the worker subprocess reads its settings from these
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        async with ingest_for(settings) as ingest:
            yield Harness(ingest, fake_slack, settings)
    finally:
        await asyncio.to_thread(worker.stop, timeout_s=30)
        print(f"--- worker log\n{worker.log_tail()}")


async def test_run_cache_clear_dry_run_then_apply(
    harness: Harness, cache: tuple[aioredis.Redis, str]
) -> None:
    redis = cache[0]
    keys = [f"adhoc:gen:{i}" for i in range(5)]
    await redis.mset(dict.fromkeys(keys, "v") | {"keep:1": "v"})

    answer, rid = await harness.slash(f"run cache.clear {NAMESPACE}/api pattern=adhoc:gen:*")
    assert "accepted (dry run)" in answer
    text = await harness.reply(rid)
    assert text.startswith(":mag: Dry run of `cache.clear`"), text
    assert "would delete 5 keys" in text
    assert all(f"`{key}`" in text for key in keys), text
    assert "add `--apply`" in text
    assert await redis.exists(*keys) == 5  # nothing deleted

    answer, rid = await harness.slash(
        f"run cache.clear {NAMESPACE}/api pattern=adhoc:gen:* --apply"
    )
    assert "accepted" in answer
    assert "dry run" not in answer
    text = await harness.reply(rid)
    assert text.startswith(":white_check_mark: Done: `cache.clear`"), text
    assert "deleted 5 keys" in text
    assert await redis.exists(*keys) == 0
    assert await redis.exists("keep:1") == 1

    events = await harness.audits(lambda es: sum(e.kind == "adhoc.run" for e in es) >= 2)
    runs = [e for e in events if e.kind == "adhoc.run"]
    assert [e.data["dry_run"] for e in runs] == [True, False]
    assert [e.data["actor"] for e in runs] == [ALICE, ALICE]


async def test_redelivered_apply_runs_once(
    harness: Harness, cache: tuple[aioredis.Redis, str]
) -> None:
    redis = cache[0]
    command = Command(
        kind=CommandKind.RUN,
        idempotency_key=f"slack:T0001:{uuid.uuid4().hex}",
        actor=Actor(id=ALICE, name="alice"),
        source=CommandSource.SLACK_COMMAND,
        issued_at=datetime.now(UTC),
        action="cache.clear",
        target=f"{NAMESPACE}/api",
        params={"pattern": "redeliver:*"},
        apply=True,
        reply_to=harness.slack.response_url(),
    )
    await redis.mset({"redeliver:1": "v", "redeliver:2": "v"})
    await harness.publish(command)
    events = await harness.audits(lambda es: any(e.kind == "adhoc.run" for e in es))
    assert next(e for e in events if e.kind == "adhoc.run").data["result"]["changed"] is True
    await redis.set("redeliver:3", "v")  # would be deleted if the command ran again
    await harness.publish(command)

    events = await harness.audits(lambda es: sum(e.kind == "adhoc.run" for e in es) >= 2)
    second = [e for e in events if e.kind == "adhoc.run"][1]
    assert second.data["result"]["repeat_of"] is not None
    assert second.data["result"]["changed"] is False
    assert await redis.exists("redeliver:3") == 1
    rid = str(command.reply_to).rsplit("/", 1)[1]
    assert "deleted 2 keys" in await harness.reply(rid)


async def test_run_refusals_are_answered(harness: Harness) -> None:
    # Ingest knows the catalogue: an unknown action is refused at once, nothing published.
    answer, _ = await harness.slash(f"run cache.nuke {NAMESPACE}/api")
    assert "unknown action `cache.nuke`" in answer

    # Parameters are checked by the worker against the action's own model.
    answer, rid = await harness.slash(f"run cache.clear {NAMESPACE}/api pattern=x:* bogus=1")
    assert "accepted" in answer
    text = await harness.reply(rid)
    assert text.startswith(":x: Bad parameters for `cache.clear`"), text
    assert "bogus" in text

    # The actions' guards enforce the namespace allow-list.
    answer, rid = await harness.slash("run cache.clear kube-system/api pattern=x:*")
    text = await harness.reply(rid)
    assert text.startswith(":x: `cache.clear` on `deployment/kube-system/api` failed"), text
    assert "kube-system" in text

    # A well-formed action name the worker's catalogue lacks (an older ingest, say).
    command = Command(
        kind=CommandKind.RUN,
        idempotency_key=f"cli:{uuid.uuid4().hex}",
        actor=Actor(id=ALICE),
        source=CommandSource.CLI,
        issued_at=datetime.now(UTC),
        action="cache.nuke",
        target=f"{NAMESPACE}/api",
        reply_to=harness.slack.response_url(),
    )
    await harness.publish(command)
    text = await harness.reply(str(command.reply_to).rsplit("/", 1)[1])
    assert text.startswith(":x: Unknown action `cache.nuke`. Known actions:"), text
    assert "`cache.clear`" in text


async def silences(alertmanager: Any) -> list[dict[str, Any]]:
    async with (
        aiohttp.ClientSession(trust_env=False) as http,
        http.get(f"{alertmanager.url}/api/v2/silences") as response,
    ):
        assert response.status == 200
        body: list[dict[str, Any]] = await response.json()
        return body


async def test_silence_created_in_alertmanager(harness: Harness, alertmanager: Any) -> None:
    alertname = f"Adhoc{uuid.uuid4().hex[:8]}"
    before = datetime.now(UTC)
    answer, rid = await harness.slash(f"silence alertname={alertname},namespace={NAMESPACE} 30m")
    assert "`silence` accepted" in answer
    text = await harness.reply(rid)
    assert text.startswith(":mute: Silenced"), text
    silence_id = text.rsplit("silence id `", 1)[1].split("`", 1)[0]

    found = [s for s in await silences(alertmanager) if s["id"] == silence_id]
    assert len(found) == 1, found
    silence = found[0]
    assert silence["status"]["state"] == "active"
    assert sorted(silence["matchers"], key=lambda m: m["name"]) == [
        {"name": "alertname", "value": alertname, "isRegex": False, "isEqual": True},
        {"name": "namespace", "value": NAMESPACE, "isRegex": False, "isEqual": True},
    ]
    starts = datetime.fromisoformat(silence["startsAt"].replace("Z", "+00:00"))
    ends = datetime.fromisoformat(silence["endsAt"].replace("Z", "+00:00"))
    assert before.replace(microsecond=0) <= starts.replace(microsecond=0)
    assert abs((ends - starts).total_seconds() - 1800) < 2
    assert ALICE in silence["createdBy"]
    assert "MuseAroo Responder" in silence["comment"]

    # Delivered again (same idempotency key): the same silence, not a second one.
    audits = await harness.audits(lambda es: any(e.kind == "adhoc.silence" for e in es))
    key = next(e for e in audits if e.kind == "adhoc.silence").data["idempotency_key"]
    command = Command(
        kind=CommandKind.SILENCE,
        idempotency_key=key,
        actor=Actor(id=ALICE, name="alice"),
        source=CommandSource.SLACK_COMMAND,
        issued_at=datetime.now(UTC),
        matchers={"alertname": alertname, "namespace": NAMESPACE},
        duration_s=1800,
    )
    await harness.publish(command)
    audits = await harness.audits(lambda es: sum(e.kind == "adhoc.silence" for e in es) >= 2)
    again = [e for e in audits if e.kind == "adhoc.silence"][1]
    assert again.data["repeat"] is True
    assert again.data["silence_id"] == silence_id
    ref = silence_ref(key)
    assert [s["id"] for s in await silences(alertmanager) if ref in s["comment"]] == [silence_id]


async def test_bad_matcher_is_refused(harness: Harness) -> None:
    for text in ("alertname!=Foo 30m", "alertname=~Fo.* 30m", "alert-name=Foo 30m"):
        answer, rid = await harness.slash(f"silence {text}")
        assert answer.startswith(":warning:") or "not a valid" in answer, answer
        assert "accepted" not in answer
        assert not harness.slack.replies[rid]
    answer, _ = await harness.slash("silence alertname=Foo forever")
    assert "is not a duration" in answer
