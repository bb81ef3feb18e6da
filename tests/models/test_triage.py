"""The triage stage: deduplication, opening and resolving, bounded state."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from responder.models.alerts import AlertEvent
from responder.models.incidents import Incident, IncidentState
from responder.models.triage import RESOLVED_MEMORY, apply_alert

AlertFactory = Callable[..., AlertEvent]

NOW = datetime(2026, 11, 30, 3, 5, tzinfo=UTC)


def fold(events: list[AlertEvent]) -> tuple[dict[str, Incident], list[str]]:
    """Apply events as the agent does; return the table and the transitions' (id, state)."""
    table: dict[str, Incident] = {}
    transitions: list[str] = []
    for event in events:
        result = apply_alert(table.get(event.incident_key), event, now=NOW)
        if result.changed and result.incident is not None:
            table[event.incident_key] = result.incident
        transitions += [f"{t.incident_id}:{t.to_state}" for t in result.transitions]
    return table, transitions


def test_first_firing_alert_opens_an_incident(alert: AlertFactory) -> None:
    result = apply_alert(None, alert("fp1"), now=NOW)

    assert result.changed
    assert result.incident is not None
    assert result.incident.state is IncidentState.OPEN
    assert result.incident.opened_at == NOW
    [transition] = result.transitions
    assert (transition.from_state, transition.to_state) == (None, IncidentState.OPEN)
    assert transition.incident_id == result.incident.id


def test_duplicate_delivery_is_a_no_op(alert: AlertFactory) -> None:
    opened = apply_alert(None, alert("fp1"), now=NOW).incident

    again = apply_alert(opened, alert("fp1"), now=NOW)

    assert not again.changed
    assert again.transitions == []
    assert again.incident == opened


def test_other_fingerprints_join_the_open_incident(alert: AlertFactory) -> None:
    table, transitions = fold([alert("fp1"), alert("fp2"), alert("fp3", minutes=2)])

    [incident] = table.values()
    assert set(incident.active) == {"fp1", "fp2", "fp3"}
    assert len(transitions) == 1


def test_resolves_only_when_every_alert_resolved(alert: AlertFactory) -> None:
    table, transitions = fold(
        [alert("fp1"), alert("fp2"), alert("fp1", status="resolved")],
    )
    [incident] = table.values()
    assert incident.state is IncidentState.OPEN
    assert len(transitions) == 1

    table, transitions = fold(
        [
            alert("fp1"),
            alert("fp2"),
            alert("fp1", status="resolved"),
            alert("fp2", status="resolved"),
        ],
    )
    [incident] = table.values()
    assert incident.state is IncidentState.RESOLVED
    assert incident.resolved_at == NOW
    assert transitions == [f"{incident.id}:open", f"{incident.id}:resolved"]


def test_late_twin_of_a_resolved_alert_does_not_reopen(alert: AlertFactory) -> None:
    table, transitions = fold(
        [
            alert("fp1"),
            alert("fp1", status="resolved"),
            alert("fp1"),
            alert("fp1", status="resolved"),
        ],
    )

    [incident] = table.values()
    assert incident.state is IncidentState.RESOLVED
    assert len(transitions) == 2


def test_refiring_after_resolution_opens_a_new_incident(alert: AlertFactory) -> None:
    table, transitions = fold(
        [alert("fp1"), alert("fp1", status="resolved"), alert("fp1", minutes=30)],
    )

    [incident] = table.values()
    assert incident.state is IncidentState.OPEN
    first_id = transitions[0].split(":")[0]
    assert incident.id != first_id
    assert transitions[-1] == f"{incident.id}:open"


def test_resolve_of_an_older_episode_keeps_the_newer_open(alert: AlertFactory) -> None:
    table, _ = fold([alert("fp1", minutes=10), alert("fp1", minutes=0, status="resolved")])

    [incident] = table.values()
    assert incident.state is IncidentState.OPEN


def test_resolved_alert_for_unknown_key_is_ignored(alert: AlertFactory) -> None:
    result = apply_alert(None, alert("fp1", status="resolved"), now=NOW)

    assert (result.incident, result.changed, result.transitions) == (None, False, [])


def test_incident_id_is_the_same_on_replay(alert: AlertFactory) -> None:
    first = apply_alert(None, alert("fp1"), now=NOW).incident
    replay = apply_alert(None, alert("fp1"), now=datetime(2027, 1, 1, tzinfo=UTC)).incident

    assert first is not None
    assert replay is not None
    assert first.id == replay.id


def test_duplicate_storm_does_not_grow_the_record(alert: AlertFactory) -> None:
    incident = apply_alert(None, alert("fp1"), now=NOW).incident
    assert incident is not None
    size = len(incident.model_dump_json())

    for _ in range(100_000):
        result = apply_alert(incident, alert("fp1"), now=NOW)
        assert not result.changed

    assert len(incident.model_dump_json()) == size


def test_resolved_memory_is_bounded(alert: AlertFactory) -> None:
    events = [alert("keep")]
    for i in range(RESOLVED_MEMORY * 3):
        events += [alert(f"fp{i}"), alert(f"fp{i}", status="resolved")]
    table, _ = fold(events)

    [incident] = table.values()
    assert len(incident.resolved_alerts) == RESOLVED_MEMORY
    assert f"fp{RESOLVED_MEMORY * 3 - 1}" in incident.resolved_alerts  # newest kept, oldest gone
    assert incident.state is IncidentState.OPEN


# The ``alert`` fixture is a stateless builder, so sharing it across examples is safe.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(), copies=st.integers(min_value=1, max_value=4))
def test_any_order_with_duplicates_opens_one_incident_per_key(
    alert: AlertFactory, seed: int, copies: int
) -> None:
    events = [alert(f"fp{k}-{f}", service=f"svc{k}") for k in range(5) for f in range(3)] * copies
    random.Random(seed).shuffle(events)

    table, transitions = fold(events)

    assert len(table) == 5
    assert len(transitions) == 5
    assert all(i.state is IncidentState.OPEN and len(i.active) == 3 for i in table.values())
