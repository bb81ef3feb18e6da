"""Remediation figures on a real broker and a real worker process.

- Alert received -> first action started, p50/p99, at 100 and 1,000 alerts/s (each alert a
  new incident on its own target, so each one starts an action), beside the raw Kafka
  produce -> consume round trip measured in the same run on the same broker (the floor).
- Escalation timer lateness: every bench incident escalates ``--escalate-after`` seconds
  after opening, under the same load; lateness = when the engine fired the level minus
  when it was due (as recorded in the audit event).
- Worker RSS: sampled every second through the whole run, then over a long tail of
  duplicate-heavy alerts (``--rss-alerts`` over ``--rss-incidents`` incidents).

The worker is ``tests/streams/recording.py`` (``responder worker`` with the recording
action, which writes a line when each action starts). A private Kafka is started on free
ports unless ``--bootstrap`` is given.

    .venv/bin/python bench/remediation_bench.py
    .venv/bin/python bench/remediation_bench.py --seconds 10 --rss-alerts 1000000 --rss-incidents 10000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "streams"))

from kafka_floor import paced, private_kafka, raw_round_trip  # noqa: E402
from recording import RecordingWorker, read_log  # noqa: E402

from responder.models.alerts import AlertEvent, AlertStatus, incident_key  # noqa: E402
from responder.models.incidents import (  # noqa: E402
    AuditEvent,
    IncidentState,
    IncidentTransition,
    incident_id,
)
from responder.settings import (  # noqa: E402
    KafkaSettings,
    RemediationSettings,
    Settings,
    WorkerSettings,
)
from responder_dev.stack.kafka import create_topics_async  # noqa: E402

RUNBOOK = """
apiVersion: responder/v1
id: bench
match: {{alertname: BenchAlert}}
target: {{namespace: bench, name: "{{{{ labels.service }}}}"}}
cooldown: 0s
max_actions: {{count: 1000, per: 1h}}
steps:
  - action: cache.clear
    with: {{pattern: "bench:*"}}
    timeout: 60s
    verify: {{alert_resolved: true, within: 10m}}
escalation:
  after: {after}s
  chain:
    - {{notify: slack, channel: "#bench"}}
