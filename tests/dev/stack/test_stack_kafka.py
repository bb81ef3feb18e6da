"""The local Kafka node really serves clients, restarts idempotently and keeps its data."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from responder_dev.stack.kafka import Kafka, broker_answers
from responder_dev.stack.process import port_open
from responder_dev.stack.service import State, start_async, stop_async


async def _produce(bootstrap: str, topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=b"k")
    finally:
        await producer.stop()


async def _consume_all(
    bootstrap: str, topic: str, expect: int, timeout_s: float = 30.0
) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        values: list[bytes] = []
        deadline = time.monotonic() + timeout_s
        while len(values) < expect and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            values.extend(msg.value for msgs in batch.values() for msg in msgs)
        return values
    finally:
        await consumer.stop()


async def test_broker_answers_metadata_and_admin_requests(kafka: Kafka) -> None:
    assert await broker_answers(kafka.bootstrap)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    assert [b["port"] for b in cluster["brokers"]] == [kafka.port]
    assert cluster["controller_id"] == 1


def test_status_reports_ready_and_start_is_idempotent(kafka: Kafka) -> None:
    pid = kafka.pid()
    assert kafka.status().state is State.READY
    kafka.start()
    assert kafka.pid() == pid


def test_create_topics_is_idempotent_and_waits_for_leaders(kafka: Kafka) -> None:
    kafka.create_topics({"stack.topics": 3})
    kafka.create_topics({"stack.topics": 3})


async def test_restart_keeps_produced_messages(kafka: Kafka) -> None:
    await asyncio.to_thread(kafka.create_topics, {"stack.restart": 1})
    await _produce(kafka.bootstrap, "stack.restart", b"before-restart")

    await stop_async(kafka)
    assert not port_open(kafka.port)
    assert kafka.status().state is State.STOPPED

    await start_async(kafka)
    assert await _consume_all(kafka.bootstrap, "stack.restart", 1) == [b"before-restart"]


async def test_killed_broker_recovers_its_log(kafka: Kafka) -> None:
    await asyncio.to_thread(kafka.create_topics, {"stack.kill": 1})
    await _produce(kafka.bootstrap, "stack.kill", b"before-kill")

    await asyncio.to_thread(kafka.kill)
    assert kafka.pid() is None

    await start_async(kafka)
    assert await _consume_all(kafka.bootstrap, "stack.kill", 1) == [b"before-kill"]


def test_a_stopped_broker_is_back_for_the_next_test(kafka: Kafka) -> None:
    # Runs after the fault-injection tests above: the session fixture restarted it.
    assert kafka.status().state is State.READY
