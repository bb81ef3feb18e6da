"""``responder demo``: the main job, live on the local stack.

Starts the real servers (``responder stack up``), the ingest service and a Faust worker
as the daemon runs in production, then plays one incident through them: Alertmanager
gets a ``HighGenerationLatency`` alert on its API and delivers it to ingest, triage opens
the incident, the seed runbook's first step clears the engine's generation cache in
Redis, and resolving the alert in Alertmanager resolves the incident. What happens is
read back from ``responder.audit``, the trail every transition and action leaves, and
printed as it arrives.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from responder.errors import ResponderError, TemporaryError
from responder.models.topics import AUDIT, topic_name
from responder_dev.settings import DevSettings, get_dev_settings

ENGINE = "melody"
NAMESPACE = "musearoo"
SEEDED_KEYS = 200
"""Keys put in the generation cache, which the runbook's cache.clear step must delete."""
RUNBOOK = "high_generation_latency.yaml"
"""The seed runbook the demo plays; the worker loads it alone, so that it needs only the
services the demo starts (the other seed runbooks name HTTP bases the stack has none of)."""


def _echo(message: str) -> None:
    click.echo(message, err=True)


def _alert(run: str, starts_at: datetime, ends_at: datetime | None = None) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "labels": {
            "alertname": "HighGenerationLatency",
            "severity": "warning",
            "team": "musearoo",
            "namespace": NAMESPACE,
            "engine": ENGINE,
            # Each run its own alert: Alertmanager does not notify again for an alert
            # group it already delivered, so a rerun would otherwise wait for repeat_interval.
            "demo_run": run,
        },
        "annotations": {"summary": f"Generation p95 latency of {ENGINE} is 484 ms (demo)"},
        "startsAt": starts_at.isoformat(),
        "generatorURL": "http://127.0.0.1/demo",
    }
    if ends_at is not None:
        alert["endsAt"] = ends_at.isoformat()
    return alert


