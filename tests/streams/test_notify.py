"""The notify agent's logic without a broker: routing, bounded retries, failures audited;
and the engine's replies to commands (``responder.engine.replies``) through ``decide``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from responder.engine.machine import decide
from responder.engine.records import (
    CommandKind,
    CommandReceived,
    IncidentOpened,
    ReplyToCommand,
    TargetRef,
    TargetState,
)
from responder.errors import PermanentError, TemporaryError
from responder.integrations.base import DeliveryOutcome, DeliveryResult
from responder.integrations.pagerduty.events import InMemoryPagerDutyStore, PagerDutyNotifier
from responder.integrations.slack.blocks import ACTION_ACK, ACTION_APPROVE, incident_blocks
from responder.models.notifications import IncidentPhase, Notification
from responder.runbooks.loader import load_text
from responder.settings import NotifySettings, PagerDutySettings
from streams.notify import Deliverer, Failure, recipients

T0 = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


class Clock:
    """Monotonic time that moves only when the deliverer sleeps."""

    def __init__(self) -> None:
        self.t = 100.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


class Scripted:
    """A notifier answering from a script of exceptions, then delivering."""

    def __init__(self, name: str, *failures: Exception) -> None:
        self.name = name
        self.failures = list(failures)
        self.seen: list[str] = []

    async def notify(self, n: Notification) -> DeliveryResult:
        self.seen.append(n.idempotency_key)
        if self.failures:
            raise self.failures.pop(0)
        return DeliveryResult(notifier=self.name, outcome=DeliveryOutcome.DELIVERED)

    async def aclose(self) -> None:
        return None


def note(phase: IncidentPhase, seq: int = 1, **extra: Any) -> Notification:
    fields: dict[str, Any] = {
        "idempotency_key": f"inc-1:{seq}",
        "incident_id": "inc-1",
        "sequence": seq,
        "runbook_id": "latency",
        "title": "latency on musearoo/api",
        "phase": phase,
        "occurred_at": T0,
    }
    fields.update(extra)
    return Notification.model_validate(fields)


def deliverer(
    clock: Clock, *notifiers: Scripted, budget: float = 10.0, max_delay: float = 5.0
) -> tuple[Deliverer, list[tuple[str, Failure]]]:
    audited: list[tuple[str, Failure]] = []

    async def audit(n: Notification, failure: Failure) -> None:
        audited.append((n.idempotency_key, failure))

    return (
        Deliverer(
            notifiers={n.name: n for n in notifiers},
            settings=NotifySettings(retry_budget_s=budget, retry_max_delay_s=max_delay),
            audit=audit,
            sleep=clock.sleep,
            monotonic=clock.monotonic,
        ),
        audited,
    )


@pytest.mark.parametrize(
    ("phase", "pagerduty_service", "expected"),
    [
        (IncidentPhase.REMEDIATING, None, ["slack"]),
        (IncidentPhase.AWAITING_APPROVAL, None, ["slack"]),
        (IncidentPhase.ESCALATED, None, ["slack"]),  # a Slack level pages nobody
        (IncidentPhase.ESCALATED, "oncall", ["slack", "pagerduty"]),
        (IncidentPhase.ACKNOWLEDGED, None, ["slack", "pagerduty"]),
        (IncidentPhase.RESOLVED, None, ["slack", "pagerduty"]),
    ],
)
def test_slack_hears_everything_pagerduty_only_pages_and_follow_ups(
    phase: IncidentPhase, pagerduty_service: str | None, expected: list[str]
) -> None:
    notifiers = {"slack": Scripted("slack"), "pagerduty": Scripted("pagerduty")}
    n = note(phase, pagerduty_service=pagerduty_service)
    assert [r.name for r in recipients(n, notifiers)] == expected
    assert [r.name for r in recipients(n, {"pagerduty": notifiers["pagerduty"]})] == [
        e for e in expected if e == "pagerduty"
    ]


def test_an_acknowledgement_reaches_pagerduty_whatever_the_phase_shows() -> None:
    notifiers = {"slack": Scripted("slack"), "pagerduty": Scripted("pagerduty")}
    n = note(IncidentPhase.AWAITING_APPROVAL, acknowledged=True)
    assert [r.name for r in recipients(n, notifiers)] == ["slack", "pagerduty"]


class RecordingEvents:
    """Stands in for ``EventsClient``: records (service, action, dedup_key)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    async def send(self, service: str, action: str, dedup_key: str, event: Any = None) -> str:
        self.sent.append((service, action, dedup_key))
        return dedup_key


