"""The approval gate: a step marked ``approval: required`` waits for a person.

Only the step the approval was asked for can be approved: a button drawn for step 2
cannot approve step 3 (``Command.step``). Without ``auto_recovery`` only gated steps run,
each after its approval; the others are skipped.
"""

from __future__ import annotations

from responder.runbooks.schema import Runbook, Step


def gated(step: Step) -> bool:
    return step.approval == "required"


def runnable(runbook: Runbook, step: Step) -> bool:
    """Whether the step may run at all (after approval if gated)."""
    return runbook.auto_recovery or gated(step)


def matches(command_step: int | None, waiting_step: int) -> bool:
    """Whether an approve/reject aimed at ``command_step`` applies to the waiting step."""
    return command_step is None or command_step == waiting_step
