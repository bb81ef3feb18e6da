"""Ingest and triage figures on a real broker, a real ``responder serve`` and ``responder worker``.

- Ingest throughput: closed loop, ``--concurrency`` clients posting Alertmanager-sized
  batches (50 alerts a request) as fast as answered (200 = every alert acked by Kafka).
- Ingest response time p50/p99 at ``--rate`` alerts/s (open loop: requests leave on a fixed
  schedule; the time counts from the scheduled send, so a stall is not hidden).
- Webhook received -> incident opened p50/p99 at ``--rate`` alerts/s: each request opens
  5 new incidents (10 alerts each); "visible" = the opened transition read from
  ``responder.incidents`` by this script, "decided" = the transition's own timestamp. Both
  minus the ``received_at`` ingest stamped on the alert (one host, one clock).
- Beside it, the floor: raw aiokafka produce (idempotent, acks=all) -> consume round trip
  at the same rate on the same broker in the same run.

A private Kafka is started on free ports unless ``--bootstrap`` is given.

    .venv/bin/python bench/ingest_bench.py
    .venv/bin/python bench/ingest_bench.py --seconds 20 --rate 1000 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from kafka_floor import private_kafka

from responder.models.incidents import IncidentState, IncidentTransition
from responder.models.topics import ALERTS, INCIDENTS, topic_name
from responder_dev.stack.kafka import create_topics_async
from responder_dev.stack.process import free_port

RESPONDER = Path(sys.executable).with_name("responder")
TOKEN = "bench-token"
BATCH = 50
PARTITIONS = 8


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary_ms(values: list[float]) -> dict[str, float | int | None]:
    def ms(v: float | None) -> float | None:
        return None if v is None else round(v * 1000, 2)

    return {
        "n": len(values),
        "p50_ms": ms(percentile(values, 50)),
        "p99_ms": ms(percentile(values, 99)),
        "max_ms": ms(max(values) if values else None),
    }


def rss_mib(pid: int) -> float | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return None


class Process:
    """A ``responder`` subcommand with RESPONDER_* settings, its output in a file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [str(RESPONDER), "--log-level", "WARNING", *args],
            env=os.environ | env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def alert(key: str, fingerprint: int) -> dict[str, Any]:
    return {
        "status": "firing",
        "labels": {
            "alertname": "BenchLoad",
            "namespace": "bench",
            "service": key,
            "pod": f"pod-{fingerprint}",
        },
        "annotations": {"summary": "bench"},
        "startsAt": datetime.now(UTC).isoformat(),
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.invalid/graph",
        "fingerprint": f"{key}-{fingerprint}",
    }


def request_body(run: str, n: int, *, keys_per_request: int) -> dict[str, Any]:
    """Request ``n``: 50 alerts over ``keys_per_request`` incident keys new to this run."""
    per_key = BATCH // keys_per_request
    alerts = [alert(f"{run}-{n}-{k}", f) for k in range(keys_per_request) for f in range(per_key)]
    return {
        "version": "4",
        "groupKey": f'{{}}:{{bench="{run}-{n}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "responder",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.invalid",
        "alerts": alerts,
    }


async def post(session: aiohttp.ClientSession, url: str, body: bytes) -> int:
    async with session.post(
        url,
        data=body,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    ) as response:
        await response.read()
        return response.status


async def wait_ready(session: aiohttp.ClientSession, base: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(f"{base}/readyz") as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.2)  # polling an external process's readiness
    raise SystemExit("ingest did not become ready")


async def closed_loop(
    session: aiohttp.ClientSession, url: str, run: str, *, seconds: float, concurrency: int
) -> dict[str, Any]:
    """As many 50-alert requests as the service answers, from ``concurrency`` clients."""
    bodies = [json.dumps(request_body(run, n, keys_per_request=5)).encode() for n in range(200)]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    stop_at = time.perf_counter() + seconds

    async def client(c: int) -> None:
        n = c
        while time.perf_counter() < stop_at:
            began = time.perf_counter()
            status = await post(session, url, bodies[n % len(bodies)])
            latencies.append(time.perf_counter() - began)
            statuses[status] = statuses.get(status, 0) + 1
            n += concurrency

    began = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(concurrency)))
    elapsed = time.perf_counter() - began
    accepted = statuses.get(200, 0) * BATCH
    return {
        "concurrency": concurrency,
        "seconds": round(elapsed, 2),
        "requests": sum(statuses.values()),
        "statuses": statuses,
        "alerts_per_s": round(accepted / elapsed),
        "response": summary_ms(latencies),
    }


