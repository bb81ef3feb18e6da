"""A Prometheus alerting rule's state machine, one series at a time, pure.

The semantics are Prometheus' ``rules/alerting.go`` (``AlertingRule.Eval``):

- a series the expression returns becomes *pending* at that evaluation (``active_at``);
- it *fires* at the first evaluation at which it has been active for ``for:``
  (``ts - active_at >= for``; with ``for: 0s`` at once);
- a *pending* series the expression no longer returns is forgotten (so flapping inside
  ``for:`` never fires: the clock starts again);
- a *firing* series no longer returned is *resolved* at that evaluation, unless
  ``keep_firing_for`` is set: then it keeps firing until it has been absent that long
  (``ts - keep_firing_since >= keep_firing_for``), and coming back resets that clock;
- a resolved series that comes back is a new alert (pending again, a new ``active_at``).

Absence is only ever an *evaluation that succeeded without the series*: the caller passes
:class:`Absent` for it. An evaluation that failed (Prometheus down or slow) is no input at
all: nothing advances and nothing resolves. Time is the evaluation's timestamp, passed in,
so a restarted worker that reads its state back continues where it stood.

The state of one series is small and fixed in shape (:class:`SeriesState`): its labels
(bounded by the series), three timestamps and the last value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from responder.alerting.schema import AlertDefinition, render_all
from responder.models.alerts import AlertEvent, AlertStatus, IncidentKeyer, label_fingerprint

__all__ = [
    "Absent",
    "Emit",
    "Present",
    "RuleState",
    "SeriesState",
    "Timing",
    "alert_event",
    "alert_labels",
    "step",
]


class RuleState(StrEnum):
    PENDING = "pending"
    FIRING = "firing"


class SeriesState(BaseModel):
    """What the evaluator remembers of one series of one definition (a table value)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    definition: str
    labels: dict[str, str]
    """The series' labels (``__name__`` dropped): the alert's labels derive from them."""
    state: RuleState
    active_at: float
    """Evaluation timestamp (Unix seconds) at which the series became active."""
    fired_at: float | None = None
    keep_firing_since: float | None = None
    last_seen: float
    """The last evaluation that returned the series."""
    value: float
    partition: int = 0
    """The partition of ``responder.metrics`` the series lives on (for the absence sweep)."""


@dataclass(frozen=True, slots=True)
class Timing:
    """The timing of a definition that the state machine needs."""

    hold: timedelta
    keep_firing_for: timedelta

    @classmethod
    def of(cls, definition: AlertDefinition) -> Timing:
        return cls(definition.for_, definition.keep_firing_for)


@dataclass(frozen=True, slots=True)
class Present:
    """The evaluation at ``at`` returned the series with ``value``."""

    at: float
    value: float
    labels: dict[str, str]
    definition: str
    partition: int = 0


@dataclass(frozen=True, slots=True)
class Absent:
    """The evaluation at ``at`` succeeded and did not return the series."""

    at: float


class Emit(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Step:
    """The series' next state (None: forget it) and the alert to emit, if any."""

    state: SeriesState | None
    emit: Emit | None = None
    resolved_at: float | None = None
    previous: SeriesState | None = None
    """For a resolve: the state it resolves (its labels, ``fired_at``)."""


def step(current: SeriesState | None, observation: Present | Absent, timing: Timing) -> Step:
    """One evaluation's effect on one series."""
    if isinstance(observation, Present):
        return _present(current, observation, timing)
    return _absent(current, observation, timing)


def _present(current: SeriesState | None, seen: Present, timing: Timing) -> Step:
    if current is not None and seen.at <= current.last_seen:
        return Step(current)  # a replayed or reordered evaluation: already counted
    if current is None:
        current = SeriesState(
            definition=seen.definition,
            labels=seen.labels,
            state=RuleState.PENDING,
            active_at=seen.at,
            last_seen=seen.at,
            value=seen.value,
            partition=seen.partition,
        )
    else:
        current = current.model_copy(
            update={"last_seen": seen.at, "value": seen.value, "keep_firing_since": None}
        )
    if current.state is RuleState.PENDING and seen.at - current.active_at >= _s(timing.hold):
        fired = current.model_copy(update={"state": RuleState.FIRING, "fired_at": seen.at})
        return Step(fired, Emit.FIRING)
    return Step(current)


def _absent(current: SeriesState | None, gone: Absent, timing: Timing) -> Step:
    if current is None or gone.at <= current.last_seen:
        return Step(current)
    if current.state is RuleState.PENDING:
        return Step(None)  # never fired: nothing to resolve, the `for:` clock starts again
    if timing.keep_firing_for > timedelta(0):
        since = current.keep_firing_since if current.keep_firing_since is not None else gone.at
        if gone.at - since < _s(timing.keep_firing_for):
            return Step(current.model_copy(update={"keep_firing_since": since}))
    return Step(None, Emit.RESOLVED, resolved_at=gone.at, previous=current)


def _s(delta: timedelta) -> float:
    return delta.total_seconds()


def alert_labels(definition: AlertDefinition, series: dict[str, str]) -> dict[str, str]:
    """The alert's labels, as Prometheus builds them: the series' (without ``__name__``),
    then the definition's (rendered from the series), then ``severity`` and ``alertname``."""
    labels = {name: value for name, value in series.items() if name != "__name__"}
    labels.update(render_all(definition.labels, series))
    labels["severity"] = definition.severity
    labels["alertname"] = definition.name
    return {name: value for name, value in labels.items() if value}  # empty = absent


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def alert_event(
    definition: AlertDefinition,
    state: SeriesState,
    status: AlertStatus,
    *,
    key: IncidentKeyer,
    received_at: datetime,
    resolved_at: float | None = None,
) -> AlertEvent:
    """The normalized alert ingest would produce for this alert coming from Alertmanager:
    the same labels and fingerprint, ``startsAt`` the firing time, ``endsAt`` the resolve."""
    labels = alert_labels(definition, state.labels)
    annotations = render_all(definition.annotations, state.labels)
    annotations = {name: value for name, value in annotations.items() if value}
    started = state.fired_at if state.fired_at is not None else state.active_at
    return AlertEvent(
        incident_key=key(labels, annotations),
        fingerprint=label_fingerprint(labels),
        status=status,
        starts_at=_utc(started),
        ends_at=None if resolved_at is None else _utc(resolved_at),
        labels=labels,
        annotations=annotations,
        receiver="metric-streams",
        generator_url=f"definition:{definition.name}",
        received_at=received_at,
    )
