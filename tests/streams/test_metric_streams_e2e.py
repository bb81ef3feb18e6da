"""Metric streams end to end: a real Prometheus scraping an exporter the test controls, the
real worker evaluating definitions, incidents on responder.incidents."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from e2e_support import TOKEN, WorkerProcess, read_topic
from metric_streams_support import (
    Exporter,
    alert_events,
    opened,
    resolved,
    transitions,
    wait_for,
    with_alerting,
    worker_metric,
    write_definition,
)

from responder.alerting.rule import SeriesState
from responder.models.alerts import AlertStatus, label_fingerprint
from responder.models.incidents import Incident
from responder.models.topics import ALERT_RULES_TABLE, INCIDENTS_TABLE
from responder.settings import Settings
from responder_dev.stack.service import start_async, stop_async

pytestmark = pytest.mark.slow

METRIC = "e2e_generation_latency_seconds"


@pytest.fixture
def exporter(prometheus: Any) -> Iterator[Exporter]:
    exporter = Exporter(METRIC, ("namespace", "engine", "run"))
    prometheus.configure(scrape_targets={"exporter": [exporter.target]}, rule_files=[])
    try:
        yield exporter
    finally:
        prometheus.configure(scrape_targets={}, rule_files=[])
        exporter.close()


async def fresh(settings: Settings, name: str, *, timeout_s: float) -> None:
    """Until the worker's last evaluation of ``name`` succeeded."""
    await wait_for(
        lambda: worker_metric(settings, "responder_alert_definition_stale", definition=name) == 0,
        timeout_s=timeout_s,
        what=f"a successful evaluation of {name}",
    )


async def more_evaluations(settings: Settings, name: str, count: int) -> None:
    """Until the worker has published ``count`` more successful evaluations of ``name``."""

    def done() -> float:
        metric = "responder_metric_poll_duration_seconds_count"
        return worker_metric(settings, metric, definition=name) or 0.0

    target = done() + count
    await wait_for(lambda: done() >= target, timeout_s=60, what=f"{count} evaluations")


def _expr(run: str) -> str:
    return f'{METRIC}{{run="{run}"}} > 0.2'


async def test_fires_after_for_survives_a_prometheus_outage_and_resolves(
    settings: Settings, tmp_path: Path, prometheus: Any, exporter: Exporter, start_worker: Any
) -> None:
    run = uuid.uuid4().hex[:8]
    name = f"E2eLatency{run}"
    write_definition(tmp_path / "alerts", name, _expr(run), hold="4s")
    settings = with_alerting(settings, tmp_path / "alerts", prometheus.url)
    series = {"namespace": "musearoo", "engine": "melody", "run": run}
    exporter.set(0.1, **series)
    start_worker(settings)
    await fresh(settings, name, timeout_s=90)

    crossed = time.time()
    exporter.set(0.5, **series)
    found = await transitions(settings, timeout_s=60, until=lambda t: len(opened(t)) >= 1)
    (incident,) = opened(found)
    # Not before `for:` (4 s) from the crossing; and soon after (scrape 1 s, interval 1 s).
    assert 4.0 <= incident.at.timestamp() - crossed < 15.0
    assert incident.labels["alertname"] == name
    assert incident.labels["severity"] == "warning"

    # Prometheus goes away while the alert fires: stale, counted, nothing resolved.
    await stop_async(prometheus)
    try:
        await wait_for(
            lambda: (
                worker_metric(settings, "responder_alert_definition_stale", definition=name) == 1
            ),
            timeout_s=30,
            what="the definition marked stale",
        )
        await wait_for(
            lambda: (
                (
                    worker_metric(
                        settings,
                        "responder_metric_poll_failures_total",
                        definition=name,
                        reason="unreachable",
                    )
                    or 0
                )
                >= 3
            ),
            timeout_s=60,
            what="three failed evaluations",
        )
        assert resolved(await transitions(settings)) == []
    finally:
        await start_async(prometheus)

    # Back: the same alert still fires, no second incident, no second firing alert.
    await fresh(settings, name, timeout_s=60)
    await more_evaluations(settings, name, 3)
    found = await transitions(settings)
    assert (len(opened(found)), resolved(found)) == (1, [])
    ours = [a for a in await alert_events(settings) if a.labels.get("alertname") == name]
    assert [a.status for a in ours] == [AlertStatus.FIRING]
    assert ours[0].fingerprint == label_fingerprint(ours[0].labels)

    # The condition stops holding: resolved, one incident from first to last.
    exporter.set(0.1, **series)
    found = await transitions(settings, timeout_s=60, until=lambda t: len(resolved(t)) >= 1)
    assert [t.incident_id for t in found] == [incident.incident_id] * 2