"""


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(values: Sequence[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"n={len(ms):>6}  p50={pct(ms, 0.5):8.1f} ms  p99={pct(ms, 0.99):8.1f} ms  max={max(ms, default=float('nan')):8.1f} ms"


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


class RssSampler:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, float]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        t0 = time.monotonic()
        while True:
            self.samples.append((time.monotonic() - t0, rss_mb(self.pid)))
            await asyncio.sleep(1.0)  # sampling period

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def alert(service: str, *, pod: str = "p0", starts: datetime | None = None) -> AlertEvent:
    labels = {"alertname": "BenchAlert", "namespace": "bench", "service": service, "pod": pod}
    now = datetime.now(UTC)
    return AlertEvent(
        incident_key=incident_key(labels),
        fingerprint=f"{service}-{pod}",
        status=AlertStatus.FIRING,
        starts_at=starts or now,
        labels=labels,
        received_at=now,
    )


def transition(event: AlertEvent) -> IncidentTransition:
    """What triage publishes when this alert opens its incident."""
    return IncidentTransition(
        incident_id=incident_id(event.incident_key, event.fingerprint, event.starts_at),
        incident_key=event.incident_key,
        seq=1,
        from_state=None,
        to_state=IncidentState.OPEN,
        at=event.received_at,
        cause_fingerprint=event.fingerprint,
        alert_received_at=event.received_at,
        labels=event.labels,
    )


async def first_action_latency(
    producer: AIOKafkaProducer,
    prefix: str,
    record: Path,
    rate: float,
    seconds: float,
    tag: str,
    *,
    skip_triage: bool = False,
) -> tuple[list[float], float, int]:
    """Latency from the alert (or, with ``skip_triage``, its incident transition) to its action."""
    count = int(rate * seconds)
    received: dict[str, float] = {}

    async def send(i: int) -> None:
        event = alert(f"{tag}-{i}")
        received[f"bench/{tag}-{i}"] = event.received_at.timestamp()
        if skip_triage:
            value = transition(event).model_dump_json().encode()
            await producer.send(f"{prefix}.incidents", key=event.incident_key.encode(), value=value)
        else:
            value = event.model_dump_json().encode()
            await producer.send(f"{prefix}.alerts", key=event.incident_key.encode(), value=value)

    achieved = await paced(rate, count, send)
    await producer.flush()
    deadline = time.monotonic() + max(60.0, seconds * 6)
    started: dict[str, float] = {}
    while time.monotonic() < deadline and len(started) < count:
        for r in read_log(record):
            if r["event"] == "begin":
                target = r["target"].split("/", 1)[1]  # "deployment/bench/<name>"
                if target in received:
                    started.setdefault(target, r["at"])
        await asyncio.sleep(0.5)  # poll the recording file
    return [started[k] - received[k] for k in started], achieved, count - len(started)


async def read_audit(bootstrap: str, audit_topic: str) -> list[AuditEvent]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    out: list[AuditEvent] = []
    try:
        tps = [TopicPartition(audit_topic, p) for p in range(4)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                out.extend(AuditEvent.model_validate_json(m.value) for m in messages)
    finally:
        await consumer.stop()
    return out


def breakdown(audit: list[AuditEvent], tag: str) -> str:
    """Median time of each hop for the incidents of one load phase."""
    hops: dict[str, dict[str, float]] = {}
    for event in audit:
        if f"/{tag}-" not in event.incident_key and f":bench/{tag}-" not in event.incident_key:
            continue
        key = event.incident_id
        hops.setdefault(key, {})
        if event.kind == "incident.open":
            hops[key]["received"] = datetime.fromisoformat(
                event.data["alert_received_at"]
            ).timestamp()
            hops[key]["triaged"] = event.at.timestamp()
        elif event.kind in ("remediation.opened", "remediation.action_started"):
            hops[key][event.kind.split(".")[1]] = event.at.timestamp()
    parts = []
    for a, b in (("received", "triaged"), ("triaged", "opened"), ("opened", "action_started")):
        d = [h[b] - h[a] for h in hops.values() if a in h and b in h]
        parts.append(f"{a}->{b} p50 {pct(d, 0.5) * 1000:.1f} ms p99 {pct(d, 0.99) * 1000:.1f} ms")
    return "; ".join(parts)


async def escalation_lateness(bootstrap: str, audit_topic: str) -> dict[str, list[float]]:
    """Escalation lateness (s) by load phase: the phase tag in the incident's target name."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    out: dict[str, list[float]] = {}
    try:
        tps = [TopicPartition(audit_topic, p) for p in range(4)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                for m in messages:
                    event = AuditEvent.model_validate_json(m.value)
                    if event.kind == "remediation.escalated":
                        # incident keys end in "bench/<tag>-<n>"
                        tag = event.incident_key.rsplit("/", 1)[-1].rsplit("-", 1)[0]
                        out.setdefault(tag, []).append(float(event.data["lateness_s"]))
    finally:
        await consumer.stop()
    return out


async def wait_drained(bootstrap: str, group: str, topic: str, *, timeout_s: float) -> float | None:
    """``time.monotonic()`` when ``group`` has committed every record of ``topic`` (None: not in time)."""
    t0 = time.monotonic()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(4)]
        ends = await consumer.end_offsets(tps)
        while time.monotonic() - t0 < timeout_s:
            committed = [await consumer.committed(tp) or 0 for tp in tps]
            if all(c >= ends[tp] for c, tp in zip(committed, tps, strict=True)):
                return time.monotonic()
            await asyncio.sleep(1.0)
        return None
    finally:
        await consumer.stop()