async def open_loop(
    session: aiohttp.ClientSession,
    url: str,
    run: str,
    *,
    seconds: float,
    rate: float,
    keys_per_request: int,
) -> tuple[dict[str, Any], int]:
    """Requests on a fixed schedule at ``rate`` alerts/s; time counted from the schedule."""
    interval = BATCH / rate
    count = int(seconds * rate / BATCH)
    bodies = [
        json.dumps(request_body(run, n, keys_per_request=keys_per_request)).encode()
        for n in range(count)
    ]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.1

    async def one(n: int) -> None:
        scheduled = start + n * interval
        await asyncio.sleep(max(0.0, scheduled - loop.time()))  # the open-loop schedule
        status = await post(session, url, bodies[n])
        latencies.append(loop.time() - scheduled)
        statuses[status] = statuses.get(status, 0) + 1

    await asyncio.gather(*(one(n) for n in range(count)))
    return (
        {
            "rate_alerts_per_s": rate,
            "requests": count,
            "statuses": statuses,
            "response": summary_ms(latencies),
        },
        count * keys_per_request,
    )


@contextlib.asynccontextmanager
async def consumer_at_end(bootstrap: str, topic: str) -> AsyncIterator[AIOKafkaConsumer]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for tp in partitions:
            await consumer.position(tp)
        yield consumer
    finally:
        await consumer.stop()


async def opened_latencies(
    consumer: AIOKafkaConsumer, run: str, expected: int, timeout_s: float, worker: Process
) -> tuple[list[float], list[float]]:
    visible: list[float] = []
    decided: list[float] = []
    deadline = time.monotonic() + timeout_s
    while len(visible) < expected and time.monotonic() < deadline:
        if worker.proc.poll() is not None:
            raise SystemExit(f"the worker exited ({worker.proc.returncode}): see {worker.log_path}")
        batches = await consumer.getmany(timeout_ms=200)
        now = datetime.now(UTC)
        for messages in batches.values():
            for message in messages:
                transition = IncidentTransition.model_validate_json(message.value)
                if transition.to_state is not IncidentState.OPEN:
                    continue
                if not transition.incident_key.startswith(f"BenchLoad/bench/{run}"):
                    continue
                visible.append((now - transition.alert_received_at).total_seconds())
                decided.append((transition.at - transition.alert_received_at).total_seconds())
    return visible, decided


async def raw_round_trip(bootstrap: str, *, seconds: float, rate: float) -> dict[str, Any]:
    """The floor: idempotent acks=all produce -> consume on the same broker, same rate."""
    topic = f"bench-floor-{uuid.uuid4().hex[:8]}"
    await create_topics_async(bootstrap, {topic: PARTITIONS})
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    samples: list[float] = []
    count = int(seconds * rate)
    try:
        async with consumer_at_end(bootstrap, topic) as consumer:

            async def consume() -> None:
                deadline = time.monotonic() + seconds + 30
                while len(samples) < count and time.monotonic() < deadline:
                    batches = await consumer.getmany(timeout_ms=200)
                    now = time.time()
                    for messages in batches.values():
                        samples.extend(now - float(m.value) for m in messages)

            reader = asyncio.create_task(consume())
            loop = asyncio.get_running_loop()
            start = loop.time()
            for n in range(count):
                await asyncio.sleep(max(0.0, start + n / rate - loop.time()))  # schedule
                await producer.send(topic, value=repr(time.time()).encode(), key=str(n).encode())
            await reader
    finally:
        await producer.stop()
    return {"rate_msgs_per_s": rate, "round_trip": summary_ms(samples)}


