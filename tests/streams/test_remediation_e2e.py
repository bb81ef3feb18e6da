"""Remediation end to end on the real broker: alerts in, triage, router, engine, actions, verification.

One real worker process (triage + remediation, with the recording action in place of the
catalogue) runs several scenarios at once, each on its own target and runbook. Outcomes
are observed from outside: the recording action's file (what was executed, how often),
``responder.notifications`` (what people hear) and ``responder.audit``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
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
    verify_server,  # noqa: F401 - fixture
    wait_for,
    workers,  # noqa: F401 - fixture
    write_runbooks,
)

from responder.cli import main as cli
from responder.models.notifications import IncidentPhase
from responder.settings import (
    Settings,
    get_settings,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

PARTITIONS = 4

RUNBOOKS = {
    "happy": dict(
        steps=step("cache.clear", http_verify("/health/happy")), auto="true", after="60s"
    ),
    "exhaust": dict(
        steps=step("cache.clear", http_verify("/health/exhaust", "3s"))
        + step("model.reload", http_verify("/health/exhaust", "3s")),
        auto="true",
        after="60s",
    ),
    "gated": dict(
        steps=step(
            "deployment.restart",
            "{alert_resolved: true, within: 60s}",
            extra="    approval: required\n",
        ),
        auto="false",
        after="0s",
    ),
    "midstep": dict(
        steps=step("connections.reset", http_verify("/health/midstep")), auto="true", after="60s"
    ),
}


def labels(rid: str) -> dict[str, str]:
    return {
        "alertname": f"E2E{rid.capitalize()}",
        "namespace": "musearoo",
        "service": f"{rid}-engine",
        "severity": "critical",
    }


async def test_transitions_on_the_real_broker(
    kafka: Any,
    tmp_path: Path,
    verify_server: tuple[VerifyServer, str],  # noqa: F811 - the fixture
    workers: Callable[..., RecordingWorker],  # noqa: F811 - the fixture
) -> None:
    server, url = verify_server
    write_runbooks(tmp_path / "runbooks", RUNBOOKS)
    settings = make_settings(kafka, tmp_path, url, tmp_path / "runbooks")
    (tmp_path / "plan.json").write_text(json.dumps({"connections.reset": {"delay_s": 5}}))
    server.status["/health/happy"] = 200
    bus = Bus(settings)
    await bus.start()
    try:
        workers(settings)
        happy = await bus.fire(labels("happy"))
        exhaust = await bus.fire(labels("exhaust"))
        gated = await bus.fire(labels("gated"))
        midstep = await bus.fire(labels("midstep"))
        ids = {
            name: incident_id_of(ev)
            for name, ev in (
                ("happy", happy),
                ("exhaust", exhaust),
                ("gated", gated),
                ("midstep", midstep),
            )
        }
        record = tmp_path / "actions.jsonl"

        # Resolution during a step: the alert resolves while connections.reset runs.
        await wait_for(
            lambda: any(
                r["incident"] == ids["midstep"] and r["event"] == "begin" for r in read_log(record)
            ),
            90,
        )
        await bus.fire(labels("midstep"), firing=False)

        # Approval of the gated step, through the CLI, once the incident waits for it.
        def phases(records: list[tuple[bytes, bytes]], incident: str) -> list[IncidentPhase]:
            return [n.phase for n in notifications(records) if n.incident_id == incident]

        await bus.read(
            "notifications",
            until=lambda r: IncidentPhase.AWAITING_APPROVAL in phases(r, ids["gated"]),
            timeout_s=60,
        )
        get_settings.cache_clear()
        result = await asyncio.to_thread(
            CliRunner().invoke,
            cli,
            ["incidents", "approve", ids["gated"], "--actor", "alice"],
            env=cli_env(settings),
        )
        get_settings.cache_clear()
        assert result.exit_code == 0, result.output
        await wait_for(
            lambda: any(
                r["incident"] == ids["gated"] and r["event"] == "end" for r in read_log(record)
            ),
            60,
        )
        await bus.fire(labels("gated"), firing=False)

        def done(records: list[tuple[bytes, bytes]]) -> bool:
            return all(
                IncidentPhase.RESOLVED in phases(records, ids[n])
                for n in ("happy", "gated", "midstep")
            ) and (
                len([p for p in phases(records, ids["exhaust"]) if p is IncidentPhase.ESCALATED])
                >= 2
            )

        records = await bus.read("notifications", until=done, timeout_s=90)
        assert done(records), [
            (n.incident_id[:8], n.phase, n.event) for n in notifications(records)
        ]
        # The operator's view, from the table's changelog: the exhausted one is still open.
        get_settings.cache_clear()
        listing = await asyncio.to_thread(
            CliRunner().invoke, cli, ["incidents", "list"], env=cli_env(settings)
        )
        shown = await asyncio.to_thread(
            CliRunner().invoke, cli, ["incidents", "show", ids["happy"]], env=cli_env(settings)
        )
        get_settings.cache_clear()
    finally:
        await bus.stop()
    assert listing.exit_code == 0, listing.output
    assert ids["exhaust"] in listing.output
    assert ids["happy"] not in listing.output  # ended: only with --all
    assert shown.exit_code == 0, shown.output
    assert "resolved (verified)" in shown.output  # the timeline from the audit trail

    executed = ends(record)
    per_key: dict[str, int] = {}
    for r in executed:
        per_key[r["key"]] = per_key.get(r["key"], 0) + 1
    assert all(count == 1 for count in per_key.values()), per_key
    by_incident = {
        name: sorted((r["step"], r["action"]) for r in executed if r["incident"] == i)
        for name, i in ids.items()
    }
    assert by_incident["happy"] == [(0, "cache.clear")]
    assert by_incident["exhaust"] == [(0, "cache.clear"), (1, "model.reload")]
    assert by_incident["gated"] == [(0, "deployment.restart")]
    notes = notifications(records)
    gated_notes = [n for n in notes if n.incident_id == ids["gated"]]
    # No auto-recovery: escalated at once, before anything ran.
    assert gated_notes[0].phase in (IncidentPhase.ESCALATED, IncidentPhase.AWAITING_APPROVAL)
    assert any(n.actor == "alice" for n in gated_notes)
    exhaust_escalations = [
        n for n in notes if n.incident_id == ids["exhaust"] and n.phase is IncidentPhase.ESCALATED
    ]
    assert exhaust_escalations[0].slack_channel == "#exhaust"
    assert exhaust_escalations[1].pagerduty_service == "oncall"
    midstep_resolved = [
        n for n in notes if n.incident_id == ids["midstep"] and n.phase is IncidentPhase.RESOLVED
    ]
    assert "alert resolved" in midstep_resolved[0].event
    assert server.hits.get("/health/midstep", 0) == 0  # never verified: resolved mid-step


def cli_env(settings: Settings) -> dict[str, str]:
    return {
        "RESPONDER_KAFKA__BOOTSTRAP": settings.kafka.bootstrap,
        "RESPONDER_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
        "RESPONDER_WORKER__APP_ID": settings.worker.app_id,
    }
