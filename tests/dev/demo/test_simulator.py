"""The engine simulator against the real Redis: the probe contract, and faults that only the
real change clears (the poisoned keys deleted in Redis; the hard fault cleared by a person)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families
from sim_support import until

from responder_dev.demo.simulator import (
    HEALTHY_CONFIDENCE,
    PROBE_PATH,
    Simulator,
    poison_prefix,
)
from responder_dev.demo.simulator import call_probe as probe
from responder_dev.demo.simulator import read_faults as faults

DB = 11  # a database of its own on the session's Redis


@pytest.fixture
async def redis_url(redis_server: Any) -> AsyncIterator[str]:
    url = f"{str(redis_server.url).rsplit('/', 1)[0]}/{DB}"
    client = aioredis.Redis.from_url(url)
    await client.flushdb()
    yield url
    await client.flushdb()
    await client.aclose()


@pytest.fixture
async def simulator(redis_url: str) -> AsyncIterator[Simulator]:
    sim = Simulator(
        [("melody", 0), ("rhythm", 0)],
        namespace="musearoo",
        redis_url=redis_url,
        kubeconfig=None,
        tick_s=0.1,
    )
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s:
        yield s


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


async def metrics(session: aiohttp.ClientSession, base: str) -> str:
    async with session.get(base + "/metrics") as r:
        assert r.status == 200
        return await r.text()


async def test_probe_contract_and_the_design_metrics(
    simulator: Simulator, session: aiohttp.ClientSession
) -> None:
    base = simulator.url("melody")
    assert base.startswith("http://127.0.0.1:")
    body, wall = await probe(session, base)
    assert set(body) == {"success", "confidence", "engine", "duration_ms"}
    assert body["success"] is True
    assert body["engine"] == "melody"
    assert body["confidence"] == HEALTHY_CONFIDENCE
    assert 0 < body["duration_ms"] <= wall * 1000 + 1
    async with session.post(base + PROBE_PATH, data=b"not json") as bad:
        assert bad.status == 400
    text = await metrics(session, base)
    for name in (
        "musearoo_generation_latency_seconds_bucket",
        "musearoo_engine_health_score",
        "musearoo_websocket_message_latency_seconds_bucket",
        "musearoo_session_errors_total",
        "musearoo_user_satisfaction_total",
        "musearoo_active_sessions",
    ):
        assert samples(text, name), name
    (health,) = samples(text, "musearoo_engine_health_score").items()
    assert dict(health[0]) == {"namespace": "musearoo", "engine": "melody"}


async def test_cache_fault_lasts_while_the_poisoned_keys_exist_in_redis(
    simulator: Simulator, session: aiohttp.ClientSession, redis_url: str
) -> None:
    melody, rhythm = simulator.url("melody"), simulator.url("rhythm")
    client = aioredis.Redis.from_url(redis_url)
    try:
        for i in range(20):
            await client.set(f"{poison_prefix('melody')}{i}", b"stale")

        async def slow() -> bool:
            return (await faults(session, melody))["poisoned_keys"] is True

        await until(slow, 10, "melody sees the poisoned keys")
        _, wall = await probe(session, melody)
        assert wall > 0.3  # the generation now takes ~450 ms
        _, other = await probe(session, rhythm)
        assert other < 0.2  # only melody's keys were poisoned

        # Other keys going away, and time passing, change nothing.
        await client.set("generation:rhythm:0", b"fine")
        await client.delete("generation:rhythm:0")
        for _ in range(5):  # several refreshes of the simulator (every 0.1 s)
            assert (await faults(session, melody))["poisoned_keys"] is True
            await asyncio.sleep(0.2)  # watching that nothing changes, not waiting for it
        async for key in client.scan_iter(match=poison_prefix("melody") + "*"):
            if key.endswith(b":0"):
                await client.unlink(key)  # a few deleted is not all deleted
        assert (await faults(session, melody))["poisoned_keys"] is True

        # The real change: every poisoned key deleted from Redis, as cache.clear does.
        keys = [k async for k in client.scan_iter(match="generation:*")]
        await client.unlink(*keys)

        async def fast() -> bool:
            return (await faults(session, melody))["poisoned_keys"] is False

        await until(fast, 10, "melody recovers once the keys are gone")
        _, wall = await probe(session, melody)
        assert wall < 0.2
    finally:
        await client.aclose()

    # The latency histogram told the same story: slow observations while poisoned.
    text = await metrics(session, melody)
    buckets = samples(text, "musearoo_generation_latency_seconds_bucket")
    le = {dict(k)["le"]: v for k, v in buckets.items()}
    assert le["+Inf"] - le["0.2"] > 10  # generations over 200 ms were observed


async def test_hard_fault_survives_everything_but_a_person(
    simulator: Simulator, session: aiohttp.ClientSession, redis_url: str
) -> None:
    rhythm = simulator.url("rhythm")
    async with session.post(rhythm + "/v1/faults/hard") as r:
        assert r.status == 200
    body, _ = await probe(session, rhythm)
    assert body["success"] is False
    assert body["confidence"] < 0.7
    client = aioredis.Redis.from_url(redis_url)
    try:  # clearing the cache does not help
        keys = [k async for k in client.scan_iter(match="generation:*")]
        if keys:
            await client.unlink(*keys)
    finally:
        await client.aclose()

    async def errors_grow() -> bool:
        text = await metrics(session, rhythm)
        return sum(samples(text, "musearoo_session_errors_total").values()) > 5

    await until(errors_grow, 10, "session errors counted")
    assert (await probe(session, rhythm))[0]["success"] is False
    async with session.delete(rhythm + "/v1/faults/hard") as r:
        assert r.status == 200
    body, _ = await probe(session, rhythm)
    assert body["success"] is True
    assert body["confidence"] >= 0.7
