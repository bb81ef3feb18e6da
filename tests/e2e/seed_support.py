"""Helpers of the seed runbooks' end-to-end test: the shipped runbooks with short windows,
their example alerts aimed at a test namespace, the worker's environment, the audit topic
read as it grows, the operator's CLI, and HTTP servers standing in for the pods.

The seed runbooks wait minutes for their verifications; a test cannot. ``shortened_copy``
writes them to a folder of the test's own with only the waiting shortened (every
``verify.within`` / ``verify.every``, and ``escalation.after`` where it is longer than the
test), so the steps, their parameters and their approval gates are exactly as shipped.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from ruamel.yaml import YAML

from responder.models.incidents import AuditEvent
from responder.models.topics import AUDIT, topic_name
from responder.settings import Settings
from responder_dev.settings import settings_env

REPO = Path(__file__).resolve().parents[2]
SEED_RUNBOOKS = REPO / "runbooks"
EXAMPLES = SEED_RUNBOOKS / "examples"
RESPONDER = Path(sys.executable).with_name("responder")

VERIFY_WITHIN = "4s"
"""Each verification's window in the test: a PromQL check against the test Prometheus (no
MuseAroo series there) fails when it ends, which moves the incident to its next step."""
VERIFY_EVERY = "1s"
ESCALATION_AFTER = "45s"
"""Longer than any walk here, so an escalation that fires did so because the runbook or the
engine said "now" (no automatic recovery, steps exhausted), not because time ran out."""


def _seconds(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    return float(text[:-1]) * units[text[-1]]


def shortened_copy(destination: Path) -> Path:
    """The four seed runbooks in ``destination`` with only their waits shortened."""
    destination.mkdir(parents=True, exist_ok=True)
    yaml = YAML()  # round trip: comments, order, quoting and every other value kept as shipped
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    for source in sorted(SEED_RUNBOOKS.glob("*.yaml")):
        doc = yaml.load(source.read_text())
        for step in doc["steps"]:
            step["verify"]["within"] = VERIFY_WITHIN
            step["verify"]["every"] = VERIFY_EVERY
        escalation = doc["escalation"]
        if _seconds(str(escalation["after"])) > _seconds(ESCALATION_AFTER):
            escalation["after"] = ESCALATION_AFTER
        with (destination / source.name).open("w") as out:
            yaml.dump(doc, out)
    return destination


def example_webhook(runbook_id: str, namespace: str) -> dict[str, Any]:
    """``runbooks/examples/<id>.json`` with its ``namespace`` label set to the test's."""
    body: dict[str, Any] = json.loads((EXAMPLES / f"{runbook_id}.json").read_text())
    for labels in (
        body["groupLabels"],
        body["commonLabels"],
        *(alert["labels"] for alert in body["alerts"]),
    ):
        if "namespace" in labels:
            labels["namespace"] = namespace
    return body


def resolved(webhook: dict[str, Any]) -> dict[str, Any]:
    """The same group as Alertmanager sends it once its alerts resolve."""
    body = copy.deepcopy(webhook)
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    body["status"] = "resolved"
    for alert in body["alerts"]:
        alert["status"], alert["endsAt"] = "resolved", now
    return body


def worker_env(settings: Settings, kubeconfig: Path) -> dict[str, str]:
    """What a production worker reads: ``RESPONDER_*`` for every group used, and KUBECONFIG."""
    return os.environ | settings_env(settings) | {"KUBECONFIG": str(kubeconfig)}


class Worker:
    """``responder worker`` with the production action catalogue, in a subprocess."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [str(RESPONDER), "--log-level", "INFO", "worker", "--loglevel", "info"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self._log.close()

    def log_tail(self, lines: int = 150) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


async def cli(env: dict[str, str], *args: str, timeout_s: float = 60.0) -> str:
    """``responder ARGS`` as an operator types it; its output, or AssertionError."""
    process = await asyncio.create_subprocess_exec(
        str(RESPONDER),
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout_s)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    text = out.decode(errors="replace")
    assert process.returncode == 0, f"responder {' '.join(args)} -> {process.returncode}\n{text}"
    return text


class AuditTail:
    """``responder.audit`` of the test's prefix, read from its start and kept as it grows."""

    def __init__(self, settings: Settings) -> None:
        self.bootstrap = settings.kafka.bootstrap
        self.topic = topic_name(settings.kafka.topic_prefix, AUDIT)
        self.events: list[AuditEvent] = []
        self._consumer: Any = None

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer

        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False
        )
        await self._consumer.start()

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def _poll(self) -> None:
        from aiokafka import TopicPartition

        consumer = self._consumer
        if not consumer.assignment():
            partitions = consumer.partitions_for_topic(self.topic)
            if not partitions:
                await consumer._client.force_metadata_update()
                return
            consumer.assign([TopicPartition(self.topic, p) for p in sorted(partitions)])
            await consumer.seek_to_beginning()
        for messages in (await consumer.getmany(timeout_ms=200)).values():
            self.events += [AuditEvent.model_validate_json(m.value) for m in messages]

    async def wait(
        self, predicate: Callable[[list[AuditEvent]], Any], *, timeout_s: float, what: str
    ) -> Any:
        """Read until ``predicate(events)`` is truthy (and return it), or fail at the deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not (found := predicate(self.events)):
            if loop.time() > deadline:
                raise AssertionError(f"{what}: not on the audit topic within {timeout_s:.0f} s")
            await self._poll()  # blocks up to 200 ms for new records: the polling interval
        return found

    def kinds(self, incident_id: str) -> list[tuple[str, Any]]:
        """(kind without ``remediation.``, step) of the incident's remediation events."""
        return [
            (e.kind.removeprefix("remediation."), e.data.get("step"))
            for e in self.events
            if e.incident_id == incident_id and e.kind.startswith("remediation.")
        ]


def first(kind: str, **data: Any) -> Callable[[list[AuditEvent]], AuditEvent | None]:
    """Predicate: the first ``remediation.<kind>`` event whose data has these values."""

    def find(events: list[AuditEvent]) -> AuditEvent | None:
        for event in events:
            if event.kind == f"remediation.{kind}" and all(
                event.data.get(k) == v for k, v in data.items()
            ):
                return event
        return None

    return find


PROBE_PATH = "/v1/generate/test"


class PodServers:
    """HTTP servers on the pods' loopback addresses (kwok's 127.64.x.y) at the seed's port,
    recording each request (pod address, path, JSON body) as a model server or hub would.

    The engines' test-generation endpoint answers as the probe contract says, with a
    confidence below the design's 0.7: the engine is still degraded after its models are
    reloaded, so a probe verification fails and the incident moves on."""

    probe_confidence = 0.42

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self._runners: list[web.AppRunner] = []

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        body = json.loads(raw) if raw else {}
        self.calls.append((str(request.url.host), request.path, body))
        if request.path == PROBE_PATH:
            return web.json_response(
                {
                    "success": True,
                    "confidence": self.probe_confidence,
                    "engine": "seed",
                    "duration_ms": 1.0,
                }
            )
        return web.json_response({"ok": True})

    def to(self, path: str) -> list[tuple[str, str, dict[str, Any]]]:
        """The calls to ``path``."""
        return [call for call in self.calls if call[1] == path]

    async def serve(self, addresses: list[str], port: int) -> None:
        for address in addresses:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, address, port).start()
            self._runners.append(runner)

    async def close(self) -> None:
        for runner in self._runners:
            await runner.cleanup()


class HealthServer:
    """The ``http`` verification's base URL: answers 503 (unhealthy) and counts the polls."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        self.hits.append(request.path)
        return web.Response(status=503, text="still degraded")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
