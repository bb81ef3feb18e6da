"""Ingest against the real broker: what lands on the topic, what happens when Kafka is away,
and a real Alertmanager delivering through ingest into an incident and its resolution.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaProducer
from e2e_support import (
    AUTH,
    TOKEN,
    alert_json,
    alerts_topic,
    changelog_topic,
    incidents_topic,
    read_topic,
    webhook,
)

from responder.ingest.app import create_app
from responder.ingest.publisher import KafkaPublisher
from responder.models.alerts import AlertEvent, AlertmanagerWebhook, normalize
from responder.models.incidents import Incident, IncidentState, IncidentTransition
from responder_dev.stack.process import free_port
from responder_dev.stack.service import start_async, stop_async

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

DOCS_PAYLOAD = Path(__file__).parents[1] / "models" / "alertmanager_v4.json"


async def test_docs_payload_lands_on_the_topic_one_partition_per_incident(
    settings: Any, ingest: Any
) -> None:
    payload = json.loads(DOCS_PAYLOAD.read_text())

    response = await ingest.post("/v1/alertmanager", json=payload, headers=AUTH)

    assert response.status == 200
    records = await read_topic(
        settings.kafka.bootstrap, alerts_topic(settings), until=lambda r: len(r) >= 2, timeout_s=30
    )
    assert {key for key, _, _ in records} == {b"HighGenerationLatency/musearoo/drummaroo-engine"}
    assert len({partition for _, _, partition in records}) == 1
    events = [AlertEvent.model_validate_json(value) for _, value, _ in records]
    assert sorted(e.fingerprint for e in events) == ["b3a2c1d0e9f8a7b6", "c4b3a2d1e0f9a8b7"]
    assert all(e.group_key == payload["groupKey"] for e in events)

    empty = await ingest.post("/v1/alertmanager", json=payload | {"alerts": []}, headers=AUTH)
    assert (empty.status, await empty.json()) == (200, {"accepted": 0})


async def test_kafka_down_gives_503_in_time_and_the_retry_opens_the_incident_once(
    settings: Any, ingest: Any, start_worker: Any, kafka: Any
) -> None:
    start_worker(settings)
    body = webhook([alert_json(7, f) for f in range(3)])
    # The first attempt got part of the way: one alert reached the topic before the broker
    # went away (published exactly as ingest would have published it).
    [partial, *_] = normalize(
        AlertmanagerWebhook.model_validate(body), received_at=datetime.now(UTC)
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(
            alerts_topic(settings),
            key=partial.incident_key.encode(),
            value=partial.model_dump_json().encode(),
        )
    finally:
        await producer.stop()
    # The worker is up and has triaged it before the broker goes away.
    first = await read_topic(
        settings.kafka.bootstrap, incidents_topic(settings), until=lambda r: len(r) >= 1
    )
    assert len(first) == 1

    await stop_async(kafka)
    try:
        began = time.monotonic()
        response = await ingest.post("/v1/alertmanager", json=body, headers=AUTH)
        elapsed = time.monotonic() - began

        assert response.status == 503
        assert int(response.headers["Retry-After"]) >= 1
        assert elapsed < settings.kafka.request_timeout_s + 1.5
        assert (await ingest.get("/readyz")).status == 503
    finally:
        await start_async(kafka)

    # Retry as Alertmanager does: exponential backoff until the send's deadline.
    loop = asyncio.get_running_loop()
    deadline, backoff = loop.time() + 60, 0.5
    while (
        response := await ingest.post("/v1/alertmanager", json=body, headers=AUTH)
    ).status != 200:
        assert response.status == 503, await response.text()
        assert loop.time() < deadline, "ingest never recovered after Kafka came back"
        await asyncio.sleep(backoff)  # the sender's backoff, not a wait for our own work
        backoff = min(backoff * 1.5, 5)

    def all_three_active(records: list[tuple[bytes, bytes, int]]) -> bool:
        return bool(records) and len(Incident.model_validate_json(records[-1][1]).active) == 3

    # Every alert of the request is in the incident: the worker has processed them all.
    table = await read_topic(
        settings.kafka.bootstrap, changelog_topic(settings), until=all_three_active, timeout_s=90
    )
    assert all_three_active(table)
    transitions = [
        IncidentTransition.model_validate_json(v)
        for _, v, _ in await read_topic(settings.kafka.bootstrap, incidents_topic(settings))
    ]
    assert [(t.incident_key, t.to_state) for t in transitions] == [
        (partial.incident_key, IncidentState.OPEN)
    ]
    incident = Incident.model_validate_json(table[-1][1])
    assert sorted(incident.active) == ["007-0", "007-1", "007-2"]


async def test_real_alertmanager_opens_and_resolves_through_ingest(
    settings: Any, ingest: Any, start_worker: Any, alertmanager: Any
) -> None:
    start_worker(settings)
    await asyncio.to_thread(
        alertmanager.configure,
        webhook_url=str(ingest.make_url("/v1/alertmanager")),
        token=TOKEN,
        group_wait_s=0,
        group_interval_s=1,
    )
    service = f"svc-{uuid.uuid4().hex[:8]}"  # Alertmanager keeps alerts for the session
    labels = {"alertname": "HighGenerationLatency", "namespace": "musearoo", "service": service}
    starts = datetime.now(UTC) - timedelta(seconds=5)
    alert = {"labels": labels, "annotations": {"summary": "slow"}, "startsAt": starts.isoformat()}

    await asyncio.to_thread(alertmanager.post_alerts, [alert])
    key = f"HighGenerationLatency/musearoo/{service}"
    opened = await read_topic(
        settings.kafka.bootstrap,
        incidents_topic(settings),
        until=lambda r: any(k == key.encode() for k, _, _ in r),
        timeout_s=60,
    )
    assert [IncidentTransition.model_validate_json(v).to_state for _, v, _ in opened] == [
        IncidentState.OPEN
    ]

    ended = datetime.now(UTC) - timedelta(seconds=1)
    await asyncio.to_thread(alertmanager.post_alerts, [alert | {"endsAt": ended.isoformat()}])
    both = await read_topic(
        settings.kafka.bootstrap,
        incidents_topic(settings),
        until=lambda r: len(r) >= 2,
        timeout_s=60,
    )
    states = [IncidentTransition.model_validate_json(v) for _, v, _ in both]
    assert [t.to_state for t in states] == [IncidentState.OPEN, IncidentState.RESOLVED]
    assert states[0].incident_id == states[1].incident_id


async def test_more_alerts_in_flight_than_the_bound_get_503_not_memory(settings: Any) -> None:
    bounded = settings.kafka.model_copy(update={"max_pending": 40})
    publisher = KafkaPublisher(bounded, alerts_topic(settings), retry_after_s=3)
    await publisher.start()
    try:
        assert await publisher.wait_connected(30)
        app = create_app(settings.ingest, publisher)
        async with TestClient(TestServer(app)) as client:
            body = webhook([alert_json(1, f) for f in range(50)])

            response = await client.post("/v1/alertmanager", json=body, headers=AUTH)

            assert response.status == 503
            assert response.headers["Retry-After"] == "3"
            assert "in flight" in (await response.json())["error"]
            assert publisher.pending == 0
    finally:
        await publisher.stop()


async def test_unreachable_broker_gives_503_and_unready_without_waiting(settings: Any) -> None:
    nowhere = settings.kafka.model_copy(update={"bootstrap": f"127.0.0.1:{free_port()}"})
    publisher = KafkaPublisher(nowhere, alerts_topic(settings), retry_after_s=3)
    await publisher.start()
    try:
        async with TestClient(TestServer(create_app(settings.ingest, publisher))) as client:
            body = webhook([alert_json(1, 0)])
            began = time.monotonic()

            response = await client.post("/v1/alertmanager", json=body, headers=AUTH)

            assert response.status == 503
            assert time.monotonic() - began < 1.0
            assert (await client.get("/readyz")).status == 503
            assert (await client.get("/healthz")).status == 200
    finally:
        await publisher.stop()