async def run(args: argparse.Namespace, bootstrap: str, home: Path) -> None:
    run_id = uuid.uuid4().hex[:8]
    runbooks = home / "runbooks"
    runbooks.mkdir()
    (runbooks / "bench.yaml").write_text(RUNBOOK.format(after=args.escalate_after))
    settings = Settings(
        kafka=KafkaSettings(bootstrap=bootstrap, topic_prefix=f"bench{run_id}", partitions=4),
        worker=WorkerSettings(
            app_id=f"bench-{run_id}",
            store="rocksdb://",
            data_dir=str(home / "worker"),
            web_enabled=False,
        ),
        remediation=RemediationSettings(runbooks_dir=str(runbooks)),
    )
    prefix = settings.kafka.topic_prefix
    names = (
        "alerts",
        "incidents",
        "audit",
        "remediation",
        "commands",
        "remediation-routes",
        "notifications",
        "bench-rtt",
    )
    await create_topics_async(bootstrap, {f"{prefix}.{n}": 4 for n in names})
    record = home / "actions.jsonl"
    if args.exactly_once:
        os.environ["RECORDING_PROCESSING_GUARANTEE"] = "exactly_once"
    worker = RecordingWorker(settings, home, record=record, plan=home / "plan.json")
    # More worker processes share the partitions (each its own table store); the first
    # one's RSS is sampled.
    others = [
        RecordingWorker(
            settings.model_copy(
                update={
                    "worker": settings.worker.model_copy(
                        update={"data_dir": str(home / f"worker{n}")}
                    )
                }
            ),
            home,
            record=record,
            plan=home / "plan.json",
        )
        for n in range(1, args.workers)
    ]
    sampler = RssSampler(worker.process.pid)
    sampler.start()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        warm, _, missing = await first_action_latency(producer, prefix, record, 20, 1, "warmup")
        if missing:
            raise SystemExit(
                f"worker did not start actions for the warm-up alerts; see {worker.log_path}"
            )
        print(f"warm-up: {summary(warm)}")
        for rate in args.rates:
            rtt = await raw_round_trip(
                bootstrap, f"{prefix}.bench-rtt", rate, int(rate * args.seconds)
            )
            lat, achieved, missing = await first_action_latency(
                producer, prefix, record, rate, args.seconds, f"r{int(rate)}"
            )
            print(
                f"\n{rate:>6.0f} alerts/s offered, {achieved:7.1f} achieved, {args.seconds:.0f} s:"
            )
            print(f"  raw Kafka round trip       {summary(rtt)}")
            print(f"  alert -> first action      {summary(lat)}   missing={missing}")
            if rtt and lat:
                print(
                    f"  ratio p50 {pct(lat, 0.5) / pct(rtt, 0.5):6.1f}x   p99 {pct(lat, 0.99) / pct(rtt, 0.99):6.1f}x"
                )
            await asyncio.sleep(args.escalate_after + 2)  # let this phase's escalations drain
            rem, achieved, missing = await first_action_latency(
                producer, prefix, record, rate, args.seconds, f"t{int(rate)}", skip_triage=True
            )
            print(
                f"  transition -> first action {summary(rem)}   missing={missing}"
                "  (remediation alone: router, engine, ledger, action task)"
            )
            await asyncio.sleep(args.escalate_after + 2)  # and this one's
        audit = await read_audit(bootstrap, f"{prefix}.audit")
        for rate in args.rates:
            print(f"  hops at {rate:.0f}/s: {breakdown(audit, f'r{int(rate)}')}")
        # Let every bench incident's escalation fall due and fire.
        await asyncio.sleep(
            args.escalate_after + 3
        )  # the escalation deadline of the last incidents
        lateness = await escalation_lateness(bootstrap, f"{prefix}.audit")
        print()
        for rate in args.rates:
            for tag in (f"r{int(rate)}", f"t{int(rate)}"):
                print(f"escalation lateness {tag:>6} {summary(lateness.get(tag, []))}")
        if args.rss_alerts:
            before = rss_mb(worker.process.pid)
            starts = datetime.now(UTC)
            t0 = time.monotonic()
            for i in range(args.rss_alerts):
                event = alert(
                    f"rss-{i % args.rss_incidents}",
                    pod=f"p{(i // args.rss_incidents) % 5}",
                    starts=starts,
                )
                await producer.send(
                    f"{prefix}.alerts",
                    key=event.incident_key.encode(),
                    value=event.model_dump_json().encode(),
                )
                if i % 10_000 == 0:
                    await producer.flush()
            await producer.flush()
            produced_s = time.monotonic() - t0
            print(
                f"\nRSS phase: {args.rss_alerts} alerts over {args.rss_incidents} incidents "
                f"produced in {produced_s:.1f} s; RSS before {before:.0f} MB"
            )
            drained_at = await wait_drained(
                bootstrap, settings.worker.app_id, f"{prefix}.alerts", timeout_s=args.rss_drain
            )
            if drained_at is None:
                print(f"  not drained within {args.rss_drain:.0f} s")
            else:
                drained_s = drained_at - t0
                print(
                    f"  triage drained them {drained_s:.1f} s after the first was sent: "
                    f"{args.rss_alerts / drained_s:,.0f} alerts/s; RSS {rss_mb(worker.process.pid):.0f} MB"
                )
            await asyncio.sleep(args.rss_settle)  # verify windows expire, escalations fire
            print(
                f"RSS after a further {args.rss_settle:.0f} s: {rss_mb(worker.process.pid):.0f} MB"
            )
    finally:
        await producer.stop()
        await sampler.stop()
        for w in [worker, *others]:
            w.stop(timeout_s=30)
    trend = sampler.samples
    if trend:
        step = max(1, len(trend) // 12)
        print(
            "\nworker RSS (s, MB): "
            + "  ".join(f"{t:.0f}:{m:.0f}" for t, m in trend[::step])
            + f"  end:{trend[-1][1]:.0f}"
        )
        print(f"worker RSS peak {max(m for _, m in trend):.0f} MB")


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap", help="an existing broker (default: start a private one)")
    parser.add_argument("--rates", type=float, nargs="+", default=[100.0, 1000.0])
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds of load per rate")
    parser.add_argument("--escalate-after", type=int, default=5)
    parser.add_argument("--rss-alerts", type=int, default=0)
    parser.add_argument("--rss-incidents", type=int, default=10_000)
    parser.add_argument("--rss-settle", type=float, default=60.0)
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes sharing the 4 partitions"
    )
    parser.add_argument(
        "--rss-drain", type=float, default=3600.0, help="seconds to wait for triage to drain"
    )
    parser.add_argument(
        "--exactly-once",
        action="store_true",
        help="run the worker with Faust's processing_guarantee=exactly_once (transactions)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="remediation-bench-") as tmp:
        home = Path(tmp)
        with private_kafka(args.bootstrap, home) as bootstrap:
            await run(args, bootstrap, home)


if __name__ == "__main__":
    asyncio.run(main())