async def test_a_worker_killed_while_pending_keeps_the_pending_time_and_fires_once(
    settings: Settings, tmp_path: Path, prometheus: Any, exporter: Exporter, start_worker: Any
) -> None:
    run = uuid.uuid4().hex[:8]
    name = f"E2ePending{run}"
    hold = 20.0
    write_definition(tmp_path / "alerts", name, _expr(run), hold="20s")
    settings = with_alerting(settings, tmp_path / "alerts", prometheus.url)
    series = {"namespace": "musearoo", "engine": "harmony", "run": run}
    exporter.set(0.5, **series)
    changelog = ALERT_RULES_TABLE.changelog(settings.worker.app_id)

    first = start_worker(settings)
    records = await read_topic(
        settings.kafka.bootstrap, changelog, until=lambda r: len(r) >= 1, timeout_s=90
    )
    pending = SeriesState.model_validate_json(records[0][1])
    assert pending.state == "pending"
    # Pending for a while (5 s of its 20 s) when the worker dies: a clock restarted by the
    # crash would fire 20 s after the restart, the kept one 15 s after it.
    await wait_for(lambda: time.time() > pending.active_at + 5, timeout_s=30, what="5 s of pending")
    await asyncio.to_thread(first.stop, crash=True)
    restarted_at = time.time()
    assert restarted_at - pending.active_at < hold - 5, "killed too late to tell"

    second = start_worker(settings)
    found = await transitions(settings, timeout_s=120, until=lambda t: len(opened(t)) >= 1)
    ours = [a for a in await alert_events(settings) if a.labels.get("alertname") == name]
    (firing,) = ours
    fired_at = firing.starts_at.timestamp()
    # It fired `for:` after the series became active before the crash, not `for:` after
    # the restart: the pending time survived in the table.
    assert hold <= fired_at - pending.active_at < hold + 10
    assert fired_at < restarted_at + hold
    assert len(opened(found)) == 1

    # Killed again while firing: the next worker does not fire it again.
    await asyncio.to_thread(second.stop, crash=True)
    start_worker(settings)
    await fresh(settings, name, timeout_s=90)
    await more_evaluations(settings, name, 3)
    ours = [a for a in await alert_events(settings) if a.labels.get("alertname") == name]
    assert [a.status for a in ours] == [AlertStatus.FIRING]
    assert len(opened(await transitions(settings))) == 1

    # The third worker knows the series from the table alone: its absence resolves it.
    exporter.set(0.1, **series)
    found = await transitions(settings, timeout_s=60, until=lambda t: len(resolved(t)) >= 1)
    assert len(resolved(found)) == 1


async def test_the_same_alert_by_alertmanager_and_by_a_definition_is_one_incident(
    settings: Settings,
    tmp_path: Path,
    prometheus: Any,
    alertmanager: Any,
    exporter: Exporter,
    ingest: Any,
    start_worker: Any,
) -> None:
    run = uuid.uuid4().hex[:8]
    name = f"E2eBoth{run}"
    write_definition(tmp_path / "alerts", name, _expr(run), hold="0s")
    settings = with_alerting(settings, tmp_path / "alerts", prometheus.url)
    series = {"namespace": "musearoo", "engine": "rhythm", "run": run}
    exporter.set(0.1, **series)
    webhook_url = str(ingest.make_url("/v1/alertmanager"))
    assert webhook_url.startswith("http://127.0.0.1:")
    await asyncio.to_thread(alertmanager.configure, webhook_url=webhook_url, token=TOKEN)
    start_worker(settings)

    # What Prometheus would send for the series: its labels (job and instance from the
    # scrape), severity and alertname; through the real Alertmanager and the real webhook.
    labels = {
        **series,
        "job": "exporter",
        "instance": exporter.target,
        "severity": "warning",
        "alertname": name,
    }
    now = datetime.now(UTC).isoformat()
    await asyncio.to_thread(alertmanager.post_alerts, [{"labels": labels, "startsAt": now}])
    found = await transitions(settings, timeout_s=60, until=lambda t: len(opened(t)) >= 1)
    assert len(opened(found)) == 1

    exporter.set(0.5, **series)  # the definition fires too (for: 0s)

    def both_paths(events: list[Any]) -> bool:
        return {e.receiver for e in events if e.labels.get("alertname") == name} >= {
            "responder",
            "metric-streams",
        }

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while not both_paths(events := await alert_events(settings)):
        assert loop.time() < deadline, events
        await asyncio.sleep(0.2)  # polling the topic, with a deadline
    ours = [e for e in events if e.labels.get("alertname") == name]
    assert {e.fingerprint for e in ours} == {label_fingerprint(labels)}  # Alertmanager's too
    assert {e.incident_key for e in ours} == {found[0].incident_key}
    (evaluated,) = [e for e in ours if e.receiver == "metric-streams"]

    # Triage folded the definition's alert into the open incident (its startsAt, later than
    # Alertmanager's, is now the fingerprint's): no second incident.
    def folded(records: list[tuple[bytes, bytes, int]]) -> bool:
        incidents = [Incident.model_validate_json(v) for _, v, _ in records if v]
        return any(i.active.get(evaluated.fingerprint) == evaluated.starts_at for i in incidents)

    table = INCIDENTS_TABLE.changelog(settings.worker.app_id)
    records = await read_topic(settings.kafka.bootstrap, table, until=folded, timeout_s=60)
    assert folded(records)
    assert len(opened(await transitions(settings))) == 1


async def test_invalid_definitions_refuse_the_start_naming_the_setting(
    settings: Settings, tmp_path: Path, prometheus: Any
) -> None:
    definitions = tmp_path / "alerts"
    write_definition(definitions, "Broken", "up > ", hold="1m")
    settings = with_alerting(settings, definitions, prometheus.url)
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        code = await asyncio.to_thread(worker.process.wait, 90)
    finally:
        await asyncio.to_thread(worker.stop, timeout_s=10)
    log = worker.log_tail()
    assert code != 0, log
    assert f"alerting.definitions_dir ({definitions})" in log, log
    assert "Broken.yaml:3:1 expr: invalid PromQL" in log, log
