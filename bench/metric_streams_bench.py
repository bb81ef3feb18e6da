"""Metric streams figures: poll + evaluate cost per cycle, and detection latency by both paths.

- Cost: one definition whose expression returns 10,000 series (a real Prometheus scraping an
  exporter of the bench's own). Per cycle: the query through prometheus-api-client (wall and
  CPU ms of this process, the thread included), the publish-side serialisation, and the
  evaluator's work per series (parse the record, run the state machine, write the state's
  JSON) plus the absence sweep, all in-process without the broker. RSS after the cycles.
- Detection latency: a gauge crosses its threshold -> the incident opened on
  ``responder.incidents``, by a definition (poller -> responder.metrics -> evaluator ->
  responder.alerts -> triage) and, in the same run, by a Prometheus rule (Prometheus ->
  Alertmanager -> webhook -> ingest -> triage). Both with ``for: 0s``, Prometheus' scrape
  and evaluation interval and the definition's interval 1 s, Alertmanager group_wait 0 s.

    .venv/bin/python bench/metric_streams_bench.py                    # 10,000 series, 5 rounds
    .venv/bin/python bench/metric_streams_bench.py --series 2000 --rounds 3

Measured at commit a77678f (+ this script) on the 2 shared cores (colleagues' jobs running):

| 1 definition x 10,000 series, per cycle (median) | |
|---|---|
| query (prometheus-api-client, JSON decode in its thread) | 185 ms wall, 111 ms CPU |
| samples built and serialised for responder.metrics | 204 ms CPU |
| evaluator: parse, state machine, state JSON, absence sweep | 201 ms CPU |
| total CPU per cycle | ~516 ms (so a 10,000-series definition wants interval >= 5 s) |
| RSS of the process | 81 -> 112 MiB; state 308 bytes of JSON per series |

| detection latency, threshold crossed -> incident opened (4 rounds) | median | max |
|---|---|---|
| definition (poller 1 s -> metrics -> evaluator -> alerts -> triage) | 1,031 ms | 2,136 ms |
| Prometheus rule (eval 1 s) -> Alertmanager (group_wait 0) -> webhook | 380 ms | 1,557 ms |

The definition path is slower by about one interval: the poller queries at the start of its
interval, so a crossing waits for the next scrape and the next evaluation, and the result
then crosses two topics. Prometheus evaluates its rule right after the scrape that saw it.
The first round of each includes the consumer groups settling.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "streams"), str(ROOT / "bench")]

from e2e_support import WorkerProcess, incidents_topic, read_topic  # noqa: E402
from kafka_floor import private_kafka  # noqa: E402
from metric_streams_support import Exporter, with_alerting, write_definition  # noqa: E402
from pydantic import SecretStr, TypeAdapter  # noqa: E402

from responder.alerting.loader import load_definitions  # noqa: E402
from responder.alerting.poller import PrometheusQuery  # noqa: E402
from responder.alerting.rule import Absent, Present, SeriesState, Timing, step  # noqa: E402
from responder.ingest.app import create_app  # noqa: E402
from responder.ingest.publisher import KafkaPublisher  # noqa: E402
from responder.logging import configure  # noqa: E402
from responder.models.incidents import IncidentState, IncidentTransition  # noqa: E402
from responder.models.metrics import MetricRecord, MetricSample, series_key  # noqa: E402
from responder.models.topics import ALERTS, topic_name  # noqa: E402
from responder.settings import (  # noqa: E402
    IngestSettings,
    KafkaSettings,
    RemediationSettings,
    Settings,
    WorkerSettings,
)
from responder_dev.settings import StackSettings  # noqa: E402
from responder_dev.stack.alertmanager import Alertmanager  # noqa: E402
from responder_dev.stack.kafka import create_topics_async  # noqa: E402
from responder_dev.stack.process import free_port  # noqa: E402
from responder_dev.stack.prometheus import Prometheus  # noqa: E402

TOKEN = "bench-token"
RECORD: TypeAdapter[Any] = TypeAdapter(MetricRecord)


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def wait_until(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)  # polling the servers, with a deadline


def start_prometheus(home: Path, targets: dict[str, list[str]], **wiring: Any) -> Prometheus:
    stack = StackSettings()
    server = Prometheus(
        home,
        port=free_port(),
        scrape_targets=targets,
        scrape_interval_s=1,
        start_timeout_s=stack.start_timeout_s,
        **wiring,
    )
    server.start()
    return server


async def cost(args: argparse.Namespace, home: Path) -> None:
    exporter = Exporter("bench_series_value", ("namespace", "engine", "i"))
    for i in range(args.series):
        exporter.set(0.5, namespace="bench", engine=f"e{i % 50}", i=str(i))
    prometheus = start_prometheus(home / "prom-cost", {"exporter": [exporter.target]})
    query = PrometheusQuery(prometheus.url, 30.0)
    expr = "bench_series_value > 0.2"
    write_definition(home / "cost-alerts", "bench_cost", expr, hold="1m", interval="1s")
    loaded = load_definitions(home / "cost-alerts").definitions
    assert loaded is not None
    definition = loaded.by_name["bench_cost"]
    timing = Timing.of(definition)
    try:

        async def full() -> bool:
            return len(await query(expr, time.time())) >= args.series

        await wait_until(full, 120, f"{args.series} series scraped")
        states: dict[bytes, bytes] = {}
        rows: list[tuple[float, float, float, float, float]] = []
        rss_before = rss_mib()
        for cycle in range(args.cycles):
            at = time.time()
            wall, cpu = time.perf_counter(), time.process_time()
            result = await query(expr, at)
            q_wall, q_cpu = time.perf_counter() - wall, time.process_time() - cpu
            cpu = time.process_time()
            wire = [
                (
                    series_key(definition.name, labels).encode(),
                    MetricSample(definition=definition.name, at=at, labels=labels, value=value)
                    .model_dump_json()
                    .encode(),
                )
                for labels, value in result
            ]
            publish_cpu = time.process_time() - cpu
            cpu = time.process_time()
            for key, value in wire:
                sample = RECORD.validate_json(value)
                stored = states.get(key)
                current = None if stored is None else SeriesState.model_validate_json(stored)
                seen = Present(sample.at, sample.value, sample.labels, definition.name, 0)
                after = step(current, seen, timing).state
                if after is not None and after != current:
                    states[key] = after.model_dump_json().encode()
            for stored in states.values():  # the sweep: every series present, no change
                state = SeriesState.model_validate_json(stored)
                step(state, Absent(at), timing) if state.last_seen < at else None
            evaluate_cpu = time.process_time() - cpu
            rows.append(
                (q_wall * 1000, q_cpu * 1000, publish_cpu * 1000, evaluate_cpu * 1000, len(result))
            )
            print(
                f"cycle {cycle}: {len(result)} series  query {q_wall * 1000:7.1f} ms wall "
                f"{q_cpu * 1000:7.1f} ms CPU  serialise {publish_cpu * 1000:6.1f} ms CPU  "
                f"evaluate {evaluate_cpu * 1000:7.1f} ms CPU"
            )
        med = [statistics.median(r[i] for r in rows[1:] or rows) for i in range(4)]
        print(
            f"\n1 definition x {args.series} series, median of cycles 2..{args.cycles}: "
            f"query {med[0]:.0f} ms wall / {med[1]:.0f} ms CPU, serialise {med[2]:.0f} ms CPU, "
            f"evaluate {med[3]:.0f} ms CPU => {med[1] + med[2] + med[3]:.0f} ms CPU per cycle; "
            f"RSS {rss_before:.0f} -> {rss_mib():.0f} MiB "
            f"(state: {sum(len(v) for v in states.values()) / len(states):.0f} bytes/series JSON)"
        )
    finally:
        query.close()
        prometheus.stop()
        exporter.close()


def rule_file(home: Path) -> Path:
    path = home / "bench-rules.yml"
    path.write_text(
        "groups:\n  - name: bench\n    interval: 1s\n    rules:\n"
        "      - alert: BenchLatencyRule\n"
        "        expr: bench_latency_seconds > 0.2\n"
        "        for: 0s\n"
        "        labels: {severity: warning}\n"
    )
    return path


async def latency(args: argparse.Namespace, home: Path, bootstrap: str) -> None:
    run = uuid.uuid4().hex[:8]
    exporter = Exporter("bench_latency_seconds", ("namespace", "engine", "round"))
    ingest_port = free_port()
    stack = StackSettings()
    alertmanager = Alertmanager(
        home / "am",
        port=free_port(),
        webhook_url=f"http://127.0.0.1:{ingest_port}/v1/alertmanager",
        token=TOKEN,
        group_by=("alertname", "round"),
        group_wait_s=0,
        group_interval_s=1,
        start_timeout_s=stack.start_timeout_s,
    )
    alertmanager.start()
    prometheus = start_prometheus(
        home / "prom-latency",
        {"exporter": [exporter.target]},
        alertmanager=f"127.0.0.1:{alertmanager.port}",
        rule_files=[str(rule_file(home))],
    )
    runbooks = home / "runbooks"
    runbooks.mkdir()
    write_definition(
        home / "alerts", "BenchLatencyDef", "bench_latency_seconds > 0.2", hold="0s", interval="1s"
    )
    settings = Settings(
        kafka=KafkaSettings(bootstrap=bootstrap, topic_prefix=f"b{run}", partitions=4),
        ingest=IngestSettings(port=ingest_port, bearer_token=SecretStr(TOKEN)),
        worker=WorkerSettings(
            app_id=f"bench-{run}", data_dir=str(home / "worker"), web_enabled=False
        ),
        remediation=RemediationSettings(runbooks_dir=str(runbooks)),
    )
    settings = with_alerting(settings, home / "alerts", prometheus.url)
    names = ("alerts", "incidents", "audit", "remediation", "commands", "remediation-routes")
    names += ("notifications", "command-replies", "metrics")
    await create_topics_async(bootstrap, {f"b{run}.{n}": 4 for n in names})
    publisher = KafkaPublisher(
        settings.kafka, topic_name(settings.kafka.topic_prefix, ALERTS), retry_after_s=1
    )
    await publisher.start()
    runner = web.AppRunner(create_app(settings.ingest, publisher), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", ingest_port).start()
    worker = WorkerProcess(settings, home / "worker.log")
    by_def: list[float] = []
    by_rule: list[float] = []
    try:
        for k in range(args.rounds):
            labels = {"namespace": "bench", "engine": "melody", "round": f"{run}-{k}"}
            exporter.set(0.1, **labels)
            await asyncio.sleep(3)  # the healthy value scraped and evaluated first (pacing)
            crossed = time.time()
            exporter.set(0.5, **labels)

            def both(records: list[tuple[bytes, bytes, int]], r: str = labels["round"]) -> bool:
                opened = {
                    t.labels.get("alertname")
                    for t in (IncidentTransition.model_validate_json(v) for _, v, _ in records)
                    if t.to_state is IncidentState.OPEN and t.labels.get("round") == r
                }
                return opened >= {"BenchLatencyDef", "BenchLatencyRule"}

            records = await read_topic(
                bootstrap, incidents_topic(settings), until=both, timeout_s=120
            )
            if not both(records):
                print(worker.log_tail(40))
                raise SystemExit(f"round {k}: not both incidents opened")
            for _, value, _ in records:
                t = IncidentTransition.model_validate_json(value)
                if t.to_state is IncidentState.OPEN and t.labels.get("round") == labels["round"]:
                    took = t.at.timestamp() - crossed
                    (by_def if t.labels["alertname"] == "BenchLatencyDef" else by_rule).append(took)
            print(
                f"round {k}: definition {by_def[-1] * 1000:6.0f} ms   "
                f"rule->Alertmanager->webhook {by_rule[-1] * 1000:6.0f} ms"
            )
            exporter.set(0.1, **labels)
        print(
            f"\ndetection latency over {args.rounds} rounds (threshold crossed -> incident "
            f"opened): definition median {statistics.median(by_def) * 1000:.0f} ms, "
            f"max {max(by_def) * 1000:.0f} ms; Prometheus rule -> Alertmanager -> webhook "
            f"median {statistics.median(by_rule) * 1000:.0f} ms, max {max(by_rule) * 1000:.0f} ms"
        )
    finally:
        await asyncio.to_thread(worker.stop, timeout_s=30)
        await runner.cleanup()
        await publisher.stop()
        prometheus.stop()
        alertmanager.stop()
        exporter.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--cycles", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--bootstrap", default=None, help="an existing broker (default: own)")
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args()
    configure(json=False, level="WARNING")
    with tempfile.TemporaryDirectory(prefix="metric-streams-bench-") as tmp:
        home = Path(tmp)
        await cost(args, home)
        if not args.skip_latency:
            with private_kafka(args.bootstrap, home) as bootstrap:
                await latency(args, home, bootstrap)


if __name__ == "__main__":
    asyncio.run(main())
