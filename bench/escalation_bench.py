"""Escalation and ChatOps figures on a real broker, a real worker and the real ingest routes.

- Page latency: alert on the broker -> PagerDuty's Events API (the local fake) holds the
  trigger, for incidents whose runbook escalates at once (Slack level, then PagerDuty).
  It crosses triage, the remediation router, the engine, the deadline timer (the PagerDuty
  level is due 0 s after the Slack one), the notify agent and the SDK's HTTPS call.
- Slack latency: alert on the broker -> Slack's message posted (the first level).
- Ack latency: a signed PagerDuty webhook posted to ingest -> the PagerDuty fake holds the
  ``acknowledge`` (ingest, ``responder.commands``, the command router, the engine, notify)
  and -> Slack's message thread shows the acknowledgement.
- The floor: the raw Kafka produce -> consume round trip at the same rate, same broker.

Incidents are fired at ``--rate`` per second; acks are posted at the same rate once every
incident is paged. The local PagerDuty limiter is raised out of the way (the real one allows
about 120 events a minute per routing key; that would be the figure otherwise).

    .venv/bin/python bench/escalation_bench.py                 # 100 incidents at 20/s
    .venv/bin/python bench/escalation_bench.py --incidents 200 --rate 50

Measured at commit e64d7fe on the 2 shared cores (colleagues' jobs running; runs vary 2-5x):

| offered | alert -> Slack p50/p99 | alert -> PD trigger p50/p99 | webhook ack -> PD ack p50/p99 | raw RTT p50/p99 |
|---|---|---|---|---|
| 20/s x 100 | 138 / 510 ms | 326 / 765 ms | 51 / 137 ms | 1.8 / 6.8 ms |
| 50/s x 200 | 2,048 / 3,103 ms | 4,286 / 4,903 ms | 77 / 243 ms | 1.5 / 88 ms |

At 50 new incidents/s the alert path queues (triage and the engine, one worker; see
responder/engine/DESIGN.md); the command path (ingest -> engine -> notify -> PagerDuty)
stays under a quarter second at p99.
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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, web

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "streams"), str(ROOT / "tests" / "e2e")]

from e2e_escalation_support import (  # noqa: E402
    DEFAULT_KEY,
    ONCALL_KEY,
    pagerduty_headers,
    pagerduty_webhook,
    with_integrations,
)
from kafka_floor import paced, private_kafka, raw_round_trip  # noqa: E402
from recording import RecordingWorker, make_settings  # noqa: E402

from responder.ingest.app import create_app  # noqa: E402
from responder.ingest.publisher import KafkaPublisher  # noqa: E402
from responder.ingest.wiring import build_chatops  # noqa: E402
from responder.logging import configure  # noqa: E402
from responder.models.alerts import AlertEvent, AlertStatus, incident_key  # noqa: E402
from responder.models.incidents import incident_id  # noqa: E402
from responder.models.topics import ALERTS, topic_name  # noqa: E402
from responder.settings import Settings  # noqa: E402
from responder_dev.fakes.http import self_signed_cert  # noqa: E402
from responder_dev.fakes.pagerduty_events import FakePagerDuty  # noqa: E402
from responder_dev.fakes.slack_api import FakeSlack  # noqa: E402
from responder_dev.settings import settings_env  # noqa: E402
from responder_dev.stack.kafka import create_topics_async  # noqa: E402
from responder_dev.stack.process import free_port  # noqa: E402

RUNBOOK = """
apiVersion: responder/v1
id: bench
match: {alertname: BenchEscalation}
target: {namespace: bench, name: "{{ labels.service }}"}
auto_recovery: false
cooldown: 0s
steps:
  - action: deployment.restart
    approval: required
    timeout: 60s
    verify: {alert_resolved: true, within: 10m}
escalation:
  after: 0s
  chain:
    - {notify: slack, channel: "#incidents"}
    - {notify: pagerduty, routing_key_ref: oncall, wait: 0s}
    - {notify: slack, channel: "#ops", wait: 10m}
