"""The router's pure part: triage transitions and people's commands -> engine events and keys."""

from __future__ import annotations

from datetime import UTC, datetime

from engine_support import T0, runbook

from responder.engine.records import CommandKind, IncidentOpened, IncidentResolved
from responder.engine.routing import Routed, Unrouted, command_event, route_transition
from responder.models.commands import Actor, Command, CommandSource
from responder.models.commands import CommandKind as Inbound
from responder.models.incidents import IncidentState, IncidentTransition
from responder.runbooks.catalog import RunbookSet
from responder.runbooks.templates import parse_template

RUNBOOKS = RunbookSet.of([runbook()])


def transition(to: IncidentState, **labels: str) -> IncidentTransition:
    return IncidentTransition(
        incident_id="inc-1",
        incident_key="k",
        seq=1,
        from_state=None,
        to_state=to,
        at=T0,
        cause_fingerprint="fp",
        alert_received_at=T0,
        labels={"alertname": "HighLatency", **labels},
    )


def test_open_is_keyed_by_the_resolved_target() -> None:
    routed = route_transition(
        transition(IncidentState.OPEN, namespace="musearoo", engine="drummaroo"), RUNBOOKS
    )
    assert isinstance(routed, Routed)
    assert routed.key == "musearoo/drummaroo-engine"
    assert isinstance(routed.event, IncidentOpened)
    assert routed.event.runbook_id == "latency"
    assert routed.event.target is not None
    assert routed.event.target.name == "drummaroo-engine"
    assert routed.event.alert_received_at == T0


def test_resolution_goes_to_the_same_target() -> None:
    routed = route_transition(
        transition(IncidentState.RESOLVED, namespace="musearoo", engine="drummaroo"), RUNBOOKS
    )
    assert isinstance(routed, Routed)
    assert routed.key == "musearoo/drummaroo-engine"
    assert isinstance(routed.event, IncidentResolved)


def test_crafted_label_gives_an_incident_without_target() -> None:
    routed = route_transition(
        transition(IncidentState.OPEN, namespace="musearoo", engine="x; rm -rf /"), RUNBOOKS
    )
    assert isinstance(routed, Routed)
    assert isinstance(routed.event, IncidentOpened)
    assert routed.event.target is None
    assert routed.event.invalid_target is not None
    assert "rm -rf" not in routed.key


def test_no_runbook_is_not_routed() -> None:
    assert isinstance(route_transition(transition(IncidentState.OPEN), RunbookSet.of([])), Unrouted)


def test_incident_commands_map_and_others_do_not() -> None:
    def command(kind: Inbound, **extra: object) -> Command:
        return Command(
            kind=kind,
            idempotency_key="k1",
            actor=Actor(id="U1", name="alice"),
            source=CommandSource.SLACK_BUTTON,
            issued_at=datetime(2026, 11, 30, tzinfo=UTC),
            **extra,  # type: ignore[arg-type]
        )

    approve = command_event(command(Inbound.APPROVE, incident_id="inc-1", step=2))
    assert approve is not None
    assert (approve.kind, approve.actor, approve.step) == (CommandKind.APPROVE, "alice", 2)
    run = command(Inbound.RUN, action="deployment.restart", target="ns/name")
    assert command_event(run) is None


def test_target_templated_from_annotations_resolves_as_at_ingest() -> None:
    """Ingest keys an alert with its annotations; the router must see the same ones, or a
    runbook whose target comes from an annotation would route as an invalid target."""
    base = runbook()
    by_annotation = base.model_copy(
        update={
            "target": base.target.model_copy(
                update={"name": parse_template("{{ annotations.workload }}")}
            )
        }
    )
    opened = transition(IncidentState.OPEN, namespace="musearoo").model_copy(
        update={"annotations": {"workload": "hub-engine"}}
    )
    routed = route_transition(opened, RunbookSet.of([by_annotation]))
    assert isinstance(routed, Routed)
    assert routed.key == "musearoo/hub-engine"
    assert isinstance(routed.event, IncidentOpened)
    assert routed.event.invalid_target is None
    assert routed.event.annotations == {"workload": "hub-engine"}