async def test_pagerduty_is_acknowledged_while_a_step_still_waits_for_approval() -> None:
    events = RecordingEvents()
    settings = PagerDutySettings(
        routing_keys={"oncall": SecretStr("K" * 32)}, default_service="oncall"
    )
    notifier = PagerDutyNotifier(settings, events, InMemoryPagerDutyStore())  # type: ignore[arg-type]
    await notifier.notify(note(IncidentPhase.ESCALATED, 1, pagerduty_service="oncall"))
    waiting = note(IncidentPhase.AWAITING_APPROVAL, 2, acknowledged=True)
    await notifier.notify(waiting)
    await notifier.notify(note(IncidentPhase.REMEDIATING, 3, acknowledged=True))
    assert events.sent == [("oncall", "trigger", "inc-1"), ("oncall", "acknowledge", "inc-1")]


def test_slack_shows_an_acknowledged_incident_still_waiting_for_approval() -> None:
    steps = (
        {"index": 0, "action": "region.failover", "status": "pending", "approval_required": True},
    )
    n = note(IncidentPhase.AWAITING_APPROVAL, acknowledged=True, current_step=0, steps=steps)
    blocks = incident_blocks(n)
    ids = [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert ACTION_APPROVE in ids
    assert ACTION_ACK not in ids
    assert "awaiting_approval (acknowledged)" in json.dumps(blocks)


def test_an_escalation_while_a_step_waits_keeps_the_approve_button() -> None:
    steps = (
        {"index": 0, "action": "region.failover", "status": "pending", "approval_required": True},
    )
    n = note(
        IncidentPhase.ESCALATED,
        awaiting_approval=True,
        current_step=0,
        steps=steps,
        pagerduty_service="oncall",
    )
    ids = [
        e["action_id"] for b in incident_blocks(n) if b["type"] == "actions" for e in b["elements"]
    ]
    assert ACTION_APPROVE in ids


async def test_temporary_errors_are_retried_after_their_delay() -> None:
    clock = Clock()
    slack = Scripted("slack", TemporaryError("429", delay=2.0), TemporaryError("503", delay=1.0))
    d, audited = deliverer(clock, slack)
    (outcome,) = await d.deliver(note(IncidentPhase.OPEN))
    assert isinstance(outcome, DeliveryResult)
    assert outcome.outcome is DeliveryOutcome.DELIVERED
    assert clock.slept == [2.0, 1.0]
    assert audited == []


async def test_a_retry_after_beyond_the_cap_waits_the_cap() -> None:
    clock = Clock()
    slack = Scripted("slack", TemporaryError("429", delay=3600.0))
    d, _ = deliverer(clock, slack, budget=100.0, max_delay=5.0)
    await d.deliver(note(IncidentPhase.OPEN))
    assert clock.slept == [5.0]


async def test_retries_stop_at_the_budget_and_the_failure_is_audited() -> None:
    clock = Clock()
    slack = Scripted("slack", *(TemporaryError("down", delay=4.0) for _ in range(10)))
    d, audited = deliverer(clock, slack, budget=10.0)
    (outcome,) = await d.deliver(note(IncidentPhase.OPEN))
    assert isinstance(outcome, Failure)
    assert (outcome.permanent, outcome.attempts) == (False, 3)
    assert clock.slept == [4.0, 4.0]  # a third wait would pass the 10 s budget
    assert [key for key, _ in audited] == ["inc-1:1"]
    assert d.failures == 1


async def test_a_permanent_error_is_audited_at_once_and_the_next_notifier_still_hears() -> None:
    clock = Clock()
    slack = Scripted("slack", PermanentError("slack chat.postMessage: channel_not_found"))
    pagerduty = Scripted("pagerduty")
    d, audited = deliverer(clock, slack, pagerduty)
    outcomes = await d.deliver(note(IncidentPhase.ESCALATED, pagerduty_service="oncall"))
    assert isinstance(outcomes[0], Failure)
    assert outcomes[0].permanent
    assert "channel_not_found" in outcomes[0].error
    assert isinstance(outcomes[1], DeliveryResult)
    assert clock.slept == []
    assert [(key, f.notifier) for key, f in audited] == [("inc-1:1", "slack")]
    assert pagerduty.seen == ["inc-1:1"]


async def test_an_audit_failure_is_logged_and_delivery_goes_on() -> None:
    clock = Clock()
    pagerduty = Scripted("pagerduty")

    async def broken_audit(n: Notification, failure: Failure) -> None:
        raise ConnectionError("audit topic unreachable")

    d = Deliverer(
        notifiers={"slack": Scripted("slack", PermanentError("no")), "pagerduty": pagerduty},
        settings=NotifySettings(),
        audit=broken_audit,
        sleep=clock.sleep,
        monotonic=clock.monotonic,
    )
    outcomes = await d.deliver(note(IncidentPhase.RESOLVED))
    assert isinstance(outcomes[0], Failure)
    assert pagerduty.seen == ["inc-1:1"]


async def test_a_crashing_notifier_does_not_stop_delivery() -> None:
    clock = Clock()
    d, audited = deliverer(clock, Scripted("slack", KeyError("bug")))
    (outcome,) = await d.deliver(note(IncidentPhase.OPEN))
    assert isinstance(outcome, Failure)
    assert outcome.error == "unexpected KeyError"
    assert len(audited) == 1


# --- replies to commands, decided by the engine ------------------------------------------------

RUNBOOK = """
apiVersion: responder/v1
id: gated
match: {alertname: Gated}
target: {namespace: "{{ labels.namespace }}", name: "{{ labels.service }}"}
auto_recovery: false
cooldown: 0s
steps:
  - action: deployment.restart
    approval: required
    timeout: 60s
    verify: {alert_resolved: true, within: 2m}
escalation:
  after: 0s
  chain:
    - {notify: slack, channel: "#incidents"}
"""

TARGET = TargetRef(namespace="musearoo", kind="Deployment", name="api")
URL = "https://hooks.slack.com/actions/T1/1/abc"


class Engine:
    def __init__(self) -> None:
        loaded, _, errors = load_text(RUNBOOK, "gated.yaml")
        assert loaded is not None, errors
        self.runbooks = {loaded.id: loaded}
        self.state: TargetState | None = None

    def feed(self, event: Any, seconds: float = 0.0) -> list[ReplyToCommand]:
        decision = decide(
            self.state,
            event,
            target_key=TARGET.key,
            runbooks=self.runbooks.get,
            now=T0 + timedelta(seconds=seconds),
        )
        self.state = TargetState.model_validate_json(decision.state.model_dump_json())
        return [e for e in decision.effects if isinstance(e, ReplyToCommand)]


def command(
    kind: CommandKind, key: str, *, reply_to: str | None = URL, step: int | None = 0
) -> Any:
    return CommandReceived(
        incident_id="inc-1",
        kind=kind,
        actor="alice",
        idempotency_key=key,
        step=step,
        reply_to=reply_to,
    )


def opened_engine() -> Engine:
    engine = Engine()
    engine.feed(
        IncidentOpened(
            incident_id="inc-1",
            incident_key="gated:musearoo/api",
            runbook_id="gated",
            target=TARGET,
            labels={"alertname": "Gated", "namespace": "musearoo", "service": "api"},
            opened_at=T0,
        )
    )
    return engine


def test_a_command_is_answered_once_with_what_came_of_it() -> None:
    engine = opened_engine()
    (reply,) = engine.feed(command(CommandKind.APPROVE, "slack:t1"), 5)
    assert reply.url == URL
    assert reply.idempotency_key == "slack:t1"
    assert reply.text == ":arrow_forward: Approved step 1 of incident `inc-1`; it is running."
    # The same command redelivered: already applied, not answered again.
    assert engine.feed(command(CommandKind.APPROVE, "slack:t1"), 6) == []
    # Another approve: nothing left to approve, and the person is told so.
    (again,) = engine.feed(command(CommandKind.APPROVE, "slack:t2"), 7)
    assert again.text.startswith(":information_source: Nothing to approve step 1")


def test_ack_escalate_and_resolve_replies() -> None:
    engine = opened_engine()
    (ack,) = engine.feed(command(CommandKind.ACK, "k1", step=None), 1)
    assert "its escalation is stopped" in ack.text
    (ack2,) = engine.feed(command(CommandKind.ACK, "k2", step=None), 2)
    assert "already acknowledged by alice" in ack2.text
    (resolved,) = engine.feed(command(CommandKind.RESOLVE, "k3", step=None), 3)
    assert resolved.text == ":white_check_mark: Resolved incident `inc-1`."
    (late,) = engine.feed(command(CommandKind.ACK, "k4", step=None), 4)
    assert late.text == ":information_source: Incident `inc-1` already ended (resolved by command)."


def test_commands_without_a_reply_url_get_no_reply() -> None:
    engine = opened_engine()
    assert engine.feed(command(CommandKind.APPROVE, "cli:1", reply_to=None), 1) == []
