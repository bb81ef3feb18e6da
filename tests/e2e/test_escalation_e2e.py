"""Escalation and ChatOps end to end: real Kafka, a real worker, the real ingest endpoints.

Alerts go onto the broker as ingest puts them; a real worker (triage, remediation with the
recording action of ``tests/streams``, and the notify agent) talks to the local Slack and
PagerDuty of ``responder_dev.fakes`` through the real SDKs; people's answers come back signed, as
Slack and PagerDuty sign them, through the ingest service's HTTP endpoints onto
``responder.commands``. Everything is observed from outside: what the fakes received, the
recording action's file, and the topics.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from adhoc_support import ingest_for
from aiohttp.test_utils import TestClient
from e2e_escalation_support import (
    ALICE,
    MALLORY,
    ONCALL_KEY,
    THIRD_LEVEL_WAIT_S,
    find_button,
    labels,
    pagerduty_headers,
    pagerduty_webhook,
    slack_headers,
    slash_body,
    with_integrations,
    write_runbooks,
)
from e2e_support import read_topic
from recording import (
    Bus,
    RecordingWorker,
    incident_id_of,
    make_settings,
    notifications,
    read_log,
    wait_for,
    workers,  # noqa: F401 - fixture
)

from responder.integrations.slack.blocks import ACTION_APPROVE
from responder.integrations.slack.notifier import SlackMessageRef
from responder.models.commands import Command
from responder.models.incidents import AuditEvent
from responder.models.notifications import IncidentPhase
from responder.models.topics import SLACK_TABLE
from responder.settings import Settings
from responder_dev.fakes.pagerduty_events import FakePagerDuty
from responder_dev.fakes.slack_api import FakeSlack, Message
from responder_dev.fakes.slack_requests import block_actions_body
from responder_dev.settings import settings_env

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

Client = TestClient[Any, Any]


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s")
        await asyncio.sleep(0.2)  # polling interval, bounded by the deadline


def prepare(
    kafka: Any,
    tmp_path: Path,
    slack: FakeSlack,
    pd: FakePagerDuty,
    tls_cert: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    plan: dict[str, Any],
) -> Settings:
    write_runbooks(tmp_path / "runbooks")
    base = make_settings(kafka, tmp_path, "http://127.0.0.1:9", tmp_path / "runbooks")
    settings = with_integrations(base, slack.url, pd.url, tls_cert[0])
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    for name, value in settings_env(settings, ("slack", "pagerduty", "notify")).items():
        monkeypatch.setenv(name, value)  # the worker subprocess reads its settings from these
    return settings


def pd_events(pd: FakePagerDuty, incident: str, action: str) -> list[dict[str, Any]]:
    return [
        e.body
        for e in pd.events
        if e.body.get("dedup_key") == incident and e.body.get("event_action") == action
    ]


def incident_messages(slack: FakeSlack, incident: str) -> list[Message]:
    return [m for m in slack.top_level() if f"({incident})" in m.text]


def shows(slack: FakeSlack, incident: str, phase: IncidentPhase) -> bool:
    return any(
        m.text.startswith(f"{phase.value.upper()}:") for m in incident_messages(slack, incident)
    )


async def test_escalation_chatops_end_to_end(
    kafka: Any,
    tmp_path: Path,
    fake_slack: FakeSlack,
    fake_pd: FakePagerDuty,
    tls_cert: tuple[Path, Path],
    workers: Callable[..., RecordingWorker],  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plan = {"cache.clear": {"fail": True}, "model.reload": {"fail": True}}
    settings = prepare(kafka, tmp_path, fake_slack, fake_pd, tls_cert, monkeypatch, plan)
    record = tmp_path / "actions.jsonl"

    bus = Bus(settings)
    await bus.start()
    try:
        await _scenario(settings, bus, fake_slack, fake_pd, workers, record)
    finally:
        await bus.stop()


async def _scenario(
    settings: Settings,
    bus: Bus,
    fake_slack: FakeSlack,
    fake_pd: FakePagerDuty,
    workers: Callable[..., RecordingWorker],  # noqa: F811 - the fixture
    record: Path,
) -> None:
    async with ingest_for(settings) as (ingest, wiring):
        workers(settings)
        fake_pd.fail_next(503, times=4)  # PagerDuty down for a while: paged once all the same
        failing = incident_id_of(await bus.fire(labels("failing")))
        gated = incident_id_of(await bus.fire(labels("gated")))
        accepted = await _failing_incident(ingest, bus, wiring, fake_slack, fake_pd, failing)
        accepted |= await _gated_incident(ingest, wiring, fake_slack, record, gated)
        refused = await _forged_requests(ingest, failing, gated)

    # Nothing but the accepted commands reached responder.commands.
    records = await bus.read("commands", until=lambda r: len(r) >= len(accepted), timeout_s=10)
    commands = [Command.model_validate_json(value) for _, value in records]
    assert sorted(c.idempotency_key for c in commands) == sorted(accepted), commands
    assert all(key == c.incident_id.encode() for (key, _), c in zip(records, commands, strict=True))

    # ... and every refusal is on responder.audit.
    def refusals(rs: list[tuple[bytes, bytes]]) -> list[AuditEvent]:
        events = [AuditEvent.model_validate_json(v) for _, v in rs]
        return [e for e in events if e.kind == "chatops.refused_signature"]

    audit = await bus.read("audit", until=lambda r: len(refusals(r)) >= refused, timeout_s=20)
    assert len(refusals(audit)) == refused
    assert any(
        e.kind == "chatops.refused_authorization" and e.data["actor_id"] == MALLORY
        for e in (AuditEvent.model_validate_json(v) for _, v in audit)
    )


async def _failing_incident(
    ingest: Client,
    bus: Bus,
    wiring: Any,
    slack: FakeSlack,
    pd: FakePagerDuty,
    incident: str,
) -> set[str]:
    """Steps fail -> Slack, then PagerDuty; a PagerDuty ack stops the chain; the alert resolves."""
    await wait_for(lambda: bool(pd_events(pd, incident, "trigger")), 120)
    paged_at = time.monotonic()
    assert len(incident_messages(slack, incident)) == 1

    async def in_view() -> bool:
        summary = await wiring.view.get(incident)
        return summary is not None and summary.phase is IncidentPhase.ESCALATED

    await eventually(in_view, 10)
    body = pagerduty_webhook("incident.acknowledged", incident, event_id="E7ACK0001")
    response = await ingest.post(
        "/v1/pagerduty", data=body, headers=pagerduty_headers(body, webhook_id="wh-ack-1")
    )
    assert response.status == 200, await response.text()
    # PagerDuty redelivers the same webhook: deduplicated, still one command.
    again = await ingest.post(
        "/v1/pagerduty", data=body, headers=pagerduty_headers(body, webhook_id="wh-ack-1")
    )
    assert again.status == 200

    await wait_for(lambda: bool(pd_events(pd, incident, "acknowledge")), 30)
    await wait_for(lambda: shows(slack, incident, IncidentPhase.ACKNOWLEDGED), 30)

    # The ack reached the engine while two levels had fired (Slack, PagerDuty): the third
    # (#ops, THIRD_LEVEL_WAIT_S after the page) must never fire. Watch past its due time.
    def acked(records: list[tuple[bytes, bytes]]) -> list[Any]:
        return [
            n
            for n in notifications(records)
            if n.incident_id == incident and n.phase is IncidentPhase.ACKNOWLEDGED
        ]

    (ack_note,) = acked(await bus.read("notifications", until=acked, timeout_s=10))
    assert ack_note.escalation_level == 2, "the ack came too late to show the chain stop"
    assert ack_note.actor == "Tenex Engineer"

    def third_level(records: list[tuple[bytes, bytes]]) -> bool:
        return any(
            n.incident_id == incident and n.escalation_level >= 3 for n in notifications(records)
        )

    watch_until = paged_at + THIRD_LEVEL_WAIT_S + 3.0
    records = await bus.read(
        "notifications", until=third_level, timeout_s=max(1.0, watch_until - time.monotonic())
    )
    assert not third_level(records), "the escalation chain went on after the ack"

    await bus.fire(labels("failing"), firing=False)
    await wait_for(lambda: bool(pd_events(pd, incident, "resolve")), 30)
    await wait_for(lambda: shows(slack, incident, IncidentPhase.RESOLVED), 30)

    # Paged once, posted once; both followed the ack and the resolution.
    assert [len(pd_events(pd, incident, a)) for a in ("trigger", "acknowledge", "resolve")] == [
        1,
        1,
        1,
    ]
    assert {e.body["routing_key"] for e in pd.events if e.body.get("dedup_key") == incident} == {
        ONCALL_KEY
    }
    assert pd.alerts[(ONCALL_KEY, incident)] == "resolved"
    assert len(pd.requests) >= len(pd.events) + 4  # the 503s were retried ...
    # ... and meanwhile Slack was not held up: its thread told of the PagerDuty level first.
    (message,) = incident_messages(slack, incident)
    paged = min(e.at for e in pd.events if e.body.get("dedup_key") == incident)
    level_2 = [
        c.at
        for c in slack.calls_to("chat.postMessage")
        if c.body.get("thread_ts") == message.ts and "level 2" in str(c.body.get("text", ""))
    ]
    assert level_2, "no thread reply for the PagerDuty level"
    assert level_2[0] < paged
    assert message.edits >= 2
    return {"pagerduty:E7ACK0001"}


async def _gated_incident(
    ingest: Client, wiring: Any, slack: FakeSlack, record: Path, incident: str
) -> set[str]:
    """An Approve button press, signed as Slack signs it, runs the approval-gated step."""

    def approve_button() -> dict[str, Any] | None:
        # Escalated to PagerDuty meanwhile or not, the step still waits: the button stays.
        for m in incident_messages(slack, incident):
            if shows(slack, incident, IncidentPhase.ESCALATED) and find_button(
                m.blocks, ACTION_APPROVE
            ):
                return find_button(m.blocks, ACTION_APPROVE)
        return None

    await wait_for(lambda: approve_button() is not None, 60)
    button = approve_button()
    assert button is not None
    assert button["value"] == f"{incident}@0"
    (message,) = incident_messages(slack, incident)

    async def in_view() -> bool:
        summary = await wiring.view.get(incident)
        return summary is not None

    await eventually(in_view, 10)

    # /responder show, read-only, answered inline from the ingest's view.
    show = slash_body(f"show {incident}", user_id=MALLORY, trigger_id="t-show-1")
    response = await ingest.post("/v1/slack/commands", data=show, headers=slack_headers(show))
    assert response.status == 200
    assert incident in (await response.json())["text"]

    # Somebody not on the allow-list presses it: refused, nothing runs.
    mallory_url = slack.response_url()
    press = block_actions_body(
        ACTION_APPROVE,
        button["value"],
        user_id=MALLORY,
        trigger_id="t-mallory-1",
        response_url=mallory_url,
        ts=message.ts,
    )
    response = await ingest.post("/v1/slack/interactions", data=press, headers=slack_headers(press))
    assert response.status == 200

    reply_url = slack.response_url()
    press = block_actions_body(
        ACTION_APPROVE,
        button["value"],
        user_id=ALICE,
        trigger_id="t-alice-approve",
        response_url=reply_url,
        ts=message.ts,
    )
    headers = slack_headers(press)
    response = await ingest.post("/v1/slack/interactions", data=press, headers=headers)
    assert response.status == 200
    # The very same request again (a replay): refused.
    replay = await ingest.post("/v1/slack/interactions", data=press, headers=headers)
    assert replay.status == 401

    def ran() -> list[dict[str, Any]]:
        return [r for r in read_log(record) if r["incident"] == incident and r["event"] == "end"]

    await wait_for(lambda: bool(ran()), 60)
    assert [(r["step"], r["action"]) for r in ran()] == [(0, "deployment.restart")]

    # Each person heard back on their response_url: the refusal, and what the engine did.
    def replies(url: str) -> list[str]:
        return [r.body["text"] for r in slack.replies[url.rsplit("/", 1)[1]]]

    await wait_for(lambda: bool(replies(reply_url)), 30)
    assert replies(reply_url) == [
        f":arrow_forward: Approved step 1 of incident `{incident}`; it is running."
    ]
    await wait_for(lambda: bool(replies(mallory_url)), 10)
    assert replies(mallory_url)[0].startswith(":no_entry: Refused")
    return {"slack:t-alice-approve"}


async def _forged_requests(ingest: Client, failing: str, gated: str) -> int:
    """Forged, stale and unsigned requests on every route: 401 each. Returns how many."""
    now = int(time.time())
    attempts: list[tuple[str, bytes, dict[str, str]]] = []
    ack = slash_body(f"ack {failing}", user_id=ALICE, trigger_id="t-forged-1")
    attempts.append(("/v1/slack/commands", ack, slack_headers(ack, secret="not-the-secret")))
    attempts.append(("/v1/slack/commands", ack, slack_headers(ack, timestamp=now - 600)))
    unsigned = {"Content-Type": "application/x-www-form-urlencoded"}
    attempts.append(("/v1/slack/commands", ack, unsigned))
    press = block_actions_body(
        ACTION_APPROVE,
        f"{gated}@0",
        user_id=ALICE,
        trigger_id="t-forged-2",
        response_url="",
        ts="1700000000.000001",
    )
    attempts.append(("/v1/slack/interactions", press, slack_headers(press, secret="nope")))
    attempts.append(("/v1/slack/interactions", press, slack_headers(press, timestamp=now - 400)))
    attempts.append(("/v1/slack/interactions", press, unsigned))
    resolve = pagerduty_webhook("incident.resolved", failing, event_id="E7FORGED1")
    attempts.append(
        ("/v1/pagerduty", resolve, pagerduty_headers(resolve, webhook_id="wh-f1", secret="x"))
    )
    attempts.append(
        ("/v1/pagerduty", resolve, {"Content-Type": "application/json", "X-Webhook-Id": "wh-f2"})
    )
    for path, body, headers in attempts:
        response = await ingest.post(path, data=body, headers=headers)
        assert response.status == 401, (path, headers, await response.text())
    return len(attempts) + 1  # and the replayed approve above


async def test_a_restarted_worker_neither_posts_again_nor_forgets_the_message(
    kafka: Any,
    tmp_path: Path,
    fake_slack: FakeSlack,
    fake_pd: FakePagerDuty,
    tls_cert: tuple[Path, Path],
    workers: Callable[..., RecordingWorker],  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGKILL the worker once Slack shows an incident: its successor, rebuilt from the
    changelogs in a fresh data dir, gets the redelivered notifications and the next
    transition, and edits the same message: one message, one thread reply per transition."""
    settings = prepare(kafka, tmp_path, fake_slack, fake_pd, tls_cert, monkeypatch, {})
    changelog = SLACK_TABLE.changelog(settings.worker.app_id)
    bus = Bus(settings)
    await bus.start()
    try:
        async with ingest_for(settings) as (ingest, wiring):
            first = workers(settings)
            incident = incident_id_of(await bus.fire(labels("gated")))

            def durable(records: list[tuple[bytes, bytes, int]]) -> bool:
                refs = [
                    SlackMessageRef.model_validate_json(v)
                    for k, v, _ in records
                    if k == incident.encode()
                ]
                # escalated (Slack), awaiting approval, escalated (PagerDuty)
                return any(len(ref.delivered) >= 3 for ref in refs)

            assert durable(
                await read_topic(kafka.bootstrap, changelog, until=durable, timeout_s=60)
            )
            first.stop(crash=True)
            fresh = settings.model_copy(
                update={
                    "worker": settings.worker.model_copy(
                        update={"data_dir": str(tmp_path / "worker-after-crash")}
                    )
                }
            )
            workers(fresh)

            async def in_view() -> bool:
                return await wiring.view.get(incident) is not None

            await eventually(in_view, 10)
            reply_url = fake_slack.response_url()
            ack = slash_body(
                f"ack {incident}",
                user_id=ALICE,
                trigger_id="t-ack-after-crash",
                response_url=reply_url,
            )
            response = await ingest.post("/v1/slack/commands", data=ack, headers=slack_headers(ack))
            assert response.status == 200
            assert "accepted" in (await response.json())["text"]

            def thread() -> list[str]:
                (message,) = incident_messages(fake_slack, incident)
                return [m.text for m in fake_slack.thread(message.ts)]

            await wait_for(lambda: any("Acknowledged by alice" in t for t in thread()), 90)
            await wait_for(lambda: bool(pd_events(fake_pd, incident, "acknowledge")), 30)
            rid = reply_url.rsplit("/", 1)[1]
            await wait_for(lambda: bool(fake_slack.replies[rid]), 30)
            assert fake_slack.replies[rid][0].body["text"] == (
                f":eyes: Acknowledged incident `{incident}`; its escalation is stopped."
            )
    finally:
        await bus.stop()
    assert len(incident_messages(fake_slack, incident)) == 1
    texts = thread()
    assert len(texts) == 4, texts  # escalated twice, awaiting approval, acknowledged: once each
    assert len(set(texts)) == 4, texts
    # Acknowledged while its step still waits for approval: PagerDuty hears it all the same.
    assert [len(pd_events(fake_pd, incident, a)) for a in ("trigger", "acknowledge")] == [1, 1]
