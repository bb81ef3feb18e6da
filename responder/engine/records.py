"""The remediation engine's data: per-target state, the events it reacts to, the effects it asks for.

Everything here is a pydantic model because all of it crosses a boundary: state is the
value of the ``remediation`` table (and is recovered from its changelog after a crash),
events and effects travel on ``responder.remediation``. Deadlines (step timeout, verify
window, cooldown wait, next escalation level) are plain fields of the state, so a worker
that restarts finds them in the table and honours them: there are no timers in memory.

State is kept per *target* (``namespace/name``), not per incident: guard rails (cooldown,
max actions per window, one active incident per target) are facts about a target, and
keeping them in the same record as the incidents acting on it makes every decision about
a target one atomic read-modify-write on one partition.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from responder.models.incidents import AuditEvent
from responder.models.notifications import Notification

FINISHED_MEMORY = 256
"""Ids of ended incidents remembered per target: a late or replayed event cannot revive one."""

COMMANDS_MEMORY = 32
"""Command idempotency keys remembered per incident."""

HISTORY_MEMORY = 8
"""Ended incidents kept in full per target, for ``responder incidents show``."""


class Stage(StrEnum):
    """Where an incident's remediation stands (escalation is tracked beside it, not in it).

    The engine's own state; people see its projection ``IncidentPhase``
    (``responder.models.notifications``), and triage's ``IncidentState`` says only whether
    the alerts still fire.
    """

    QUEUED = "queued"
    """Waiting for the target: another incident holds it, or its cooldown has not passed."""
    RUNNING = "running"
    """Step ``step``'s action, attempt ``attempt``, is executing."""
    VERIFYING = "verifying"
    """The action ran; waiting for its verification until ``stage_due``."""
    AWAITING_APPROVAL = "awaiting_approval"
    """Step ``step`` needs a person's approval before it runs."""
    IDLE = "idle"
    """Nothing automatic left to do (steps exhausted, halted by a guard, no auto-recovery):
    people have it, through the escalation chain."""
    DONE = "done"


class LedgerStatus(StrEnum):
    """Where one execution of one step stands in the exactly-once ledger (not shown to people:
    they see ``StepStatus``, derived from the step's outcome)."""

    STARTED = "started"
    FINISHED = "finished"
    TIMED_OUT = "timed_out"


class LedgerEntry(BaseModel):
    """One execution of one (incident, step, attempt): written before it runs and after."""

    model_config = ConfigDict(extra="forbid")

    status: LedgerStatus
    started_at: datetime
    finished_at: datetime | None = None
    ok: bool | None = None
    reconciled: bool = False


class StepOutcome(BaseModel):
    """A line of the incident's history, for people and for notifications."""

    model_config = ConfigDict(extra="forbid")

    step: int
    attempt: int
    action: str
    status: Literal[
        "running",
        "succeeded",
        "failed",
        "timed_out",
        "verified",
        "verify_failed",
        "approved",
        "rejected",
        "dry_run",
        "cancelled",
    ]
    detail: str = ""
    measured: dict[str, Any] | None = None
    """What the step's verification measured (a probe's verdict, success, confidence, latency)."""
    at: datetime


class TargetRef(BaseModel):
    """The workload an incident acts on, already validated by the runbook resolver."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str
    kind: str
    name: str
    region: str | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


class IncidentRun(BaseModel):
    """One incident as remediation sees it."""

    model_config = ConfigDict(extra="forbid")

    id: str
    key: str
    runbook_id: str
    target: TargetRef | None
    invalid_target: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    opened_at: datetime
    alert_received_at: datetime | None = None
    seq: int = 0

    stage: Stage = Stage.QUEUED
    step: int = 0
    attempt: int = 0
    stage_due: datetime | None = None
    halted: str | None = None
    polling: bool = False
    """VERIFYING with a check task (PromQL/HTTP); False when the alert resolving is the check."""

    escalation_level: int = 0
    """Levels of the chain fired so far (0: not escalated)."""
    escalation_due: datetime | None = None
    escalation_repeats: int = 0
    acknowledged_by: str | None = None

    resolved_at: datetime | None = None
    resolution: str | None = None
    ledger: dict[str, LedgerEntry] = Field(default_factory=dict)
    history: list[StepOutcome] = Field(default_factory=list)
    commands_seen: list[str] = Field(default_factory=list)

    def due(self) -> datetime | None:
        """The earliest deadline of this incident, for the timer's scan."""
        dues = [d for d in (self.stage_due, self.escalation_due) if d is not None]
        return min(dues) if dues else None


class GuardState(BaseModel):
    """What the guard rails remember about a target (persisted, so a restart forgets nothing)."""

    model_config = ConfigDict(extra="forbid")

    last_action_at: datetime | None = None
    action_times: list[datetime] = Field(default_factory=list)
    """Start times of real (not dry-run) actions within the longest window in use."""


