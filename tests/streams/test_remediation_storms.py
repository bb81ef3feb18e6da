"""Storms on the real broker: a flapping alert, and one alert group delivered 1,000 times.

- An alert that fires and resolves 50 times within a minute opens 50 incidents one after
  another on the same target; the action window (``max_actions``) lets at most its count of
  actions through and halts (and escalates) the rest.
- 1,000 deliveries of the same two-alert group (Alertmanager HA twins, retries after a
  503) are one incident and one action per step.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from recording import (
    Bus,
    RecordingWorker,
    VerifyServer,
    ends,
    http_verify,
    incident_id_of,
    make_settings,
    notifications,
    step,
    verify_server,  # noqa: F401 - fixture
    workers,  # noqa: F401 - fixture
    write_runbooks,
)

from responder.models.incidents import AuditEvent
from responder.models.notifications import IncidentPhase

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

MAX_ACTIONS = 3

RUNBOOKS = {
    "flap": dict(
        steps=step("cache.clear", http_verify("/health/flap", "30s")),
        auto="true",
        after="300s",
    ),
    "dupes": dict(
        steps=step("cache.clear", http_verify("/health/dupes", "2s"))
        + step("model.reload", http_verify("/health/dupes", "2s")),
        auto="true",
        after="300s",
    ),
}


def labels(rid: str, **extra: str) -> dict[str, str]:
    return {
        "alertname": f"E2E{rid.capitalize()}",
        "namespace": "musearoo",
        "service": f"{rid}-engine",
        **extra,
    }


async def test_flapping_alert_and_duplicate_storm(
    kafka: Any,
    tmp_path: Path,
    verify_server: tuple[VerifyServer, str],  # noqa: F811
    workers: Callable[..., RecordingWorker],  # noqa: F811
) -> None:
    _, url = verify_server
    runbooks = {
        **RUNBOOKS,
        "flap": {**RUNBOOKS["flap"]},
    }
    write_runbooks(tmp_path / "runbooks", runbooks)
    # The flap runbook: no cooldown, so only the action window stands in the way.
    text = (tmp_path / "runbooks" / "flap.yaml").read_text()
    (tmp_path / "runbooks" / "flap.yaml").write_text(
        text.replace(
            "max_actions: {count: 20, per: 1h}", f"max_actions: {{count: {MAX_ACTIONS}, per: 1h}}"
        )
    )
    settings = make_settings(kafka, tmp_path, url, tmp_path / "runbooks")
    (tmp_path / "plan.json").write_text(json.dumps({}))
    record = tmp_path / "actions.jsonl"
    bus = Bus(settings)
    await bus.start()
    try:
        workers(settings)
        base = datetime.now(UTC).replace(microsecond=0)
        flap_ids = []
        for n in range(50):  # 50 episodes within a minute (sent as fast as the broker takes them)
            starts = base + timedelta(seconds=n)
            fired = await bus.fire(labels("flap"), starts_at=starts)
            await bus.fire(labels("flap"), starts_at=starts, firing=False)
            flap_ids.append(incident_id_of(fired))

        group = [labels("dupes", pod=f"dupes-{i}") for i in range(2)]
        dupes_id = None
        for n in range(1000):
            event = await bus.fire(group[n % 2], starts_at=base)
            if n == 0:
                dupes_id = incident_id_of(event)

        def settled(records: list[tuple[bytes, bytes]]) -> bool:
            notes = notifications(records)
            flap_done = {
                n.incident_id
                for n in notes
                if n.phase is IncidentPhase.RESOLVED and n.incident_id in flap_ids
            }
            dupes_escalated = any(
                n.incident_id == dupes_id and n.phase is IncidentPhase.ESCALATED for n in notes
            )
            return len(flap_done) == 50 and dupes_escalated

        records = await bus.read("notifications", until=settled, timeout_s=180)
        assert settled(records)
        audit = [
            AuditEvent.model_validate_json(v)
            for _, v in await bus.read("audit", until=lambda r: False, timeout_s=3)
        ]
    finally:
        await bus.stop()

    executed = ends(record)
    flap_actions = [r for r in executed if r["incident"] in flap_ids]
    assert 1 <= len(flap_actions) <= MAX_ACTIONS, flap_actions
    limited = [
        a for a in audit if a.kind == "remediation.rate_limited" and a.incident_id in flap_ids
    ]
    assert len(limited) >= 50 - MAX_ACTIONS - sum(
        1 for a in audit if a.kind == "remediation.queued"
    )

    dupes_incidents = {n.incident_id for n in notifications(records) if n.runbook_id == "dupes"}
    assert dupes_incidents == {dupes_id}
    assert sorted((r["step"], r["action"]) for r in executed if r["incident"] == dupes_id) == [
        (0, "cache.clear"),
        (1, "model.reload"),
    ]
