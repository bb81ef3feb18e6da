"""``responder incidents list|show|export`` read the whole history from a real audit topic.

More incidents end on one target than the remediation table remembers (``HISTORY_MEMORY``):
the first of them is still shown in full, because the audit topic, not the table, is read.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from click.testing import CliRunner

from responder.cli import main as cli
from responder.engine.records import HISTORY_MEMORY
from responder.models.incidents import AuditEvent
from responder.models.topics import AUDIT, audit_key, topic_name
from responder.settings import get_settings
from responder_dev.stack.kafka import create_topics_async

pytestmark = [pytest.mark.kafka]

KEY = "demo_generation_latency:musearoo/melody-engine"
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def story(n: int, *, escalate: bool) -> list[AuditEvent]:
    """One incident's audit trail, as triage and the engine write it."""
    iid = f"00000000-0000-4000-8000-{n:012d}"
    at = T0 + timedelta(minutes=10 * n)
    labels = {"alertname": "HighGenerationLatency", "engine": "melody", "namespace": "musearoo"}

    def ev(kind: str, offset_s: float, **data: Any) -> AuditEvent:
        return AuditEvent(
            kind=kind,
            incident_id=iid,
            incident_key=KEY,
            at=at + timedelta(seconds=offset_s),
            data=data,
        )

    events = [
        ev("incident.open", 0, labels=labels, annotations={"summary": f"p95 of melody #{n}"}),
        ev("remediation.opened", 0.2, runbook="demo_generation_latency", labels=labels),
        ev("remediation.action_started", 0.3, step=0, attempt=1, action="cache.clear"),
        ev(
            "remediation.action_finished", 0.5, step=0, attempt=1, ok=True, detail="deleted 50 keys"
        ),
    ]
    if escalate:
        events += [
            ev(
                "remediation.verify_failed",
                30,
                step=0,
                attempt=1,
                detail="not verified within the window",
            ),
            ev("remediation.halted", 30, reason="steps exhausted"),
            ev("remediation.escalated", 30, level=1, notify="slack", reason="steps exhausted"),
            ev("remediation.command", 41, command="ack", actor="U0ALICE", step=None),
            ev("incident.resolved", 60),
            ev("remediation.resolved", 60, how="alert_resolved", actor=None),
        ]
    else:
        detail = '1 series satisfy the query: {engine="melody"} 0.0739'
        events += [
            ev("remediation.verified", 9, step=0, attempt=1, detail=detail),
            ev("remediation.resolved", 9, how="verified", actor=None),
            ev("incident.resolved", 20),
        ]
    return events


@pytest.fixture
async def audit_env(kafka: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    prefix = f"hist{secrets.token_hex(3)}"
    bootstrap = kafka.bootstrap
    topic = topic_name(prefix, AUDIT)
    await create_topics_async(bootstrap, {topic: 3})
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for n in range(HISTORY_MEMORY + 4):  # more than the table remembers per target
            for event in story(n, escalate=n == 0):
                await producer.send_and_wait(
                    topic, key=audit_key(event), value=event.model_dump_json().encode()
                )
        await producer.send_and_wait(  # an incident still open on another target
            topic,
            key=b"open",
            value=AuditEvent(
                kind="remediation.opened",
                incident_id="00000000-0000-4000-8000-999999999999",
                incident_key="demo_engine_health:musearoo/harmony-engine",
                at=T0 + timedelta(days=1),
                data={"runbook": "demo_engine_health", "labels": {}},
            )
            .model_dump_json()
            .encode(),
        )
    finally:
        await producer.stop()
    return {"RESPONDER_KAFKA__BOOTSTRAP": bootstrap, "RESPONDER_KAFKA__TOPIC_PREFIX": prefix}


async def invoke(env: dict[str, str], *args: str) -> Any:
    get_settings.cache_clear()
    try:
        return await asyncio.to_thread(CliRunner().invoke, cli, ["incidents", *args], env=env)
    finally:
        get_settings.cache_clear()


FIRST = "00000000-0000-4000-8000-000000000000"


async def test_show_renders_the_oldest_incident_whole(audit_env: dict[str, str]) -> None:
    shown = await invoke(audit_env, "show", FIRST)
    assert shown.exit_code == 0, shown.output
    out = shown.output
    assert "runbook demo_generation_latency  target musearoo/melody-engine  state resolved" in out
    lines = [line for line in out.splitlines() if line.startswith("  2026-")]
    assert [line.split("s  ", 1)[1] for line in lines] == [
        "alert HighGenerationLatency opened the incident",
        "runbook demo_generation_latency took it",
        "step 1 cache.clear started (attempt 1)",
        "step 1 finished: ok: deleted 50 keys",
        "step 1 verification failed: not verified within the window",
        "automation halted: steps exhausted",
        "escalated to level 1 (slack)",
        "ack by U0ALICE",
        "the incident's alerts all resolved",
        "resolved (alert resolved)",
    ]
    missing = await invoke(audit_env, "show", "00000000-0000-4000-8000-123456789012")
    assert missing.exit_code != 0
    assert "no incident" in missing.output


async def test_export_is_a_post_mortem_skeleton(audit_env: dict[str, str]) -> None:
    md = await invoke(audit_env, "export", FIRST, "--format", "markdown")
    assert md.exit_code == 0, md.output
    assert md.output.startswith("# Post-mortem: p95 of melody #0")
    for heading in ("## Timeline", "## Actions and results", "## Verifications", "## People"):
        assert heading in md.output
    assert "| 1 | cache.clear | 1 | True | deleted 50 keys |" in md.output
    assert "| ack | U0ALICE |" in md.output
    assert "- `engine`: melody" in md.output  # the context the page carried

    last = f"00000000-0000-4000-8000-{HISTORY_MEMORY + 3:012d}"
    js = await invoke(audit_env, "export", last, "--format", "json")
    assert js.exit_code == 0, js.output
    doc = json.loads(js.output)
    assert doc["outcome"] == "verified"
    assert doc["verifications"] == [
        {
            "step": 0,
            "ok": True,
            "detail": '1 series satisfy the query: {engine="melody"} 0.0739',
            "at": "2026-12-01T11:50:09+00:00",
        }
    ]
    assert doc["actions"][0]["action"] == "cache.clear"
    assert doc["actions"][0]["ok"] is True


async def test_list_filters_by_state_runbook_and_time(audit_env: dict[str, str]) -> None:
    opened = await invoke(audit_env, "list")
    assert opened.exit_code == 0, opened.output
    assert opened.output.splitlines() == [
        line for line in opened.output.splitlines() if "999999999999" in line
    ]
    resolved = await invoke(audit_env, "list", "--state", "resolved")
    assert len(resolved.output.splitlines()) == HISTORY_MEMORY + 4
    assert FIRST in resolved.output
    health = await invoke(audit_env, "list", "--state", "all", "--runbook", "demo_engine_health")
    assert len(health.output.splitlines()) == 1
    recent = await invoke(
        audit_env, "list", "--state", "all", "--since", (T0 + timedelta(minutes=95)).isoformat()
    )
    # opened at minutes 100, 110 and the open one a day later
    assert len(recent.output.splitlines()) == 3
    bad = await invoke(audit_env, "list", "--since", "yesterday")
    assert bad.exit_code == 2
    assert "--since" in bad.output