class TargetState(BaseModel):
    """The value of the ``remediation`` table, keyed by target key."""

    model_config = ConfigDict(extra="forbid")

    key: str
    active: str | None = None
    """The incident holding the target: only it may run actions."""
    queue: list[str] = Field(default_factory=list)
    runs: dict[str, IncidentRun] = Field(default_factory=dict)
    guard: GuardState = Field(default_factory=GuardState)
    finished: dict[str, str] = Field(default_factory=dict)
    """Incident id -> how it ended, oldest first, bounded by FINISHED_MEMORY."""
    history: list[IncidentRun] = Field(default_factory=list)

    def due(self) -> datetime | None:
        dues = [d for run in self.runs.values() if (d := run.due()) is not None]
        return min(dues) if dues else None


# --- events: what the engine reacts to ---------------------------------------------------


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    incident_id: str


class IncidentOpened(_Event):
    type: Literal["incident_opened"] = "incident_opened"
    incident_key: str
    runbook_id: str
    target: TargetRef | None
    invalid_target: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    opened_at: datetime
    alert_received_at: datetime | None = None


class IncidentResolved(_Event):
    """The alerts of the incident resolved (triage's transition)."""

    type: Literal["incident_resolved"] = "incident_resolved"
    at: datetime


class ActionFinished(_Event):
    type: Literal["action_finished"] = "action_finished"
    step: int
    attempt: int
    ok: bool
    detail: str = ""
    result: dict[str, Any] | None = None
    reconciled: bool = False


class VerifyFinished(_Event):
    """A verification's outcome: held (``ok``), or its window ended with the last failing
    verdict (the engine's deadline fails the step too, if it comes first)."""

    type: Literal["verify_finished"] = "verify_finished"
    step: int
    attempt: int
    ok: bool
    detail: str = ""
    measured: dict[str, Any] = Field(default_factory=dict)
    """The check's measured values (``Verdict.measured``), kept with the step and audited."""


class DeadlineKind(StrEnum):
    STAGE = "stage"
    ESCALATION = "escalation"


class DeadlineDue(_Event):
    """Published by the timer; acted on only if the stored deadline is still ``due``."""

    type: Literal["deadline_due"] = "deadline_due"
    kind: DeadlineKind
    due: datetime


class Resume(_Event):
    """Published by the timer for a running/verifying incident that has no task on its owner
    (the worker that started it died): reconcile the action or restart the verification."""

    type: Literal["resume"] = "resume"
    step: int
    attempt: int
    stage: Stage


class CommandKind(StrEnum):
    ACK = "ack"
    RESOLVE = "resolve"
    APPROVE = "approve"
    REJECT = "reject"
    ESCALATE = "escalate"


class CommandReceived(_Event):
    type: Literal["command"] = "command"
    kind: CommandKind
    actor: str
    idempotency_key: str
    step: int | None = None
    reason: str = ""
    reply_to: str | None = None
    """Slack ``response_url`` to tell the person what came of it (checked at ingest)."""


Event = Annotated[
    IncidentOpened
    | IncidentResolved
    | ActionFinished
    | VerifyFinished
    | DeadlineDue
    | Resume
    | CommandReceived,
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


# --- effects: what the engine asks the world to do -----------------------------------------


class _Effect(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RunAction(_Effect):
    """Execute one step's action once for ``key`` (passed to the action as its idempotency key)."""

    type: Literal["run_action"] = "run_action"
    incident_id: str
    step: int
    attempt: int
    key: str
    action: str
    target: TargetRef
    params: dict[str, Any]
    dry_run: bool
    timeout_s: float
    reconcile: bool = False
    """Resuming a started-but-unfinished run: ask ``reconcile(key)`` before running again."""


class ProbeRequest(BaseModel):
    """A runbook's ``probe:`` made concrete: a base URL name, or the target's Service pods."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base: str | None = None
    service: TargetRef | None = None
    """The Service (named like the target) whose ready pods are probed; None with ``base``."""
    port: int
    path: str
    complexity: float
    style: str
    min_confidence: float
    max_latency_ms: float
    accept: list[str] = Field(default_factory=list)


class StartVerify(_Effect):
    type: Literal["start_verify"] = "start_verify"
    incident_id: str
    step: int
    attempt: int
    kind: Literal["promql", "http", "probe"]
    promql: str | None = None
    http_base: str | None = None
    http_path: str | None = None
    http_expect: list[int] = Field(default_factory=list)
    probe: ProbeRequest | None = None
    every_s: float
    until: datetime


class CancelVerify(_Effect):
    type: Literal["cancel_verify"] = "cancel_verify"
    incident_id: str


class Notify(_Effect):
    type: Literal["notify"] = "notify"
    notification: Notification


class Audit(_Effect):
    type: Literal["audit"] = "audit"
    event: AuditEvent


class IndexIncident(_Effect):
    """Tell the command router which target owns this incident id."""

    type: Literal["index_incident"] = "index_incident"
    incident_id: str
    target_key: str


class ReplyToCommand(_Effect):
    """Tell the person who gave a command what came of it (their Slack ``response_url``)."""

    type: Literal["reply"] = "reply"
    incident_id: str
    url: str
    text: str
    idempotency_key: str
    """The command's: one reply per command, however often the event is replayed."""


Effect = RunAction | StartVerify | CancelVerify | Notify | Audit | IndexIncident | ReplyToCommand


class RouteEntry(BaseModel):
    """A message on ``remediation-routes``: which target owns an incident id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    incident_id: str
    target_key: str
