"""The alerting rule's state machine: Prometheus' semantics, with time passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerting_support import DEFINITION

from responder.alerting.loader import load_definition_text
from responder.alerting.rule import (
    Absent,
    Emit,
    Present,
    RuleState,
    SeriesState,
    Timing,
    alert_event,
    alert_labels,
    step,
)
from responder.models.alerts import AlertStatus, label_fingerprint, label_incident_key

SERIES = {"__name__": "minimal_latency_seconds", "engine": "melody", "namespace": "musearoo"}
FOR_60 = Timing(timedelta(seconds=60), timedelta(0))


def _run(
    timing: Timing, observations: list[Present | Absent], state: SeriesState | None = None
) -> tuple[SeriesState | None, list[tuple[float, Emit]]]:
    emitted: list[tuple[float, Emit]] = []
    for observation in observations:
        result = step(state, observation, timing)
        if result.emit is not None:
            emitted.append((observation.at, result.emit))
        state = result.state
    return state, emitted


def seen(at: float, value: float = 0.5) -> Present:
    return Present(at=at, value=value, labels=SERIES, definition="minimal_latency")


def test_fires_once_the_condition_held_for_for_and_not_before() -> None:
    state, emitted = _run(FOR_60, [seen(t) for t in (0, 15, 30, 45)])
    assert emitted == []
    assert state is not None
    assert state.state is RuleState.PENDING
    assert state.active_at == 0
    state, emitted = _run(FOR_60, [seen(60), seen(75), seen(90)], state)
    assert emitted == [(60, Emit.FIRING)]  # once, at the first evaluation past `for:`
    assert state is not None
    assert state.fired_at == 60


def test_for_zero_fires_at_the_first_evaluation() -> None:
    _, emitted = _run(Timing(timedelta(0), timedelta(0)), [seen(10)])
    assert emitted == [(10, Emit.FIRING)]


def test_flapping_within_for_never_fires() -> None:
    flaps: list[Present | Absent] = []
    for start in range(0, 600, 45):  # present 30 s, absent 15 s: never 60 s in a row
        flaps += [seen(start), seen(start + 15), seen(start + 30), Absent(start + 44)]
    state, emitted = _run(FOR_60, flaps)
    assert emitted == []
    assert state is None


def test_resolves_at_the_first_evaluation_without_the_series() -> None:
    state, emitted = _run(FOR_60, [seen(0), seen(60), Absent(75)])
    assert emitted == [(60, Emit.FIRING), (75, Emit.RESOLVED)]
    assert state is None
    # Back again: a new alert, whose `for:` starts over.
    state, emitted = _run(FOR_60, [seen(90), seen(120), seen(150)])
    assert emitted == [(150, Emit.FIRING)]


def test_keep_firing_for_holds_a_firing_alert_and_resets_when_it_comes_back() -> None:
    keep = Timing(timedelta(seconds=60), timedelta(seconds=30))
    state, emitted = _run(keep, [seen(0), seen(60), Absent(75), Absent(90), seen(100)])
    assert emitted == [(60, Emit.FIRING)]
    assert state is not None
    assert state.keep_firing_since is None
    state, emitted = _run(keep, [Absent(115), Absent(130), Absent(145)], state)
    assert emitted == [(145, Emit.RESOLVED)]  # 145 - 115 >= 30
    # A pending series is not kept: keep_firing_for is for firing alerts only.
    state, emitted = _run(keep, [seen(200), Absent(215)])
    assert (state, emitted) == (None, [])


def test_replayed_or_reordered_evaluations_change_nothing() -> None:
    state, emitted = _run(FOR_60, [seen(0), seen(60), seen(60), seen(30), Absent(60), Absent(45)])
    assert emitted == [(60, Emit.FIRING)]
    assert state is not None
    assert state.state is RuleState.FIRING


def test_a_failed_evaluation_is_no_input_so_nothing_resolves_or_fires() -> None:
    """Prometheus down: the poller passes nothing (no Absent), so the state stands as it was;
    the first evaluation after the outage decides with the original active_at."""
    state, _ = _run(FOR_60, [seen(0), seen(30)])
    assert state is not None
    # ... minutes without a successful evaluation: no observation at all ...
    state, emitted = _run(FOR_60, [seen(300)], state)
    assert emitted == [(300, Emit.FIRING)]
    assert state is not None
    assert state.active_at == 0


def test_the_alert_is_what_alertmanager_would_deliver() -> None:
    definition, _, errors = load_definition_text(DEFINITION, "d.yaml")
    assert definition is not None, errors
    state, _ = _run(FOR_60, [seen(0), seen(60)])
    assert state is not None
    labels = alert_labels(definition, SERIES)
    assert labels == {
        "alertname": "minimal_latency",
        "engine": "melody",
        "namespace": "musearoo",
        "severity": "warning",
        "team": "musearoo",
    }
    received = datetime(2026, 12, 1, tzinfo=UTC)
    firing = alert_event(
        definition, state, AlertStatus.FIRING, key=label_incident_key, received_at=received
    )
    assert firing.fingerprint == label_fingerprint(labels)
    assert firing.starts_at == datetime.fromtimestamp(60, UTC)
    assert firing.ends_at is None
    assert firing.annotations == {"summary": "melody is slow"}
    resolved = alert_event(
        definition,
        state,
        AlertStatus.RESOLVED,
        key=label_incident_key,
        received_at=received,
        resolved_at=90,
    )
    assert resolved.dedup_id[0] == firing.dedup_id[0]
    assert resolved.ends_at == datetime.fromtimestamp(90, UTC)


def test_a_series_label_named_like_the_definitions_fields_is_overridden() -> None:
    definition, _, _ = load_definition_text(DEFINITION, "d.yaml")
    assert definition is not None
    labels = alert_labels(definition, {**SERIES, "severity": "info", "alertname": "x", "team": ""})
    assert (labels["severity"], labels["alertname"], labels["team"]) == (
        "warning",
        "minimal_latency",
        "musearoo",
    )
