"""The recording action, and a worker process that runs remediation with it.

``RecordingAction`` implements the action interface (``responder.actions.base.Action``)
and appends every execution to a JSON-lines file: a ``begin`` line when it starts and an
``end`` line when its effect is done. Lines are written with ``O_APPEND`` straight to the
kernel, so they survive a SIGKILL of the worker. It is idempotent as the real actions
are: a repeat of a key that has an ``end`` line changes nothing, and ``reconcile(key)``
answers from the file. How each action behaves (how long it takes, whether it fails) is
read from a plan file on every run, so a test can change it while the worker runs.

Run as a script (``python tests/streams/recording.py``) it is ``responder worker`` with
this action in place of the built-in catalogue, configured from the environment like
the real worker (``RESPONDER_*``), plus ``RECORDING_LOG``, ``RECORDING_PLAN`` and
``RECORDING_SESSION_TIMEOUT_S`` (the consumer-group session timeout: how soon the group
notices a SIGKILLed worker; Faust's default is 60 s).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from responder.actions.base import Action, ActionContext, ActionResult
from responder.actions.params import ACTION_NAMES
from responder.errors import PermanentError
from responder.models.notifications import Notification
from responder.models.target import Target
from responder.models.topics import TOPICS, topic_name
from responder.settings import (
    ActionsSettings,
    KafkaSettings,
    RemediationSettings,
    Settings,
    WorkerSettings,
)
from responder_dev.settings import settings_env

PARTITIONS = 4

SCRIPT = Path(__file__).resolve()


def read_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def ends(path: Path) -> list[dict[str, Any]]:
    return [r for r in read_log(path) if r["event"] == "end"]


class RecordingAction:
    """Every action name of the catalogue, recorded instead of performed."""

    def __init__(self, name: str, log_path: Path, plan_path: Path | None) -> None:
        self.name = name
        self._log = log_path
        self._plan = plan_path
        self._done_keys: set[str] = set()
        self._read_upto = 0

    def _behaviour(self) -> dict[str, Any]:
        if self._plan is None or not self._plan.exists():
            return {}
        plan: dict[str, Any] = json.loads(self._plan.read_text())
        return dict(plan.get(self.name, plan.get("*", {})))

    def _write(self, event: str, ctx: ActionContext, target: Target, **extra: Any) -> None:
        record = {
            "event": event,
            "key": ctx.key,
            "action": self.name,
            "incident": ctx.incident_id,
            "step": ctx.step,
            "attempt": ctx.attempt,
            "target": str(target),
            "dry_run": ctx.dry_run,
            "at": time.time(),
            "pid": os.getpid(),
            **extra,
        }
        fd = os.open(self._log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (json.dumps(record) + "\n").encode())
        finally:
            os.close(fd)

    def _done(self, key: str) -> bool:
        """Whether an ``end`` line exists for ``key`` (in any process's writing): the file is
        read incrementally from where this action last stopped, never parsed whole again."""
        if key not in self._done_keys and self._log.exists():
            with self._log.open("rb") as f:
                f.seek(self._read_upto)
                chunk = f.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]
            self._read_upto += len(complete)
            for line in complete.splitlines():
                record = json.loads(line)
                if record["event"] == "end":
                    self._done_keys.add(record["key"])
        return key in self._done_keys

    async def run(self, ctx: ActionContext, target: Target, params: Any) -> ActionResult:
        started = time.monotonic()
        if self._done(ctx.key):
            return ActionResult(
                action=self.name,
                target=str(target),
                key=ctx.key,
                changed=False,
                detail=f"already applied for {ctx.key}; nothing done",
            )
        behaviour = self._behaviour()
        self._write("begin", ctx, target)
        await asyncio.sleep(float(behaviour.get("delay_s", 0.0)))  # the change taking its time
        if behaviour.get("fail"):
            self._write("failed", ctx, target)
            raise PermanentError(f"{self.name} failed as planned")
        self._write("end", ctx, target)
        self._done_keys.add(ctx.key)
        return ActionResult(
            action=self.name,
            target=str(target),
            key=ctx.key,
            changed=not ctx.dry_run,
            dry_run=ctx.dry_run,
            detail="recorded",
            duration_s=time.monotonic() - started,
        )

    async def reconcile(self, ctx: ActionContext, target: Target, key: str) -> bool | None:
        self._write("reconcile", ctx, target, found=self._done(key))
        return self._done(key)


def recording_actions(log_path: Path, plan_path: Path | None) -> dict[str, Action]:
    return {name: RecordingAction(name, log_path, plan_path) for name in ACTION_NAMES}


class RecordingWorker:
    """This script in a subprocess; SIGTERM or SIGKILL it; its log shown when a test fails."""

    def __init__(
        self,
        settings: Settings,
        log_dir: Path,
        *,
        record: Path,
        plan: Path,
        session_timeout_s: float = 6.0,
    ) -> None:
        self.log_path = log_dir / f"worker-{time.monotonic_ns()}.log"
        env = (
            os.environ
            | settings_env(settings)
            | {
                "RECORDING_LOG": str(record),
                "RECORDING_PLAN": str(plan),
                "RECORDING_SESSION_TIMEOUT_S": str(session_timeout_s),
            }
        )
        self._out = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, str(SCRIPT)],
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=str(SCRIPT.parents[2]),
        )

    def stop(self, *, crash: bool = False, timeout_s: float = 60.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if crash else signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(timeout=10)
        self._out.close()
        return code

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class Bus:
    """The test's side of the broker: fire alerts as ingest would, send commands, read topics."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.prefix = settings.kafka.topic_prefix
        self._producer: Any = None

    def topic(self, name: str) -> str:
        """The full name of the declared topic ``name`` ("alerts", "audit", ...)."""
        (declared,) = [t for t in TOPICS if t.name == name]
        return topic_name(self.prefix, declared)

    async def start(self) -> None:
        from aiokafka import AIOKafkaProducer

        from responder_dev.stack.kafka import create_topics_async

        await create_topics_async(
            self.settings.kafka.bootstrap,
            {topic_name(self.prefix, t): self.settings.kafka.partitions for t in TOPICS},
        )
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka.bootstrap, enable_idempotence=True, linger_ms=0
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    def alert(
        self,
        labels: dict[str, str],
        *,
        firing: bool = True,
        starts_at: Any = None,
        fingerprint: str | None = None,
    ) -> Any:
        from datetime import UTC, datetime

        from responder.models.alerts import AlertEvent, AlertStatus, incident_key, label_fingerprint

        start = starts_at or datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
        now = datetime.now(UTC)
        return AlertEvent(
            incident_key=incident_key(labels),
            fingerprint=fingerprint or label_fingerprint(labels),
            status=AlertStatus.FIRING if firing else AlertStatus.RESOLVED,
            starts_at=start,
            ends_at=None if firing else now,
            labels=labels,
            received_at=now,
        )

    async def fire(self, labels: dict[str, str], **kwargs: Any) -> Any:
        """Publish one alert the way ingest does (keyed by incident key); returns the event."""
        event = self.alert(labels, **kwargs)
        await self._producer.send_and_wait(
            self.topic("alerts"),
            key=event.incident_key.encode(),
            value=event.model_dump_json().encode(),
        )
        return event

    async def send_raw(self, topic: str, key: bytes, value: bytes) -> None:
        await self._producer.send_and_wait(self.topic(topic), key=key, value=value)

    async def read(
        self, name: str, *, until: Any, timeout_s: float, from_end: bool = False
    ) -> list[tuple[bytes, bytes]]:
        """(key, value) of a topic from its start, read until ``until(records)`` or the deadline."""
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka.bootstrap, enable_auto_commit=False
        )
        await consumer.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        records: list[tuple[bytes, bytes]] = []
        try:
            topic = self.topic(name)
            while not (parts := consumer.partitions_for_topic(topic)) and loop.time() < deadline:
                await consumer._client.force_metadata_update()
            consumer.assign([TopicPartition(topic, p) for p in parts or ()])
            await consumer.seek_to_beginning()
            while loop.time() < deadline and not until(records):
                for messages in (await consumer.getmany(timeout_ms=200)).values():
                    records += [(m.key, m.value) for m in messages]
        finally:
            await consumer.stop()
        return records


