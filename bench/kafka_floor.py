"""The floor every latency figure is read against: paced sends, the raw Kafka round trip,
and the private broker they run on.

Shared by the benches that report "beside the raw produce -> consume round trip on the same
broker in the same run"; one copy so the baseline is measured the same way everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from responder_dev.settings import StackSettings
from responder_dev.stack.kafka import Kafka
from responder_dev.stack.process import free_ports


@contextlib.contextmanager
def private_kafka(bootstrap: str | None, home: Path) -> Iterator[str]:
    """``bootstrap`` when given; else a broker of the bench's own on free loopback ports."""
    if bootstrap:
        yield bootstrap
        return
    stack = StackSettings()
    port, controller_port = free_ports(2)
    broker = Kafka(
        home / "kafka",
        port=port,
        controller_port=controller_port,
        cache_dir=Path(stack.cache_dir).expanduser(),
        version=stack.kafka_version,
        heap=stack.kafka_heap,
        start_timeout_s=stack.start_timeout_s,
        stop_timeout_s=stack.stop_timeout_s,
    )
    broker.start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


async def paced(rate: float, count: int, send: Any) -> float:
    """Call ``send(i)`` ``count`` times at ``rate`` per second; returns the achieved rate."""
    start = time.monotonic()
    for i in range(count):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing to the offered rate
        await send(i)
    return count / (time.monotonic() - start)


async def raw_round_trip(bootstrap: str, topic: str, rate: float, count: int) -> list[float]:
    """produce -> consume latency of small messages on the same broker (acks=all, idempotent)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    consumer.assign([TopicPartition(topic, p) for p in range(4)])
    await consumer.seek_to_end()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=0)
    await producer.start()
    latencies: list[float] = []

    async def receive() -> None:
        while len(latencies) < count:
            for messages in (await consumer.getmany(timeout_ms=100)).values():
                now = time.time()
                latencies.extend(now - float(m.value.decode()) for m in messages)

    reader = asyncio.ensure_future(receive())

    async def send(i: int) -> None:
        await producer.send(topic, key=str(i).encode(), value=repr(time.time()).encode())

    try:
        await paced(rate, count, send)
        await asyncio.wait_for(reader, 60)
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await producer.stop()
        await consumer.stop()
    return latencies
