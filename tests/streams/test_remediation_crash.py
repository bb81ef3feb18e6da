"""Crash recovery on the real broker: SIGKILL the worker mid-action and mid-verification.

The worker that takes over finds the incident in the table's changelog, sees a step
recorded as started with no task of its own, reconciles it through the action's
``reconcile(key)`` (re-running it only if it had not taken effect), restarts the
verification with the window it had, and fires the escalation when it falls due: each
(incident, step) executed exactly once, no level of the chain lost or doubled.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
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
    read_log,
    step,
    wait_for,
    workers,  # noqa: F401 - fixture
    write_runbooks,
)
from recording import verify_server as verify_server

from responder.models.incidents import AuditEvent
from responder.models.notifications import IncidentPhase
from responder.settings import Settings

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ESCALATE_AFTER_S = 50

CRASH = {
    "crash": dict(
        steps=step("cache.clear", http_verify("/health/crash-0", "3s"))
        + step("model.reload", http_verify("/health/crash-1", "120s"), timeout="30s"),
        auto="true",
        after=f"{ESCALATE_AFTER_S}s",
    )
}


def with_data_dir(settings: Settings, path: Path) -> Settings:
    return settings.model_copy(
        update={"worker": settings.worker.model_copy(update={"data_dir": str(path)})}
    )


def labels() -> dict[str, str]:
    return {
        "alertname": "E2ECrash",
        "namespace": "musearoo",
        "service": "crash-engine",
        "severity": "critical",
    }


async def test_sigkill_mid_action_and_mid_verification(
    kafka: Any,
    tmp_path: Path,
    verify_server: tuple[VerifyServer, str],
    workers: Callable[..., RecordingWorker],  # noqa: F811
) -> None:
    server, url = verify_server
    write_runbooks(tmp_path / "runbooks", CRASH)
    settings = make_settings(kafka, tmp_path, url, tmp_path / "runbooks")
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"cache.clear": {"delay_s": 4}}))
    record = tmp_path / "actions.jsonl"
    bus = Bus(settings)
    await bus.start()
    try:
        first = workers(with_data_dir(settings, tmp_path / "w1"))
        alert = await bus.fire(labels())
        incident = incident_id_of(alert)

        # 1. Killed while step 0's action is in flight (begun, not ended).
        await wait_for(
            lambda: any(r["event"] == "begin" and r["step"] == 0 for r in read_log(record)), 90
        )
        first.stop(crash=True)
        assert ends(record) == []
        second = workers(with_data_dir(settings, tmp_path / "w2"))

        # The second worker reconciles (not found), re-runs step 0 once, its verification fails
        # (503), step 1 runs, and its verification starts polling.
        await wait_for(
            lambda: any(r["event"] == "end" and r["step"] == 1 for r in read_log(record)), 90
        )
        await wait_for(lambda: server.hits.get("/health/crash-1", 0) >= 2, 30)

        # 2. Killed while verifying step 1; the check will pass for whoever polls next.
        second.stop(crash=True)
        hits_at_kill = server.hits.get("/health/crash-1", 0)
        workers(with_data_dir(settings, tmp_path / "w3"))

        # Escalation falls due while the third worker runs: it must fire once per level, on time.
        def escalated(records: list[tuple[bytes, bytes]]) -> bool:
            return any(
                n.phase is IncidentPhase.ESCALATED
                for n in notifications(records)
                if n.incident_id == incident
            )

        await bus.read("notifications", until=escalated, timeout_s=120)
        server.status["/health/crash-1"] = 200

        def resolved(records: list[tuple[bytes, bytes]]) -> bool:
            return any(
                n.phase is IncidentPhase.RESOLVED
                for n in notifications(records)
                if n.incident_id == incident
            )

        records = await bus.read("notifications", until=resolved, timeout_s=60)
        assert resolved(records), [(n.phase, n.event) for n in notifications(records)]
        audit = [
            AuditEvent.model_validate_json(v)
            for _, v in await bus.read("audit", until=lambda r: False, timeout_s=3)
        ]
    finally:
        await bus.stop()

    assert server.hits.get("/health/crash-1", 0) > hits_at_kill  # the new worker verified
    executed = ends(record)
    assert sorted((r["step"], r["attempt"]) for r in executed) == [(0, 1), (1, 1)], executed
    reconciles = [r for r in read_log(record) if r["event"] == "reconcile"]
    assert [(r["step"], r["found"]) for r in reconciles] == [(0, False)]
    mine = [a for a in audit if a.incident_id == incident]
    kinds = [a.kind for a in mine]
    assert kinds.count("remediation.action_resumed") == 1
    assert kinds.count("remediation.verify_resumed") == 1
    assert kinds.count("remediation.resolved") == 1
    escalations = [a for a in mine if a.kind == "remediation.escalated"]
    assert [a.data["level"] for a in escalations] == [1], escalations
    assert escalations[0].data["lateness_s"] < 1.5, escalations[0].data
    opened = next(a for a in mine if a.kind == "remediation.opened")
    assert escalations[0].at - opened.at >= timedelta(seconds=ESCALATE_AFTER_S - 1)
    finished = [
        (a.data["step"], a.data["attempt"]) for a in mine if a.kind == "remediation.action_finished"
    ]
    assert finished == [(0, 1), (1, 1)], finished