"""


@dataclass(frozen=True)
class Broker:
    bootstrap: str


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(values: Sequence[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"n={len(ms):>5}  p50={pct(ms, 0.5):8.1f} ms  p99={pct(ms, 0.99):8.1f} ms  "
        f"max={max(ms, default=float('nan')):8.1f} ms"
    )


async def wait_until(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)  # polling the fakes


async def run(args: argparse.Namespace, bootstrap: str, home: Path) -> None:
    (home / "tls").mkdir()
    cert, key = self_signed_cert(home / "tls")
    slack = FakeSlack(token="xoxb-1111111111-2222222222-E2eBoTtOkEn")
    pd = FakePagerDuty(cert=cert, key=key, routing_keys={DEFAULT_KEY, ONCALL_KEY})
    await slack.start()
    await pd.start()
    runbooks = home / "runbooks"
    runbooks.mkdir()
    (runbooks / "bench.yaml").write_text(RUNBOOK)
    base = make_settings(Broker(bootstrap), home, "http://127.0.0.1:9", runbooks)
    settings = with_integrations(base, slack.url, pd.url, cert)
    settings = settings.model_copy(
        update={
            "pagerduty": settings.pagerduty.model_copy(update={"events_per_minute": 1_000_000}),
            "ingest": settings.ingest.model_copy(update={"port": free_port()}),
        }
    )
    prefix = settings.kafka.topic_prefix
    names = ("alerts", "incidents", "audit", "remediation", "commands", "remediation-routes")
    names += ("notifications", "command-replies", "bench-rtt")
    await create_topics_async(bootstrap, {f"{prefix}.{n}": 4 for n in names})
    os.environ.update(settings_env(settings, ("slack", "pagerduty", "notify")))
    worker = RecordingWorker(settings, home, record=home / "actions.jsonl", plan=home / "plan.json")
    publisher = KafkaPublisher(
        settings.kafka, topic_name(prefix, ALERTS), retry_after_s=settings.ingest.retry_after_s
    )
    wiring = build_chatops(settings)
    assert wiring is not None
    app = create_app(settings.ingest, publisher)
    wiring.mount(app)
    runner = web.AppRunner(app, access_log=None)
    await publisher.start()
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", settings.ingest.port)
    await site.start()
    ingest = f"http://127.0.0.1:{settings.ingest.port}"
    try:
        await wiring.wait_connected(30)
        await bench(args, settings, slack, pd, wiring, ingest, bootstrap)
    except SystemExit:
        print(worker.log_tail(40))
        raise
    finally:
        await runner.cleanup()
        await publisher.stop()
        worker.stop(timeout_s=30)
        await slack.stop()
        await pd.stop()


async def bench(
    args: argparse.Namespace,
    settings: Settings,
    slack: FakeSlack,
    pd: FakePagerDuty,
    wiring: Any,
    ingest: str,
    bootstrap: str,
) -> None:
    from aiokafka import AIOKafkaProducer

    prefix = settings.kafka.topic_prefix
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=0)
    await producer.start()
    run = uuid.uuid4().hex[:6]
    fired: dict[str, float] = {}

    async def fire(i: int) -> None:
        labels = {"alertname": "BenchEscalation", "namespace": "bench", "service": f"s{run}-{i}"}
        event = AlertEvent(
            incident_key=incident_key(labels),
            fingerprint=f"{run}-{i}",
            status=AlertStatus.FIRING,
            starts_at=datetime.now(UTC),
            labels=labels,
            received_at=datetime.now(UTC),
        )
        iid = str(incident_id(event.incident_key, event.fingerprint, event.starts_at))
        fired[iid] = time.monotonic()
        await producer.send(
            f"{prefix}.alerts",
            key=event.incident_key.encode(),
            value=event.model_dump_json().encode(),
        )

    def events(action: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for e in pd.events:
            if e.body.get("event_action") == action:
                out.setdefault(e.body["dedup_key"], e.at)
        return out

    try:
        # Warm-up: the worker joins its group, tables recover, SDK sessions open.
        await fire(-1)
        await wait_until(lambda: len(events("trigger")) >= 1, 120, "the warm-up page")
        fired.clear()
        await paced(args.rate, args.incidents, fire)
        await wait_until(
            lambda: all(i in events("trigger") for i in fired), 120, "every incident paged"
        )
        triggers = events("trigger")
        page = [triggers[i] - fired[i] for i in fired]
        posts: dict[str, float] = {}
        for call in slack.calls_to("chat.postMessage"):
            body = call.body if isinstance(call.body, dict) else {}
            for i in fired:
                if f"({i})" in str(body.get("text", "")) and "thread_ts" not in body:
                    posts.setdefault(i, call.at)
        slack_post = [posts[i] - fired[i] for i in fired if i in posts]

        await wait_until(lambda: all(i in wiring.view._entries for i in fired), 30, "the view")
        posted: dict[str, float] = {}
        async with ClientSession() as http:

            async def ack(n: int) -> None:
                iid = list(fired)[n]
                body = pagerduty_webhook("incident.acknowledged", iid, event_id=f"E{run}{n}")
                posted[iid] = time.monotonic()
                async with http.post(
                    f"{ingest}/v1/pagerduty",
                    data=body,
                    headers=pagerduty_headers(body, webhook_id=f"w{run}{n}"),
                ) as response:
                    if response.status != 200:
                        raise SystemExit(f"ack refused: {response.status} {await response.text()}")

            await paced(args.rate, len(fired), ack)
        await wait_until(
            lambda: all(i in events("acknowledge") for i in fired), 120, "every acknowledge"
        )
        acks = events("acknowledge")
        ack_pd = [acks[i] - posted[i] for i in fired]
        rtt = await raw_round_trip(bootstrap, f"{prefix}.bench-rtt", args.rate, args.incidents)
    finally:
        await producer.stop()
    threads = sum(1 for m in slack.messages.values() if m.thread_ts is not None)
    print(
        f"incidents: {len(fired)} at {args.rate:.0f}/s; Slack messages {len(slack.top_level())}, thread replies {threads}"
    )
    print(f"alert -> Slack message       {summary(slack_post)}")
    print(f"alert -> PagerDuty trigger   {summary(page)}")
    print(f"webhook ack -> PD acknowledge {summary(ack_pd)}")
    print(f"raw Kafka round trip (floor) {summary(rtt)}")


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap", help="an existing broker (default: start a private one)")
    parser.add_argument("--incidents", type=int, default=100)
    parser.add_argument("--rate", type=float, default=20.0)
    args = parser.parse_args()
    configure(json=True, level="WARNING")
    with tempfile.TemporaryDirectory(prefix="escalation-bench-") as tmp:
        home = Path(tmp)
        with private_kafka(args.bootstrap, home) as bootstrap:
            await run(args, bootstrap, home)


if __name__ == "__main__":
    asyncio.run(main())
