"""What a person hears back after a command: one sentence saying what came of it.

Slack's ``/responder ack|resolve|approve|reject|escalate`` and the buttons are answered
within 3 s with "accepted"; the outcome is only known once the engine has applied the
command to the incident. Pure: the state before and after the command in, a sentence out.
"""

from __future__ import annotations

from dataclasses import dataclass

from responder.engine.records import CommandKind, CommandReceived, IncidentRun, Stage


@dataclass(frozen=True, slots=True)
class Before:
    """The parts of an incident a command can change, as they were before it."""

    stage: Stage
    step: int
    acknowledged_by: str | None
    escalation_level: int
    escalation_repeats: int

    @classmethod
    def of(cls, run: IncidentRun) -> Before:
        return cls(
            run.stage, run.step, run.acknowledged_by, run.escalation_level, run.escalation_repeats
        )


def command_reply(cmd: CommandReceived, before: Before, after: IncidentRun) -> str:
    """The outcome of ``cmd`` on the incident, for the person who gave it."""
    name = f"`{after.id}`"
    if cmd.kind is CommandKind.RESOLVE:
        return f":white_check_mark: Resolved incident {name}."
    if cmd.kind is CommandKind.ACK:
        if before.acknowledged_by is None:
            return f":eyes: Acknowledged incident {name}; its escalation is stopped."
        return f":information_source: Incident {name} was already acknowledged by {before.acknowledged_by}."
    if cmd.kind is CommandKind.ESCALATE:
        if (after.escalation_level, after.escalation_repeats) != (
            before.escalation_level,
            before.escalation_repeats,
        ):
            return f":rotating_light: Escalated incident {name} to level {after.escalation_level}."
        return f":information_source: Incident {name} has no further escalation level."
    verb = "approve" if cmd.kind is CommandKind.APPROVE else "reject"
    unchanged = after.stage is Stage.AWAITING_APPROVAL and after.step == before.step
    if before.stage is not Stage.AWAITING_APPROVAL or unchanged:
        wanted = f" step {cmd.step + 1}" if cmd.step is not None else ""
        return (
            f":information_source: Nothing to {verb}{wanted} on incident {name}: "
            f"it is {before.stage.value} (step {before.step + 1})."
        )
    if cmd.kind is CommandKind.APPROVE:
        return f":arrow_forward: Approved step {before.step + 1} of incident {name}; it is running."
    return f":fast_forward: Rejected step {before.step + 1} of incident {name}; moving on."


def ended_reply(cmd: CommandReceived, how: str | None) -> str:
    """For a command naming an incident that is no longer open on its target."""
    if how is None:
        return f":information_source: Incident `{cmd.incident_id}` is not open."
    return f":information_source: Incident `{cmd.incident_id}` already ended ({how.replace('_', ' ')})."
