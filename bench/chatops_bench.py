"""ChatOps edge figures: latency (p50/p95/p99) and throughput of signed Slack commands and
PagerDuty webhooks through the real routes on a loopback server, against a baseline route
on the same server that answers 200 without verifying, parsing or queueing anything.

    .venv/bin/python bench/chatops_bench.py                  # 2,000 requests each, 20 in flight
    .venv/bin/python bench/chatops_bench.py -n 10000 -c 50

Slack gives up after 3 s and PagerDuty after 5 s; the figure that matters is how far p99
stays below that with the sink answering at once (the broker's own latency comes on top).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import resource
import statistics
import time
import urllib.parse
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import aiohttp
from aiohttp import web
from pydantic import SecretStr

from responder.ingest.chatops import ChatOps
from responder.integrations.base import InboundAudit
from responder.logging import configure
from responder.models.commands import Command
from responder.models.notifications import IncidentPhase, IncidentSummary
from responder.settings import ChatOpsAllowList, PagerDutySettings, SlackSettings

SLACK_SECRET = "bench-signing-secret"
PD_SECRET = "bench-webhook-secret"
INCIDENT = "5d0c1a52-7a41-4c7e-9a57-6f2b1f0c2d11"


class Sink:
    def __init__(self) -> None:
        self.count = 0

    async def publish(self, command: Command) -> None:
        self.count += 1


class Reader:
    def __init__(self) -> None:
        self.incident = IncidentSummary(
            id=INCIDENT,
            runbook_id="high_generation_latency",
            title="HighGenerationLatency",
            phase=IncidentPhase.ESCALATED,
            opened_at=datetime.now(UTC),
        )

    async def list_open(self, limit: int) -> Sequence[IncidentSummary]:
        return [self.incident]

    async def get(self, incident_id: str) -> IncidentSummary | None:
        return self.incident if incident_id == INCIDENT else None


class Audit:
    async def emit(self, record: InboundAudit) -> None:
        return None


def slack_request(i: int) -> tuple[bytes, dict[str, str]]:
    body = urllib.parse.urlencode(
        {
            "command": "/responder",
            "text": f"ack {INCIDENT}",
            "user_id": "U0BENCH",
            "user_name": "bench",
            "team_id": "T0",
            "trigger_id": f"trigger-{i}",
            "response_url": "",
        }
    ).encode()
    ts = str(int(time.time()))
    sig = (
        "v0="
        + hmac.new(
            SLACK_SECRET.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256
        ).hexdigest()
    )
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": sig,
    }
    return body, headers


def pagerduty_request(i: int) -> tuple[bytes, dict[str, str]]:
    event = {
        "event": {
            "id": f"evt-{i}",
            "event_type": "incident.acknowledged",
            "resource_type": "incident",
            "occurred_at": "2026-11-30T03:00:00Z",
            "agent": {"id": "PUSER", "type": "user_reference", "summary": "bench"},
            "data": {"id": "PINC", "type": "incident", "incident_key": INCIDENT},
        }
    }
    body = json.dumps(event).encode()
    sig = "v1=" + hmac.new(PD_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body, {
        "Content-Type": "application/json",
        "X-PagerDuty-Signature": sig,
        "X-Webhook-Id": f"wh-{i}",
    }


def baseline_request(i: int) -> tuple[bytes, dict[str, str]]:
    return slack_request(i)


async def run(
    session: aiohttp.ClientSession,
    url: str,
    make: Callable[[int], tuple[bytes, dict[str, str]]],
    n: int,
    concurrency: int,
) -> tuple[list[float], float]:
    requests = [make(i) for i in range(n)]
    latencies: list[float] = []
    queue = iter(requests)
    started = time.perf_counter()

    async def worker() -> None:
        for body, headers in queue:
            t0 = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"{url}: HTTP {response.status}")
            latencies.append(time.perf_counter() - t0)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started


def describe(name: str, latencies: list[float], elapsed: float, baseline_p50: float | None) -> str:
    q = statistics.quantiles(latencies, n=100)
    p50, p95, p99 = q[49] * 1000, q[94] * 1000, q[98] * 1000
    ratio = f" ({p50 / baseline_p50:.2f}x baseline p50)" if baseline_p50 else ""
    return (
        f"{name:<16} p50 {p50:6.2f} ms  p95 {p95:6.2f} ms  p99 {p99:6.2f} ms  "
        f"{len(latencies) / elapsed:8.0f} req/s{ratio}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("-c", type=int, default=20)
    args = parser.parse_args()
    configure(json=True, level="WARNING")  # audit lines at INFO would time the terminal

    sink = Sink()
    ops = ChatOps(
        sink=sink,
        reader=Reader(),
        audit=Audit(),
        slack=SlackSettings(
            signing_secret=SecretStr(SLACK_SECRET),
            allow=ChatOpsAllowList(users=frozenset({"U0BENCH"})),
        ),
        pagerduty=PagerDutySettings(webhook_secrets=(SecretStr(PD_SECRET),)),
    )

    async def baseline(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"response_type": "ephemeral", "text": "ok"})

    app = web.Application()
    app.add_routes(ops.routes())
    app.router.add_post("/baseline", baseline)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    base = f"http://{host}:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            await run(session, f"{base}/baseline", baseline_request, 200, args.c)  # warm-up
            lat, el = await run(session, f"{base}/baseline", baseline_request, args.n, args.c)
            base_p50 = statistics.median(lat) * 1000
            print(f"{args.n} requests per route, {args.c} in flight, loopback")
            print(describe("baseline 200", lat, el, None))
            lat, el = await run(session, f"{base}/v1/slack/commands", slack_request, args.n, args.c)
            print(describe("slack command", lat, el, base_p50))
            lat, el = await run(session, f"{base}/v1/pagerduty", pagerduty_request, args.n, args.c)
            print(describe("pagerduty hook", lat, el, base_p50))
    finally:
        await ops.close()
        await runner.cleanup()
    assert sink.count == 2 * args.n, sink.count
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"commands queued: {sink.count}; max RSS {rss_mb:.0f} MB")


if __name__ == "__main__":
    asyncio.run(main())
