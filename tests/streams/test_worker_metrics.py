"""The worker's /metrics, /healthz and /readyz, on a real worker process and the real broker.

One incident opened by an alert and then delivered 20 more times, one unreadable record,
one action whose verification fails so the incident escalates: every figure the SRE
dashboards use is read back from /metrics exactly as Prometheus would scrape it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from recording import (
    Bus,
    RecordingWorker,
    VerifyServer,
    http_verify,
    make_settings,
    step,
    verify_server,  # noqa: F401 - fixture
    workers,  # noqa: F401 - fixture
    write_runbooks,
)

from responder_dev.stack.process import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

RUNBOOKS = {
    "metered": dict(
        steps=step("cache.clear", http_verify("/health/metered", "2s")), auto="true", after="300s"
    ),
}
LABELS = {"alertname": "E2EMetered", "namespace": "musearoo", "service": "metered-engine"}


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(port: int) -> Samples:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/metrics", timeout=aiohttp.ClientTimeout(5)) as resp,
    ):
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_health_and_readiness(
    kafka: Any,
    tmp_path: Path,
    verify_server: tuple[VerifyServer, str],  # noqa: F811
    workers: Callable[..., RecordingWorker],  # noqa: F811
) -> None:
    _, url = verify_server  # /health/metered answers 503: the verification fails
    write_runbooks(tmp_path / "runbooks", RUNBOOKS)
    settings = make_settings(kafka, tmp_path, url, tmp_path / "runbooks")
    port = free_port()
    settings = settings.model_copy(
        update={
            "worker": settings.worker.model_copy(update={"web_enabled": True, "web_port": port})
        }
    )
    bus = Bus(settings)
    await bus.start()
    worker = workers(settings)
    try:
        samples: Samples = {}

        async def poll(predicate: Callable[[Samples], bool], timeout_s: float = 90) -> None:
            async def check() -> bool:
                nonlocal samples
                try:
                    samples = await scrape(port)
                except aiohttp.ClientError:
                    return False  # the web server is not up yet
                return predicate(samples)

            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_s
            while not await check():
                assert worker.process.poll() is None, worker.log_tail()
                assert loop.time() < deadline, f"metrics never matched; last scrape: {samples}"
                await asyncio.sleep(0.3)

        await bus.fire(LABELS)
        for _ in range(20):
            await bus.fire(LABELS)  # same fingerprint, same startsAt: a duplicate
        await bus.send_raw("alerts", b"garbage", b"{not json")

        await poll(
            lambda s: (
                value(s, "responder_worker_alerts_total", outcome="opened") == 1
                and value(s, "responder_worker_alerts_total", outcome="duplicate") == 20
                and value(s, "responder_worker_alerts_total", outcome="invalid") == 1
            )
        )
        # The action ran and its verification failed: steps exhausted, escalated at once.
        await poll(
            lambda s: (
                value(s, "responder_worker_escalations_total", notify="slack") == 1
                and value(s, "responder_worker_incidents", stage="idle") == 1
            )
        )
        assert (
            value(
                samples,
                "responder_worker_action_seconds_count",
                action="cache.clear",
                outcome="ok",
            )
            == 1
        )
        assert value(samples, "responder_worker_escalation_lateness_seconds_count") == 1
        assert value(samples, "responder_worker_alerts_total", outcome="resolved") == 0
        assert value(samples, "responder_worker_incidents", stage="running") == 0
        # Consumer lag per assigned partition, and Faust's own sensor on the same registry.
        lag = {
            labels: v
            for (name, labels), v in samples.items()
            if name == "responder_worker_consumer_lag"
        }
        alerts_topic = bus.topic("alerts")
        assert any(dict(labels)["topic"] == alerts_topic for labels in lag), lag
        assert all(v >= 0 for v in lag.values())
        assert any(name.startswith("responder_faust_") for name, _ in samples)

        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                assert resp.status == 200
            async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                assert resp.status == 200
                assert (await resp.json())["ready"] is True
    finally:
        await bus.stop()
        worker.stop()