def incident_id_of(event: Any) -> str:
    from responder.models.incidents import incident_id

    return str(incident_id(event.incident_key, event.fingerprint, event.starts_at))


RUNBOOK = """
apiVersion: responder/v1
id: {id}
match: {{alertname: {alertname}}}
target: {{namespace: "{{{{ labels.namespace }}}}", name: "{{{{ labels.service }}}}"}}
auto_recovery: {auto}
cooldown: 0s
max_actions: {{count: 20, per: 1h}}
steps:
{steps}
escalation:
  after: {after}
  chain:
    - {{notify: slack, channel: "#{id}"}}
    - {{notify: pagerduty, routing_key_ref: oncall, wait: 2s}}
"""


def step(action: str, verify: str, *, timeout: str = "20s", extra: str = "") -> str:
    params = {
        "cache.clear": '{pattern: "gen:*"}',
        "model.reload": "{path: /admin/reload, port: 8080}",
        "connections.reset": "{}",
        "deployment.restart": "{}",
    }[action]
    return f"  - action: {action}\n    with: {params}\n    timeout: {timeout}\n    verify: {verify}\n{extra}"


def http_verify(path: str, within: str = "4s") -> str:
    return f"{{http: {{base: verify, path: {path}}}, within: {within}, every: 1s}}"


