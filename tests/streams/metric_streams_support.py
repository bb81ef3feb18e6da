"""Helpers of the metric-streams end-to-end tests: an exporter the test sets values on,
definition files, the worker's settings, and reading what the worker published."""

from __future__ import annotations

import asyncio
import re
import urllib.request
from collections.abc import Callable
from pathlib import Path

from e2e_support import alerts_topic, incidents_topic, read_topic
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from responder.models.alerts import AlertEvent
from responder.models.incidents import IncidentState, IncidentTransition
from responder.settings import AlertingSettings, Settings, WorkerSettings
from responder_dev.stack.process import free_port


class Exporter:
    """A /metrics endpoint on a loopback port, one gauge whose series the test sets."""

    def __init__(self, metric: str, labels: tuple[str, ...]) -> None:
        self.registry = CollectorRegistry()
        self.gauge = Gauge(metric, "set by the test", labels, registry=self.registry)
        self.port = free_port()
        self.server, self.thread = start_http_server(
            self.port, addr="127.0.0.1", registry=self.registry
        )
        self.target = f"127.0.0.1:{self.port}"

    def set(self, value: float, **labels: str) -> None:
        self.gauge.labels(**labels).set(value)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def write_definition(
    directory: Path, name: str, expr: str, *, hold: str, interval: str = "1s", extra: str = ""
) -> None:
    directory.mkdir(exist_ok=True)
    (directory / f"{name}.yaml").write_text(
        "apiVersion: responder/v1\n"
        f"name: {name}\n"
        f"expr: '{expr}'\n"
        f"for: {hold}\n"
        f"interval: {interval}\n"
        "severity: warning\n"
        'annotations: {summary: "{{ labels.engine }} is slow"}\n'
        "context: true\n" + extra
    )


def with_alerting(settings: Settings, definitions: Path, prometheus_url: str) -> Settings:
    """The settings with metric streams on and the worker's web server on a free port."""
    worker = settings.worker.model_dump() | {"web_enabled": True, "web_port": free_port()}
    return settings.model_copy(
        update={
            "alerting": AlertingSettings(
                definitions_dir=str(definitions),
                prometheus_url=prometheus_url,
                query_timeout_s=2.0,
                backoff_base_s=0.5,
                backoff_max_s=2.0,
            ),
            "worker": WorkerSettings(**worker),
        }
    )


def worker_metric(settings: Settings, name: str, **labels: str) -> float | None:
    """One sample of the worker's own /metrics (None: not there, or the worker not up)."""
    url = f"http://127.0.0.1:{settings.worker.web_port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # 127.0.0.1 only
            text = response.read().decode()
    except OSError:
        return None
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        found = re.fullmatch(rf"{re.escape(name)}\{{(.*)\}} (\S+)", line)
        if found and ",".join(sorted(found.group(1).split(","))) == wanted:
            return float(found.group(2))
    return None


async def wait_for(
    condition: Callable[[], bool], *, timeout_s: float, what: str, every_s: float = 0.2
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(every_s)  # polling the worker's state, with a deadline


async def transitions(
    settings: Settings,
    *,
    timeout_s: float = 5.0,
    until: Callable[[list[IncidentTransition]], bool] | None = None,
) -> list[IncidentTransition]:
    def parse(records: list[tuple[bytes, bytes, int]]) -> list[IncidentTransition]:
        return [IncidentTransition.model_validate_json(value) for _, value, _ in records]

    records = await read_topic(
        settings.kafka.bootstrap,
        incidents_topic(settings),
        until=None if until is None else (lambda r: until(parse(r))),
        timeout_s=timeout_s,
    )
    return parse(records)


async def alert_events(settings: Settings, *, timeout_s: float = 5.0) -> list[AlertEvent]:
    records = await read_topic(
        settings.kafka.bootstrap, alerts_topic(settings), timeout_s=timeout_s
    )
    return [AlertEvent.model_validate_json(value) for _, value, _ in records]


def opened(found: list[IncidentTransition]) -> list[IncidentTransition]:
    return [t for t in found if t.to_state is IncidentState.OPEN]


def resolved(found: list[IncidentTransition]) -> list[IncidentTransition]:
    return [t for t in found if t.to_state is IncidentState.RESOLVED]
