"""ChatOps wired into ingest: command keys, audit records, the notification read view, and
the sinks and view against the real broker."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import SecretStr

from responder.ingest.wiring import NotificationView, audit_event, build_chatops, command_key
from responder.integrations.base import AuditOutcome, InboundAudit
from responder.models.commands import Actor, Command, CommandKind, CommandSource
from responder.models.notifications import IncidentPhase, Notification
from responder.settings import (
    KafkaSettings,
    NotifySettings,
    PagerDutySettings,
    Settings,
    SlackSettings,
)

T0 = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


def note(incident: str, seq: int, phase: IncidentPhase, minute: int = 0) -> Notification:
    return Notification(
        idempotency_key=f"{incident}:{seq}",
        incident_id=incident,
        sequence=seq,
        runbook_id="latency",
        title=f"latency {incident}",
        phase=phase,
        target={"namespace": "musearoo", "name": "api"},
        occurred_at=T0 + timedelta(minutes=minute),
    )


def command(kind: CommandKind, **fields: Any) -> Command:
    return Command(
        kind=kind,
        idempotency_key="slack:t1",
        actor=Actor(id="U1", name="alice"),
        source=CommandSource.SLACK_COMMAND,
        issued_at=T0,
        **fields,
    )


def test_commands_are_keyed_by_incident_id_as_the_engine_router_expects() -> None:
    assert command_key(command(CommandKind.ACK, incident_id="inc-1")) == b"inc-1"
    run = command(CommandKind.RUN, action="cache.clear", target="musearoo/api")
    assert command_key(run) == b"musearoo/api"


def test_inbound_audit_becomes_an_audit_event() -> None:
    record = InboundAudit(
        at=T0,
        channel="pagerduty",
        outcome=AuditOutcome.REFUSED_SIGNATURE,
        reason="bad signature",
        remote="127.0.0.1",
    )
    event = audit_event(record)
    assert event.kind == "chatops.refused_signature"
    assert event.incident_id == ""
    assert event.at == T0
    assert event.data["reason"] == "bad signature"
    assert event.data["channel"] == "pagerduty"


async def test_the_view_keeps_the_latest_transition_and_drops_resolved_incidents_first() -> None:
    view = NotificationView("127.0.0.1:9", "x.notifications", max_incidents=10)
    view.apply(note("a", 1, IncidentPhase.REMEDIATING, minute=0))
    view.apply(note("a", 3, IncidentPhase.ESCALATED, minute=2))
    view.apply(note("a", 2, IncidentPhase.VERIFYING, minute=1))  # late and older: ignored
    view.apply(note("b", 1, IncidentPhase.AWAITING_APPROVAL, minute=5))
    summary = await view.get("a")
    assert summary is not None
    assert summary.phase is IncidentPhase.ESCALATED
    assert summary.opened_at == T0  # first transition seen
    assert [s.id for s in await view.list_open(10)] == ["b", "a"]  # newest first
    view.apply(note("a", 4, IncidentPhase.RESOLVED, minute=6))
    assert [s.id for s in await view.list_open(10)] == ["b"]
    assert (await view.get("a")) is not None  # still shown by `show`
    for i in range(10):
        view.apply(note(f"n{i}", 1, IncidentPhase.OPEN, minute=10 + i))
    assert len(view) == 10
    assert await view.get("a") is None  # the resolved one went first
    assert await view.get("b") is None  # then the least recently changed open one
    assert await view.get("n0") is not None


def test_no_chatops_without_secrets() -> None:
    assert build_chatops(Settings()) is None


def integrated(kafka_bootstrap: str, prefix: str) -> Settings:
    return Settings(
        kafka=KafkaSettings(
            bootstrap=kafka_bootstrap, topic_prefix=prefix, partitions=2, request_timeout_s=5
        ),
        slack=SlackSettings(signing_secret=SecretStr("s3cret")),
        pagerduty=PagerDutySettings(webhook_secrets=(SecretStr("pd-s3cret"),)),
        notify=NotifySettings(view_max_incidents=100),
    )


async def test_sinks_and_view_on_the_real_broker(kafka: Any) -> None:
    prefix = f"w{uuid.uuid4().hex[:8]}"
    settings = integrated(kafka.bootstrap, prefix)
    wiring = build_chatops(settings)
    assert wiring is not None
    assert {r.path for r in wiring.chatops.routes()} == {
        "/v1/slack/commands",
        "/v1/slack/interactions",
        "/v1/pagerduty",
    }
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False)
    await wiring.start()
    await producer.start()
    await consumer.start()
    try:
        assert await wiring.wait_connected(30)
        ack = command(CommandKind.ACK, incident_id="inc-7")
        await wiring.chatops._sink.publish(ack)  # returns once the broker has it
        topic = f"{prefix}.commands"
        await consumer._client.force_metadata_update()
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        assert len(parts) == 2  # created with the configured partitions
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        got = await consumer.getmany(timeout_ms=5000)
        records = [m for ms in got.values() for m in ms]
        assert [(m.key, Command.model_validate_json(m.value)) for m in records] == [(b"inc-7", ack)]

        await producer.send_and_wait(
            f"{prefix}.notifications",
            key=b"inc-7",
            value=note("inc-7", 1, IncidentPhase.ESCALATED).model_dump_json().encode(),
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while (summary := await wiring.view.get("inc-7")) is None and loop.time() < deadline:
            await asyncio.sleep(0.1)  # polling the view, bounded by the deadline
        assert summary is not None
        assert summary.phase is IncidentPhase.ESCALATED
    finally:
        await consumer.stop()
        await producer.stop()
        await wiring.stop()


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings() above must not pick up a developer's RESPONDER_* environment."""
    import os

    for name in list(os.environ):
        if name.startswith("RESPONDER_"):
            monkeypatch.delenv(name)