def _child_env(settings: DevSettings, token: str, kubeconfig: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    stack = settings.stack
    env.update(
        {
            "RESPONDER_KAFKA__BOOTSTRAP": f"127.0.0.1:{stack.kafka_port}",
            "RESPONDER_INGEST__BEARER_TOKEN": token,
            "RESPONDER_ACTIONS__REDIS_URLS": json.dumps(
                {"default": f"redis://127.0.0.1:{stack.redis_port}/0"}
            ),
            "RESPONDER_ACTIONS__ALLOWED_NAMESPACES": json.dumps([NAMESPACE]),
            "RESPONDER_REMEDIATION__PROMETHEUS_URL": f"http://127.0.0.1:{stack.prometheus_port}",
            "RESPONDER_WORKER__DATA_DIR": str(Path(stack.root_dir, "worker").resolve()),
        }
    )
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    return env


class Demo:
    """One run of the demo; every wait is bounded by ``timeout_s``."""

    def __init__(self, settings: DevSettings, *, with_kube: bool, timeout_s: float) -> None:
        self.settings = settings
        self.with_kube = with_kube
        self.timeout_s = timeout_s
        self.root = Path(settings.stack.root_dir).resolve()
        self.logs = self.root / "demo"
        self.worker: _Child

    async def run(self) -> None:
        from responder_dev.stack.stack import Stack, webhook_token

        skip = set() if self.with_kube else {"kube"}
        stack = Stack.from_settings(self.settings, skip=skip)
        _echo(
            "== starting the local stack (Kafka, Redis, Alertmanager, Prometheus"
            + (", Kubernetes)" if self.with_kube else ")")
        )
        await asyncio.to_thread(stack.up, _echo)
        token = await asyncio.to_thread(webhook_token, self.settings, self.root)
        kubeconfig = await self._prepare_workload(stack) if self.with_kube else None
        await self._seed_cache()
        env = _child_env(self.settings, token, kubeconfig) | {
            "RESPONDER_REMEDIATION__RUNBOOKS_DIR": str(self._runbooks())
        }
        self.logs.mkdir(parents=True, exist_ok=True)
        async with AsyncExitStack() as children:
            await children.enter_async_context(_Child("ingest", ["serve"], env, self.logs))
            self.worker = await children.enter_async_context(
                _Child("worker", ["worker"], env, self.logs)
            )
            await self._wait_ready_ingest()
            await self._play(stack)
        _echo(f"== done; logs in {self.logs}; the stack keeps running (`responder stack down`)")

    def _runbooks(self) -> Path:
        """A folder holding a copy of the seed runbook the demo plays."""
        folder = self.root / "demo" / "runbooks"
        folder.mkdir(parents=True, exist_ok=True)
        seed = Path(self.settings.remediation.runbooks_dir, RUNBOOK)
        (folder / RUNBOOK).write_text(seed.read_text())
        return folder

    async def _prepare_workload(self, stack: Any) -> Path:
        """The Deployment the runbook targets, created as an operator would (admin identity)."""
        from kubernetes_asyncio import client, config

        kube = stack.get("kube")
        admin = Path(kube.admin_kubeconfig)
        api_client = await config.new_client_from_config(config_file=str(admin))
        async with api_client:
            apps = client.AppsV1Api(api_client)
            name = f"{ENGINE}-engine"
            body: Any = {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "namespace": NAMESPACE},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {"containers": [{"name": "engine", "image": "musearoo/engine"}]},
                    },
                },
            }
            try:
                await apps.create_namespaced_deployment(NAMESPACE, body)
                _echo(f"== created deployment {NAMESPACE}/{name} (2 replicas)")
            except client.ApiException as exc:
                if exc.status != 409:
                    raise
                _echo(f"== deployment {NAMESPACE}/{name} already there")
        return Path(kube.responder_kubeconfig)

    async def _seed_cache(self) -> None:
        import redis.asyncio as aioredis

        client = aioredis.Redis(port=self.settings.stack.redis_port)
        try:
            async with client.pipeline(transaction=False) as pipe:
                for i in range(SEEDED_KEYS):
                    pipe.set(f"generation:{ENGINE}:{i}", b"cached")
                await pipe.execute()
        finally:
            await client.aclose()
        _echo(f"== seeded {SEEDED_KEYS} keys generation:{ENGINE}:* in Redis")

    async def _count_cache(self) -> int:
        import redis.asyncio as aioredis

        client = aioredis.Redis(port=self.settings.stack.redis_port)
        try:
            return sum([1 async for _ in client.scan_iter(match="generation:*", count=500)])
        finally:
            await client.aclose()

    async def _wait_ready_ingest(self) -> None:
        import aiohttp

        url = f"http://127.0.0.1:{self.settings.ingest.port}/readyz"
        deadline = time.monotonic() + self.timeout_s
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while True:
                try:
                    async with session.get(url) as response:
                        if response.status == 200:
                            _echo("== ingest ready (broker reachable)")
                            return
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise TemporaryError(f"ingest not ready at {url} within {self.timeout_s} s")
                await asyncio.sleep(0.2)

    async def _play(self, stack: Any) -> None:
        from aiokafka import AIOKafkaConsumer

        audit_topic = topic_name(self.settings.kafka.topic_prefix, AUDIT)
        # No group: the consumer takes every partition of the topic, from its end.
        consumer = AIOKafkaConsumer(
            bootstrap_servers=f"127.0.0.1:{self.settings.stack.kafka_port}",
            auto_offset_reset="latest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            await self._pin_positions(consumer, audit_topic)
            alertmanager = stack.get("alertmanager")
            run, started = f"{time.time_ns():x}", datetime.now(UTC)
            _echo("== firing HighGenerationLatency through Alertmanager's /api/v2/alerts")
            await asyncio.to_thread(alertmanager.post_alerts, [_alert(run, started)])
            try:
                opened = await self._follow(consumer, lambda e: e["kind"] == "incident.open")
                _echo("== incident opened:")
                click.echo(json.dumps(opened, indent=2, default=str))
                await self._follow(consumer, _action_finished)
                _echo(f"== generation cache keys left in Redis: {await self._count_cache()}")
            finally:
                _echo("== resolving the alert in Alertmanager")
                ended = datetime.now(UTC) - timedelta(seconds=1)
                await asyncio.to_thread(alertmanager.post_alerts, [_alert(run, started, ended)])
            resolved = await self._follow(consumer, lambda e: e["kind"] == "incident.resolved")
            _echo("== incident resolved:")
            click.echo(json.dumps(resolved, indent=2, default=str))
        finally:
            await consumer.stop()

    async def _pin_positions(self, consumer: Any, topic: str) -> None:
        """Subscribe once the worker has created ``topic`` (a subscription to a missing topic
        would have the broker auto-create it with its default partitions), and resolve the
        end offset of every partition now, before the alert is fired."""
        deadline = time.monotonic() + self.timeout_s
        while topic not in await consumer.topics():
            self.worker.check_running()
            if time.monotonic() > deadline:
                raise TemporaryError(f"the worker did not create {topic} within {self.timeout_s} s")
            await asyncio.sleep(0.2)
        consumer.subscribe([topic])
        while not consumer.assignment():
            if time.monotonic() > deadline:
                raise TemporaryError(f"no audit partitions assigned within {self.timeout_s} s")
            await asyncio.sleep(0.1)
        for partition in consumer.assignment():
            await consumer.position(partition)

    async def _follow(
        self, consumer: Any, done: Callable[[Mapping[str, Any]], bool]
    ) -> Mapping[str, Any]:
        """Print audit events until one satisfies ``done``; return it."""
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    event = json.loads(record.value)
                    _echo(f"   audit {event['at']} {event['kind']} {_summary(event)}")
                    if done(event):
                        return dict(event)
        raise TemporaryError(f"the expected audit event did not come within {self.timeout_s} s")


def _action_finished(event: Mapping[str, Any]) -> bool:
    return bool(event["kind"] == "remediation.action_finished")


def _summary(event: Mapping[str, Any]) -> str:
    data = event.get("data", {})
    keep = ("incident_id", "to_state", "runbook", "step", "action", "ok", "result", "detail")
    return json.dumps({k: data[k] for k in keep if k in data}, default=str)[:300]


class _Child:
    """A ``responder`` subcommand run as its own process, stopped with SIGTERM on exit."""

    def __init__(self, name: str, args: list[str], env: Mapping[str, str], logs: Path) -> None:
        self.name, self.args, self.env = name, args, dict(env)
        self.log_path = logs / f"{name}.log"
        self.process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> _Child:
        log = self.log_path.open("wb")
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "responder.cli",
                *self.args,
                env=self.env,
                stdout=log,
                stderr=log,
                stdin=asyncio.subprocess.DEVNULL,
            )
        finally:
            log.close()
        _echo(
            f"== started responder {' '.join(self.args)} (pid {self.process.pid}, log {self.log_path})"
        )
        return self

    def check_running(self) -> None:
        """Raise, with the end of its log, if the process has exited."""
        if self.process is not None and self.process.returncode is not None:
            tail = self.log_path.read_text(errors="replace").splitlines()[-15:]
            raise TemporaryError(
                f"responder {' '.join(self.args)} exited with {self.process.returncode}:\n"
                + "\n".join(tail)
            )

    async def __aexit__(self, *exc: object) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), timeout=20)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


@click.command()
@click.option("--no-kube", is_flag=True, help="Skip the local Kubernetes control plane.")
@click.option("--timeout", "timeout_s", default=180.0, show_default=True, help="Seconds per wait.")
def demo(no_kube: bool, timeout_s: float) -> None:
    """Fire an alert through the local stack and print the incident it opens and resolves."""
    settings = get_dev_settings()
    # The audit reader's transient leader-election retries are noise here, not news.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        asyncio.run(Demo(settings, with_kube=not no_kube, timeout_s=timeout_s).run())
    except ResponderError as exc:
        raise click.ClickException(str(exc)) from exc
