"""Alerts through ingest and the real worker into incidents, on the real broker.

Observed from outside, as an operator would: transitions on ``responder.incidents`` and
the table's changelog, the durable state a restarted worker recovers from.
"""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import pytest
from e2e_support import (
    AUTH,
    alert_json,
    audit_topic,
    changelog_topic,
    incidents_topic,
    read_topic,
    webhook,
)

from responder.models.incidents import Incident, IncidentState, IncidentTransition

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

DOCS_PAYLOAD = Path(__file__).parents[1] / "models" / "alertmanager_v4.json"


def transitions(records: list[tuple[bytes, bytes, int]]) -> list[IncidentTransition]:
    return [IncidentTransition.model_validate_json(value) for _, value, _ in records]


def table_state(records: list[tuple[bytes, bytes, int]]) -> dict[bytes, Incident]:
    """The table as its compacted changelog holds it: the last value per key."""
    state: dict[bytes, Incident] = {}
    for key, value, _ in records:
        state[key] = Incident.model_validate_json(value)
    return state


async def test_docs_alert_opens_and_resolves_an_incident(
    settings: Any, ingest: Any, start_worker: Any
) -> None:
    start_worker(settings)
    payload = json.loads(DOCS_PAYLOAD.read_text())

    assert (await ingest.post("/v1/alertmanager", json=payload, headers=AUTH)).status == 200
    for alert in payload["alerts"]:
        alert |= {"status": "resolved", "endsAt": "2026-11-30T03:30:00Z"}
    payload["status"] = "resolved"
    assert (await ingest.post("/v1/alertmanager", json=payload, headers=AUTH)).status == 200

    records = await read_topic(
        settings.kafka.bootstrap,
        incidents_topic(settings),
        until=lambda r: len(r) >= 2,
        timeout_s=60,
    )
    opened, resolved = transitions(records)
    assert (opened.to_state, resolved.to_state) == (IncidentState.OPEN, IncidentState.RESOLVED)
    assert opened.incident_id == resolved.incident_id
    assert opened.incident_key == "HighGenerationLatency/musearoo/drummaroo-engine"


KEYS, FINGERPRINTS, COPIES, BATCH = 100, 5, 20, 50  # 10,000 alerts, Alertmanager-sized requests


def storm(seed: int) -> list[dict[str, object]]:
    """10,000 firing alerts over 100 incident keys, 5 fingerprints each, 20 copies of each."""
    alerts = [alert_json(k, f) for k in range(KEYS) for f in range(FINGERPRINTS)] * COPIES
    random.Random(seed).shuffle(alerts)
    return alerts


async def post_all(ingest: Any, alerts: list[dict[str, object]]) -> None:
    for start in range(0, len(alerts), BATCH):
        body = webhook(alerts[start : start + BATCH])
        response = await ingest.post("/v1/alertmanager", json=body, headers=AUTH)
        assert response.status == 200, await response.text()


async def settled_table(settings: Any) -> dict[bytes, Incident]:
    """The table once every incident holds all its fingerprints, read from its changelog.

    That state needs every distinct alert processed, and the transitions are acknowledged
    before the table write that follows them, so they are all on their topic by then.
    """

    def complete(records: list[tuple[bytes, bytes, int]]) -> bool:
        state = table_state(records)
        return len(state) == KEYS and all(len(i.active) == FINGERPRINTS for i in state.values())

    records = await read_topic(
        settings.kafka.bootstrap, changelog_topic(settings), until=complete, timeout_s=180
    )
    return table_state(records)


def assert_hundred_open(table: dict[bytes, Incident]) -> None:
    assert len(table) == KEYS
    assert all(i.state is IncidentState.OPEN for i in table.values())
    assert all(len(i.active) == FINGERPRINTS for i in table.values())


async def test_ten_thousand_alerts_open_exactly_one_hundred_incidents(
    settings: Any, ingest: Any, start_worker: Any
) -> None:
    start_worker(settings)

    await post_all(ingest, storm(seed=1))

    table = await settled_table(settings)
    assert_hundred_open(table)
    opened = transitions(await read_topic(settings.kafka.bootstrap, incidents_topic(settings)))
    assert len(opened) == KEYS
    assert {t.incident_id for t in opened} == {i.id for i in table.values()}
    audit = await read_topic(settings.kafka.bootstrap, audit_topic(settings))
    assert len(audit) == KEYS


@pytest.mark.parametrize("crash", [False, True], ids=["sigterm", "sigkill"])
async def test_worker_restarted_mid_stream_ends_with_the_same_hundred(
    settings: Any, ingest: Any, start_worker: Any, tmp_path: Path, crash: bool
) -> None:
    alerts = storm(seed=2)
    first = start_worker(settings)
    await post_all(ingest, alerts[: len(alerts) // 2])
    seen = await read_topic(
        settings.kafka.bootstrap, incidents_topic(settings), until=lambda r: len(r) >= 10
    )
    assert len(seen) >= 10, first.log_tail()

    await asyncio.to_thread(first.stop, crash=crash)
    # A fresh data dir: the new worker has no RocksDB files and must rebuild the table from
    # its changelog, or the alerts still to come would open their incidents a second time.
    restarted = settings.model_copy(
        update={"worker": settings.worker.model_copy(update={"data_dir": str(tmp_path / "w1")})}
    )
    start_worker(restarted)
    await post_all(ingest, alerts[len(alerts) // 2 :])

    table = await settled_table(settings)
    assert_hundred_open(table)
    opened = transitions(await read_topic(settings.kafka.bootstrap, incidents_topic(settings)))
    assert {t.incident_id for t in opened} == {i.id for i in table.values()}
    if not crash:
        assert len(opened) == KEYS  # a graceful stop commits what it processed: no replay
