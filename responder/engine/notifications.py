"""The notification of one transition, in the model the notify agent hands to Slack and PagerDuty.

The engine says *what happened*; the notifiers decide how it looks. Escalation levels
carry the level's destination (a Slack channel, or a PagerDuty routing key *name*), every
other transition carries the runbook's Slack channel so the incident's one message is
updated in place. ``idempotency_key`` is ``incident:seq``: a redelivered transition is
recognised and not posted twice.
"""

from __future__ import annotations

from datetime import datetime

from responder.engine.records import IncidentRun, Stage, StepOutcome
from responder.models.notifications import (
    IncidentPhase,
    Notification,
    Severity,
    StepReport,
    StepStatus,
)
from responder.runbooks.schema import PagerDutyLevel, Runbook, SlackLevel

_STATUS = {
    "running": StepStatus.RUNNING,
    "succeeded": StepStatus.RUNNING,
    "failed": StepStatus.FAILED,
    "timed_out": StepStatus.FAILED,
    "verified": StepStatus.SUCCEEDED,
    "verify_failed": StepStatus.FAILED,
    "approved": StepStatus.RUNNING,
    "rejected": StepStatus.SKIPPED,
    "cancelled": StepStatus.SKIPPED,
    "dry_run": StepStatus.DRY_RUN,
}


def phase(run: IncidentRun) -> IncidentPhase:
    """The state a person sees: the remediation stage first, then the escalation."""
    if run.stage is Stage.DONE:
        return IncidentPhase.RESOLVED
    if run.stage is Stage.AWAITING_APPROVAL:
        return IncidentPhase.AWAITING_APPROVAL
    if run.stage is Stage.RUNNING:
        return IncidentPhase.REMEDIATING
    if run.stage is Stage.VERIFYING:
        return IncidentPhase.VERIFYING
    if run.acknowledged_by is not None:
        return IncidentPhase.ACKNOWLEDGED
    if run.escalation_level > 0:
        return IncidentPhase.ESCALATED
    return IncidentPhase.OPEN


def _severity(labels: dict[str, str]) -> Severity:
    try:
        return Severity(labels.get("severity", "warning"))
    except ValueError:
        return Severity.WARNING


def _steps(run: IncidentRun, runbook: Runbook | None) -> tuple[StepReport, ...]:
    if runbook is None:
        return ()
    latest: dict[int, StepOutcome] = {}
    for outcome in run.history:
        latest[outcome.step] = outcome
    reports = []
    for index, step in enumerate(runbook.steps):
        last = latest.get(index)
        reports.append(
            StepReport(
                index=index,
                action=step.action,
                status=StepStatus.PENDING if last is None else _STATUS[last.status],
                detail="" if last is None else last.detail[:2000],
                approval_required=step.approval == "required",
                measured=None if last is None else last.measured,
            )
        )
    return tuple(reports)


def _runbook_channel(runbook: Runbook | None) -> str | None:
    if runbook is None:
        return None
    for level in runbook.escalation.chain:
        if isinstance(level, SlackLevel):
            return level.channel
    return None


def notification(
    run: IncidentRun,
    runbook: Runbook | None,
    *,
    event: str,
    at: datetime,
    actor: str | None = None,
    level: SlackLevel | PagerDutyLevel | None = None,
) -> Notification:
    target = run.target.model_dump(exclude_none=True) if run.target is not None else {}
    title = runbook.description if runbook is not None and runbook.description else run.runbook_id
    where = f" on {run.target.key}" if run.target is not None else ""
    return Notification(
        idempotency_key=f"{run.id}:{run.seq}",
        incident_id=run.id,
        sequence=run.seq,
        runbook_id=run.runbook_id,
        title=f"{title}{where}"[:500],
        phase=IncidentPhase.ESCALATED if level is not None else phase(run),
        severity=_severity(run.labels),
        target=target,
        steps=_steps(run, runbook),
        current_step=run.step if run.stage is not Stage.DONE else None,
        escalation_level=run.escalation_level,
        actor=actor,
        event=event[:2000],
        slack_channel=(
            level.channel
            if isinstance(level, SlackLevel)
            else None
            if isinstance(level, PagerDutyLevel)
            else _runbook_channel(runbook)
        ),
        pagerduty_service=level.routing_key_ref if isinstance(level, PagerDutyLevel) else None,
        acknowledged=run.acknowledged_by is not None,
        awaiting_approval=run.stage is Stage.AWAITING_APPROVAL,
        occurred_at=at,
    )