class VerifyServer:
    """The health endpoint HTTP verifications poll; each path answers what the test says."""

    def __init__(self) -> None:
        self.status: dict[str, int] = {}
        self.hits: dict[str, int] = {}

    async def handle(self, request: web.Request) -> web.Response:
        path = request.path
        self.hits[path] = self.hits.get(path, 0) + 1
        return web.Response(status=self.status.get(path, 503))


@pytest.fixture
async def verify_server() -> AsyncIterator[tuple[VerifyServer, str]]:
    server = VerifyServer()
    app = web.Application()
    app.router.add_get("/{tail:.*}", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def write_runbooks(directory: Path, runbooks: dict[str, dict[str, str]]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for rid, fields in runbooks.items():
        text = RUNBOOK.format(id=rid, alertname=f"E2E{rid.capitalize()}", **fields)
        (directory / f"{rid}.yaml").write_text(text)


def make_settings(kafka: Any, tmp_path: Path, verify_url: str, runbooks: Path) -> Settings:
    run = uuid.uuid4().hex[:10]
    return Settings(
        kafka=KafkaSettings(
            bootstrap=kafka.bootstrap, topic_prefix=f"r{run}", partitions=PARTITIONS
        ),
        worker=WorkerSettings(
            app_id=f"remediation-test-{run}",
            store="rocksdb://",
            data_dir=str(tmp_path / "worker-data"),
            web_enabled=False,
        ),
        remediation=RemediationSettings(
            runbooks_dir=str(runbooks),
            timer_interval_s=0.2,
            rescan_interval_s=1.0,
            resume_grace_s=2.0,
        ),
        actions=ActionsSettings(http_base_urls={"verify": verify_url}),
    )


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., RecordingWorker]]:
    started: list[RecordingWorker] = []

    def start(settings: Settings, **kwargs: Any) -> RecordingWorker:
        worker = RecordingWorker(
            settings,
            tmp_path,
            record=tmp_path / "actions.jsonl",
            plan=tmp_path / "plan.json",
            **kwargs,
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop(timeout_s=30)
        print(f"--- {worker.log_path.name}\n{worker.log_tail()}")


def notifications(records: list[tuple[bytes, bytes]]) -> list[Notification]:
    return [Notification.model_validate_json(value) for _, value in records]


async def wait_for(
    predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.2
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s")
        await asyncio.sleep(interval_s)  # polling interval, bounded by the deadline


def main() -> None:  # pragma: no cover - runs in the worker subprocess
    from responder.cli.worker import ensure_worker_topics
    from responder.logging import configure
    from responder.settings import get_settings
    from streams.app import create_streams, faust_worker
    from streams.remediate import RemediationRuntime

    configure(json=True, level=os.environ.get("RECORDING_LOG_LEVEL", "WARNING"))
    log_path = Path(os.environ["RECORDING_LOG"])
    plan = os.environ.get("RECORDING_PLAN")
    table: Mapping[str, Action] = recording_actions(log_path, Path(plan) if plan else None)

    async def provide() -> Mapping[str, Action]:
        return table

    settings = get_settings()
    streams = create_streams(settings, remediation=RemediationRuntime(actions=provide))
    ensure_worker_topics(streams, settings)  # as `responder worker` does
    session = float(os.environ.get("RECORDING_SESSION_TIMEOUT_S", "60"))
    streams.app.conf.broker_session_timeout = session
    streams.app.conf.broker_heartbeat_interval = max(0.5, session / 6)
    guarantee = os.environ.get("RECORDING_PROCESSING_GUARANTEE")
    if guarantee:  # the bench compares Faust's exactly_once (transactions) with the ledger alone
        streams.app.conf.processing_guarantee = guarantee
    faust_worker(streams, "warning").execute_from_commandline()


if __name__ == "__main__":
    main()