async def bench(args: argparse.Namespace, bootstrap: str, home: Path) -> dict[str, Any]:
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    port = free_port()
    env = {
        "RESPONDER_KAFKA__BOOTSTRAP": bootstrap,
        "RESPONDER_KAFKA__TOPIC_PREFIX": prefix,
        "RESPONDER_KAFKA__PARTITIONS": str(PARTITIONS),
        "RESPONDER_INGEST__PORT": str(port),
        "RESPONDER_INGEST__BEARER_TOKEN": TOKEN,
        "RESPONDER_WORKER__APP_ID": f"{prefix}-worker",
        "RESPONDER_WORKER__DATA_DIR": str(home / "worker"),
        "RESPONDER_WORKER__WEB_ENABLED": "false",
        # No runbooks: this bench measures ingest and triage (the worker refuses runbooks
        # that need services it has no settings for, such as the seed set's Kubernetes).
        "RESPONDER_REMEDIATION__RUNBOOKS_DIR": str(home / "no-runbooks"),
    }
    (home / "no-runbooks").mkdir(exist_ok=True)
    await create_topics_async(
        bootstrap,
        {topic_name(prefix, ALERTS): PARTITIONS, topic_name(prefix, INCIDENTS): PARTITIONS},
    )
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/v1/alertmanager"
    result: dict[str, Any] = {"bootstrap": bootstrap, "partitions": PARTITIONS}
    serve = Process(["serve"], env, home / "serve.log")
    worker: Process | None = None
    connector = aiohttp.TCPConnector(limit=0)
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            await wait_ready(session, base)
            # Ingest alone: the worker is not consuming, so it costs the host nothing.
            await closed_loop(session, url, "warmup", seconds=2, concurrency=args.concurrency)
            result["ingest_throughput"] = await closed_loop(
                session, url, "tp", seconds=args.seconds, concurrency=args.concurrency
            )
            result["ingest_at_rate"], _ = await open_loop(
                session, url, "rate", seconds=args.seconds, rate=args.rate, keys_per_request=5
            )
            result["ingest_rss_mib"] = rss_mib(serve.proc.pid)

            worker = Process(["worker", "--loglevel", "warning"], env, home / "worker.log")
            run = uuid.uuid4().hex[:6]
            async with consumer_at_end(bootstrap, topic_name(prefix, INCIDENTS)) as consumer:
                # The worker first drains what the ingest phases produced (no timing), then
                # the measured run starts from a worker that is up and caught up.
                warm = f"warm{run}"
                await post(
                    session, url, json.dumps(request_body(warm, 0, keys_per_request=5)).encode()
                )
                await opened_latencies(consumer, warm, 5, timeout_s=300, worker=worker)
                load = asyncio.create_task(
                    open_loop(
                        session, url, run, seconds=args.seconds, rate=args.rate, keys_per_request=5
                    )
                )
                expected = int(args.seconds * args.rate / BATCH) * 5
                visible, decided = await opened_latencies(
                    consumer, run, expected, timeout_s=args.seconds + 120, worker=worker
                )
                during, _ = await load
            result["received_to_opened"] = {
                "rate_alerts_per_s": args.rate,
                "incidents_opened_per_s": args.rate / BATCH * 5,
                "expected_incidents": expected,
                "visible_on_topic": summary_ms(visible),
                "decided_by_triage": summary_ms(decided),
                "ingest_response_meanwhile": during["response"],
            }
            result["worker_rss_mib"] = rss_mib(worker.proc.pid)
    finally:
        if worker is not None:
            worker.stop()
        serve.stop()
    result["raw_kafka_floor"] = await raw_round_trip(
        bootstrap, seconds=args.seconds, rate=args.rate
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", help="use this broker instead of a private one")
    parser.add_argument("--seconds", type=float, default=15.0, help="duration of each phase")
    parser.add_argument("--rate", type=float, default=1000.0, help="alerts/s for the rate phases")
    parser.add_argument("--concurrency", type=int, default=16, help="clients, throughput phase")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp:
        home = Path(tmp)
        with private_kafka(args.bootstrap, home) as bootstrap:
            result = asyncio.run(bench(args, bootstrap, home))
    result["cpus"] = os.cpu_count()
    # The host is shared: a load average above the CPU count means the figures are contended.
    result["loadavg_1m_before_after"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
