"""Helpers of the end-to-end tests: the worker process, reading topics, building webhooks.

Plain functions and classes (fixtures live in conftest.py), imported by the tests by name.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from responder.models.topics import ALERTS, AUDIT, INCIDENTS, INCIDENTS_TABLE, topic_name
from responder.settings import Settings
from responder_dev.settings import settings_env

TOKEN = "e2e-token"
PARTITIONS = 4
RESPONDER = Path(sys.executable).with_name("responder")


class WorkerProcess:
    """``responder worker`` in a subprocess, its output in a log file shown when a test fails."""

    def __init__(
        self, settings: Settings, log_path: Path, *, env: dict[str, str] | None = None
    ) -> None:
        self.log_path = log_path
        env = os.environ | settings_env(settings) | (env or {})
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [str(RESPONDER), "--log-level", "INFO", "worker", "--loglevel", "info"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def stop(self, *, crash: bool = False, timeout_s: float = 60.0) -> int:
        """SIGTERM and wait (a graceful stop), or SIGKILL (a crash). Blocks: from a test's
        event loop, call it through ``asyncio.to_thread``."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if crash else signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(timeout=10)
        self._log.close()
        return code

    def log_tail(self, lines: int = 120) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def topic_partitions(
    consumer: AIOKafkaConsumer, topic: str, deadline: float
) -> list[TopicPartition]:
    """The topic's partitions, once its metadata is known (it may not exist yet)."""
    loop = asyncio.get_running_loop()
    while not (partitions := consumer.partitions_for_topic(topic)) and loop.time() < deadline:
        await consumer._client.force_metadata_update()
    return [TopicPartition(topic, p) for p in sorted(partitions or ())]


async def read_topic(
    bootstrap: str,
    topic: str,
    *,
    until: Callable[[list[tuple[bytes, bytes, int]]], bool] | None = None,
    timeout_s: float = 60.0,
) -> list[tuple[bytes, bytes, int]]:
    """Every (key, value, partition) of ``topic`` from the start.

    Reads until ``until`` holds, or (without it) up to the end offsets seen when reading
    began. Returns what was read when the deadline passes, so the caller's assertion shows it.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    records: list[tuple[bytes, bytes, int]] = []
    try:
        assigned = await topic_partitions(consumer, topic, deadline)
        consumer.assign(assigned)
        await consumer.seek_to_beginning()
        ends = await consumer.end_offsets(assigned)
        read_to = dict.fromkeys(assigned, 0)

        def done() -> bool:
            if until is not None:
                return until(records)
            return all(read_to[tp] >= end for tp, end in ends.items())

        while not done() and loop.time() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for tp, messages in batches.items():
                records += [(m.key, m.value, tp.partition) for m in messages]
                read_to[tp] = messages[-1].offset + 1 if messages else read_to[tp]
    finally:
        await consumer.stop()
    return records


def incidents_topic(settings: Settings) -> str:
    return topic_name(settings.kafka.topic_prefix, INCIDENTS)


def changelog_topic(settings: Settings) -> str:
    """Faust's changelog of the incidents table: ``<app id>-<table>-changelog``."""
    return INCIDENTS_TABLE.changelog(settings.worker.app_id)


def alerts_topic(settings: Settings) -> str:
    return topic_name(settings.kafka.topic_prefix, ALERTS)


def audit_topic(settings: Settings) -> str:
    return topic_name(settings.kafka.topic_prefix, AUDIT)


def alert_json(key: int, fingerprint: int, *, status: str = "firing") -> dict[str, object]:
    """Alert ``fingerprint`` of incident ``key`` as Alertmanager would put it in a webhook."""
    return {
        "status": status,
        "labels": {
            "alertname": f"Load{key % 7}",
            "namespace": f"ns{key % 3}",
            "service": f"svc-{key:03d}",
            "instance": f"pod-{fingerprint}",
        },
        "annotations": {"summary": "load too high"},
        "startsAt": "2026-11-30T03:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-30T03:30:00Z",
        "generatorURL": "http://prometheus.invalid/graph",
        "fingerprint": f"{key:03d}-{fingerprint}",
    }


def webhook(alerts: list[dict[str, object]], *, group: str = "load") -> dict[str, object]:
    """A v4 webhook body around ``alerts``."""
    return {
        "version": "4",
        "groupKey": f'{{}}:{{group="{group}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "responder",
        "groupLabels": {"group": group},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.invalid",
        "alerts": alerts,
    }
