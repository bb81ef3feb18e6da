"""End-to-end fixtures on the real broker: settings per test, a real worker process, ingest.

Every test gets its own topic prefix and Faust app id, so tests share the session's broker
without seeing each other's messages, consumer groups or changelogs. The worker is the
real ``responder worker`` command in a subprocess, configured through the environment as
in production; ingest is the real aiohttp app with the real Kafka publisher, on loopback.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from e2e_support import PARTITIONS, TOKEN, WorkerProcess, alerts_topic
from pydantic import SecretStr

from responder.ingest.app import create_app
from responder.ingest.publisher import KafkaPublisher
from responder.settings import (
    IngestSettings,
    KafkaSettings,
    RemediationSettings,
    Settings,
    WorkerSettings,
)


@pytest.fixture
def settings(kafka: Any, tmp_path: Path) -> Settings:
    run = uuid.uuid4().hex[:10]
    # No runbooks: these tests are about triage, and the worker refuses to start when a
    # loaded runbook needs a service (Kubernetes, Redis) that is not configured.
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    return Settings(
        kafka=KafkaSettings(
            bootstrap=kafka.bootstrap,
            topic_prefix=f"t{run}",
            partitions=PARTITIONS,
            request_timeout_s=3.0,
        ),
        ingest=IngestSettings(bearer_token=SecretStr(TOKEN)),
        worker=WorkerSettings(
            app_id=f"responder-test-{run}",
            store="rocksdb://",
            data_dir=str(tmp_path / "worker-0"),
            web_enabled=False,
            session_timeout_s=6.0,  # a SIGKILLed worker's partitions move on within seconds
        ),
        remediation=RemediationSettings(runbooks_dir=str(runbooks)),
    )


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[[Settings], WorkerProcess]]:
    workers: list[WorkerProcess] = []

    def start(settings: Settings) -> WorkerProcess:
        worker = WorkerProcess(settings, tmp_path / f"worker-{len(workers)}.log")
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop(timeout_s=30)
        # Captured by pytest and shown only when the test fails.
        sys.stderr.write(f"--- {worker.log_path.name}\n{worker.log_tail()}\n")


@pytest.fixture
async def ingest(settings: Settings) -> AsyncIterator[TestClient[Any, Any]]:
    """The ingest app with its real Kafka publisher, serving on a loopback port."""
    publisher = KafkaPublisher(
        settings.kafka,
        alerts_topic(settings),
        retry_after_s=settings.ingest.retry_after_s,
    )
    await publisher.start()
    assert await publisher.wait_connected(30), "ingest could not reach the broker"
    try:
        async with TestClient(TestServer(create_app(settings.ingest, publisher))) as client:
            yield client
    finally:
        await publisher.stop()
