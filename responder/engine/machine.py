"""``decide``: one event plus a target's state -> the next state and the effects to carry out.

Pure: no I/O, no clock of its own (``now`` is an argument), no randomness, so every
transition is unit-tested and a replayed event yields the same decision. The streams
layer stores ``new_state`` *before* carrying out the effects (the action ledger entry
"started" is part of that state), which is what makes a crash between the two safe:
on replay the ledger says the step was started, and the action's idempotency key makes
the repeat a no-op.

Per incident the machine is::

    queued ─▶ running(step i, attempt a) ─▶ verifying(i) ─▶ done (verified)
       │            │ fail/timeout: retry (a+1) or step i+1     │ fail: step i+1
       │            ▼                                           ▼
       └─▶ awaiting_approval(i) ─approve▶ running   ─reject▶ step i+1
    steps exhausted / guard halts / auto_recovery false ─▶ idle (escalated)

and beside it the escalation chain (levels fired, next due), stopped by ``ack``. The
alert resolving, or ``resolve``, ends the incident from any stage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from responder.engine import escalation as esc
from responder.engine import replies
from responder.engine.guards import admission, approval, cooldown, dry_run, rate_limit
from responder.engine.notifications import notification
from responder.engine.records import (
    COMMANDS_MEMORY,
    FINISHED_MEMORY,
    HISTORY_MEMORY,
    ActionFinished,
    Audit,
    CancelVerify,
    CommandKind,
    CommandReceived,
    DeadlineDue,
    DeadlineKind,
    Effect,
    Event,
    IncidentOpened,
    IncidentResolved,
    IncidentRun,
    IndexIncident,
    LedgerEntry,
    LedgerStatus,
    Notify,
    ProbeRequest,
    ReplyToCommand,
    Resume,
    RunAction,
    Stage,
    StartVerify,
    StepOutcome,
    TargetState,
    VerifyFinished,
)
from responder.models.incidents import AuditEvent
from responder.runbooks.resolve import RenderErrors, render_verify_promql
from responder.runbooks.schema import PagerDutyLevel, Runbook, SlackLevel

RunbookLookup = Callable[[str], Runbook | None]


@dataclass(frozen=True, slots=True)
class EngineConfig:
    global_dry_run: bool = False


@dataclass(slots=True)
class Decision:
    """The state to store, then the effects to carry out, in order."""

    state: TargetState
    effects: list[Effect] = field(default_factory=list)
    changed: bool = False


def ledger_key(incident_id: str, step: int, attempt: int) -> str:
    """The idempotency key of one execution: ``incident:step:attempt``."""
    return f"{incident_id}:{step}:{attempt}"


def decide(
    state: TargetState | None,
    event: Event,
    *,
    target_key: str,
    runbooks: RunbookLookup,
    now: datetime,
    config: EngineConfig = EngineConfig(),
) -> Decision:
    """Apply one event to the state of the target ``target_key``."""
    current = state.model_copy(deep=True) if state is not None else TargetState(key=target_key)
    step = _Decider(current, runbooks, now, config)
    step.handle(event)
    return Decision(state=current, effects=step.effects, changed=step.changed)


class _Decider:
    """The work of one ``decide`` call: mutates its private copy of the state."""

    def __init__(
        self, state: TargetState, runbooks: RunbookLookup, now: datetime, config: EngineConfig
    ) -> None:
        self.state = state
        self.runbooks = runbooks
        self.now = now
        self.config = config
        self.effects: list[Effect] = []
        self.changed = False

    # --- dispatch -------------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        if isinstance(event, IncidentOpened):
            self.opened(event)
            return
        run = self.state.runs.get(event.incident_id)
        if run is None:
            if isinstance(event, CommandReceived) and event.reply_to:
                how = self.state.finished.get(event.incident_id)
                self.reply(event, replies.ended_reply(event, how))
            return  # unknown or already ended: a late, duplicate or replayed event
        runbook = self.runbooks(run.runbook_id)
        if runbook is None:
            self.end(run, None, "runbook_removed", actor=None)
            return
        if isinstance(event, IncidentResolved):
            self.end(run, runbook, "alert_resolved", actor=None)
        elif isinstance(event, ActionFinished):
            self.action_finished(run, runbook, event)
        elif isinstance(event, VerifyFinished):
            self.verify_finished(run, runbook, event)
        elif isinstance(event, DeadlineDue):
            self.deadline(run, runbook, event)
        elif isinstance(event, Resume):
            self.resume(run, runbook, event)
        else:
            self.command(run, runbook, event)

    # --- helpers ----------------------------------------------------------------------------

    def touch(self, run: IncidentRun) -> None:
        run.seq += 1
        self.changed = True

    def audit(self, run: IncidentRun, kind: str, **data: Any) -> None:
        data.setdefault("target", run.target.key if run.target else None)
        data.setdefault("runbook", run.runbook_id)
        self.effects.append(
            Audit(
                event=AuditEvent(
                    kind=f"remediation.{kind}",
                    incident_id=run.id,
                    incident_key=run.key,
                    at=self.now,
                    data=data,
                )
            )
        )

    def audit_outcome(
        self, run: IncidentRun, kind: str, event: ActionFinished | VerifyFinished, **data: Any
    ) -> None:
        """Audit what an action or a verification reported, whether or not the plan uses it."""
        self.audit(
            run,
            kind,
            step=event.step,
            attempt=event.attempt,
            ok=event.ok,
            detail=event.detail[:500],
            **data,
        )

    def notify(
        self,
        run: IncidentRun,
        runbook: Runbook | None,
        event: str,
        *,
        actor: str | None = None,
        level: SlackLevel | PagerDutyLevel | None = None,
    ) -> None:
        self.effects.append(
            Notify(
                notification=notification(
                    run, runbook, event=event, at=self.now, actor=actor, level=level
                )
            )
        )

    def history(
        self,
        run: IncidentRun,
        status: Any,
        detail: str = "",
        measured: dict[str, Any] | None = None,
    ) -> None:
        runbook = self.runbooks(run.runbook_id)
        action = (
            runbook.steps[run.step].action
            if runbook is not None and run.step < len(runbook.steps)
            else ""
        )
        run.history.append(
            StepOutcome(
                step=run.step,
                attempt=run.attempt,
                action=action,
                status=status,
                detail=detail[:500],
                measured=measured or None,
                at=self.now,
            )
        )

    # --- opening and admission ----------------------------------------------------------------

    def opened(self, event: IncidentOpened) -> None:
        if event.incident_id in self.state.runs or event.incident_id in self.state.finished:
            return  # duplicate delivery: one incident, one plan
        runbook = self.runbooks(event.runbook_id)
        run = IncidentRun(
            id=event.incident_id,
            key=event.incident_key,
            runbook_id=event.runbook_id,
            target=event.target,
            invalid_target=event.invalid_target,
            labels=dict(event.labels),
            annotations=dict(event.annotations),
            opened_at=event.opened_at,
            alert_received_at=event.alert_received_at,
        )
        self.state.runs[run.id] = run
        self.touch(run)
        self.effects.append(IndexIncident(incident_id=run.id, target_key=self.state.key))
        self.audit(run, "opened", labels=run.labels)
        if runbook is None:
            self.end(run, None, "runbook_unknown", actor=None)
            return
        run.escalation_due = esc.first_due(runbook.escalation, run.opened_at)
        if run.target is None:
            run.stage, run.halted = Stage.IDLE, f"invalid target: {run.invalid_target}"
            self.audit(run, "target_invalid", reason=run.invalid_target)
            self.notify(run, runbook, f"Not acting: {run.halted}")
            self.escalate_now(run, runbook, actor=None)
            return
        if not runbook.auto_recovery:
            self.escalate_now(run, runbook, actor=None)
        if admission.admit(self.state, run.id):
            self.start(run, runbook)
        else:
            self.audit(run, "queued", behind=self.state.active)
            self.notify(run, runbook, f"Queued behind incident {self.state.active} on this target")

    def start(self, run: IncidentRun, runbook: Runbook) -> None:
        """The incident holds the target: begin its plan, unless the target is cooling down."""
        if runbook.auto_recovery:
            until = cooldown.blocks(self.state.guard, runbook.cooldown, self.now)
            if until is not None:
                run.stage, run.stage_due = Stage.QUEUED, until
                self.audit(run, "cooldown", until=until.isoformat())
                return
        self.enter_step(run, runbook, 0)

    # --- steps ---------------------------------------------------------------------------------

    def enter_step(self, run: IncidentRun, runbook: Runbook, index: int) -> None:
        while index < len(runbook.steps) and not approval.runnable(runbook, runbook.steps[index]):
            index += 1  # without auto-recovery only gated steps are offered
        run.step, run.attempt, run.stage_due = index, 0, None
        if index >= len(runbook.steps):
            self.idle(run, runbook, "steps exhausted" if runbook.steps else "no automatic steps")
            return
        step = runbook.steps[index]
        if approval.gated(step):
            run.stage = Stage.AWAITING_APPROVAL
            self.touch(run)
            self.audit(run, "awaiting_approval", step=index, action=step.action)
            self.notify(run, runbook, f"Step {index + 1} ({step.action}) needs approval")
            return
        self.run_attempt(run, runbook, index, 1, approved_by=None)

    def run_attempt(
        self, run: IncidentRun, runbook: Runbook, index: int, attempt: int, approved_by: str | None
    ) -> None:
        step = runbook.steps[index]
        limit = runbook.max_actions
        if approved_by is None and not rate_limit.allows(
            self.state.guard, limit.count, limit.per, self.now
        ):
            self.audit(run, "rate_limited", count=limit.count, per_s=limit.per.total_seconds())
            self.idle(
                run,
                runbook,
                f"max_actions: {limit.count} actions on this target within {limit.per}",
            )
            return
        assert run.target is not None  # incidents without a valid target never reach a step
        dry = dry_run.effective(
            global_dry_run=self.config.global_dry_run, runbook_dry_run=runbook.dry_run
        )
        key = ledger_key(run.id, index, attempt)
        run.stage, run.step, run.attempt = Stage.RUNNING, index, attempt
        run.stage_due = self.now + step.timeout
        run.ledger[key] = LedgerEntry(status=LedgerStatus.STARTED, started_at=self.now)
        if not dry:
            self.state.guard = rate_limit.record(self.state.guard, self.now)
        self.touch(run)
        self.history(run, "running", f"approved by {approved_by}" if approved_by else "")
        self.effects.append(
            RunAction(
                incident_id=run.id,
                step=index,
                attempt=attempt,
                key=key,
                action=step.action,
                target=run.target,
                params=step.params.model_dump(mode="json", by_alias=True),
                dry_run=dry,
                timeout_s=step.timeout.total_seconds(),
            )
        )
        self.audit(
            run,
            "action_started",
            step=index,
            attempt=attempt,
            action=step.action,
            key=key,
            dry_run=dry,
        )
        self.notify(
            run,
            runbook,
            f"Step {index + 1}: running {step.action} (attempt {attempt})",
            actor=approved_by,
        )

    def action_finished(self, run: IncidentRun, runbook: Runbook, event: ActionFinished) -> None:
        key = ledger_key(run.id, event.step, event.attempt)
        entry = run.ledger.get(key)
        if entry is None or entry.status is LedgerStatus.FINISHED:
            return  # never started here, or already counted: duplicate result
        run.ledger[key] = entry.model_copy(
            update={
                "status": LedgerStatus.FINISHED
                if entry.status is LedgerStatus.STARTED
                else entry.status,
                "finished_at": self.now,
                "ok": event.ok,
                "reconciled": event.reconciled,
            }
        )
        self.changed = True
        self.audit_outcome(
            run, "action_finished", event, reconciled=event.reconciled, result=event.result
        )
        if (run.stage, run.step, run.attempt) != (Stage.RUNNING, event.step, event.attempt):
            return  # timed out already; the result is on record, the plan moved on
        self.touch(run)
        self.history(run, "succeeded" if event.ok else "failed", event.detail)
        if event.ok:
            self.start_verify(run, runbook)
        else:
            self.attempt_failed(run, runbook, event.detail)

    def attempt_failed(self, run: IncidentRun, runbook: Runbook, why: str) -> None:
        step = runbook.steps[run.step]
        if run.attempt <= step.retries:
            self.run_attempt(run, runbook, run.step, run.attempt + 1, approved_by=None)
        else:
            self.step_failed(run, runbook, why)

    def step_failed(self, run: IncidentRun, runbook: Runbook, why: str) -> None:
        step = runbook.steps[run.step]
        self.notify(
            run, runbook, f"Step {run.step + 1} ({step.action}) did not fix it: {why}"[:500]
        )
        if step.on_failure == "escalate":
            self.idle(run, runbook, f"step {run.step + 1} failed and escalates on failure")
        else:
            self.enter_step(run, runbook, run.step + 1)

    def start_verify(self, run: IncidentRun, runbook: Runbook) -> None:
        step = runbook.steps[run.step]
        verify = step.effective_verify
        run.stage, run.stage_due = Stage.VERIFYING, self.now + verify.within
        run.polling = verify.kind != "alert_resolved"
        self.touch(run)
        if verify.kind == "alert_resolved":
            return  # satisfied by IncidentResolved; the deadline fails it
        effect: StartVerify
        if verify.kind == "promql":
            try:
                query = render_verify_promql(step, run.labels, run.annotations)
            except RenderErrors as exc:
                self.history(run, "verify_failed", f"cannot render query: {exc}")
                self.step_failed(run, runbook, f"verification query: {exc}")
                return
            effect = StartVerify(
                incident_id=run.id,
                step=run.step,
                attempt=run.attempt,
                kind="promql",
                promql=query,
                every_s=verify.every.total_seconds(),
                until=run.stage_due,
            )
        elif verify.kind == "probe":
            assert verify.probe is not None
            assert run.target is not None
            probe = verify.probe
            effect = StartVerify(
                incident_id=run.id,
                step=run.step,
                attempt=run.attempt,
                kind="probe",
                probe=ProbeRequest(
                    base=probe.base,
                    # The pods model.reload reaches: the Service named like the target.
                    service=None
                    if probe.base is not None
                    else run.target.model_copy(update={"kind": "Service"}),
                    port=probe.port,
                    path=str(probe.path),
                    complexity=probe.complexity,
                    style=probe.style,
                    min_confidence=probe.min_confidence,
                    max_latency_ms=probe.max_latency_ms,
                    accept=sorted(probe.accepted),
                ),
                every_s=verify.every.total_seconds(),
                until=run.stage_due,
            )
        else:
            assert verify.http is not None
            effect = StartVerify(
                incident_id=run.id,
                step=run.step,
                attempt=run.attempt,
                kind="http",
                http_base=verify.http.base,
                http_path=str(verify.http.path),
                http_expect=list(verify.http.expect_status),
                every_s=verify.every.total_seconds(),
                until=run.stage_due,
            )
        self.effects.append(effect)

    def verify_finished(self, run: IncidentRun, runbook: Runbook, event: VerifyFinished) -> None:
        current = (run.stage, run.step, run.attempt) == (
            Stage.VERIFYING,
            event.step,
            event.attempt,
        )
        if not current and ledger_key(run.id, event.step, event.attempt) not in run.ledger:
            return  # never started here
        # On record either way, as a late action result is: what the check measured.
        self.audit_outcome(
            run,
            "verified" if event.ok else "verify_failed",
            event,
            measured=event.measured or None,
            late=not current,
        )
        if not current:
            return  # the window's deadline failed the step already; the plan moved on
        if event.ok:
            self.history(run, "verified", event.detail, event.measured)
            self.end(run, runbook, "verified", actor=None)
        else:
            self.history(run, "verify_failed", event.detail, event.measured)
            self.step_failed(run, runbook, event.detail or "verification failed")

    def idle(self, run: IncidentRun, runbook: Runbook, why: str) -> None:
        """Automation is over for this incident: people take it through the escalation chain."""
        run.stage, run.stage_due, run.halted = Stage.IDLE, None, why
        self.touch(run)
        self.audit(run, "halted", reason=why)
        self.escalate_now(run, runbook, actor=None, why=why)

    # --- deadlines and recovery ------------------------------------------------------------------

    def deadline(self, run: IncidentRun, runbook: Runbook, event: DeadlineDue) -> None:
        stored = run.stage_due if event.kind is DeadlineKind.STAGE else run.escalation_due
        if stored is None or stored != event.due or self.now < stored:
            return  # already fired, moved, or not due yet: at most once
        if event.kind is DeadlineKind.ESCALATION:
            self.fire_escalation(run, runbook, base=stored, actor=None)
            return
        if run.stage is Stage.RUNNING:
            key = ledger_key(run.id, run.step, run.attempt)
            entry = run.ledger.get(key)
            if entry is not None and entry.status is LedgerStatus.STARTED:
                run.ledger[key] = entry.model_copy(
                    update={"status": LedgerStatus.TIMED_OUT, "finished_at": self.now}
                )
            self.history(run, "timed_out", "step timeout")
            self.audit(run, "action_timed_out", step=run.step, attempt=run.attempt)
            self.touch(run)
            self.attempt_failed(run, runbook, "timed out")
        elif run.stage is Stage.VERIFYING:
            self.effects.append(CancelVerify(incident_id=run.id))
            self.audit(
                run,
                "verify_failed",
                step=run.step,
                attempt=run.attempt,
                detail="not verified within the window",
            )
            self.history(run, "verify_failed", "not verified within the window")
            self.touch(run)
            self.step_failed(run, runbook, "not verified within the window")
        elif run.stage is Stage.QUEUED and self.state.active == run.id:
            run.stage_due = None
            self.touch(run)
            self.start(run, runbook)

    def resume(self, run: IncidentRun, runbook: Runbook, event: Resume) -> None:
        """The owner of a running or verifying step died; carry on where it was."""
        if (run.stage, run.step, run.attempt) != (event.stage, event.step, event.attempt):
            return
        step = runbook.steps[run.step]
        if run.stage is Stage.RUNNING:
            key = ledger_key(run.id, run.step, run.attempt)
            entry = run.ledger.get(key)
            if entry is None or entry.status is not LedgerStatus.STARTED or run.target is None:
                return
            self.audit(run, "action_resumed", step=run.step, attempt=run.attempt, key=key)
            self.effects.append(
                RunAction(
                    incident_id=run.id,
                    step=run.step,
                    attempt=run.attempt,
                    key=key,
                    action=step.action,
                    target=run.target,
                    params=step.params.model_dump(mode="json", by_alias=True),
                    dry_run=dry_run.effective(
                        global_dry_run=self.config.global_dry_run, runbook_dry_run=runbook.dry_run
                    ),
                    timeout_s=max(
                        0.0, (run.stage_due - self.now).total_seconds() if run.stage_due else 0.0
                    ),
                    reconcile=True,
                )
            )
        elif run.stage is Stage.VERIFYING:
            until = run.stage_due
            if until is None or self.now >= until:
                return  # the deadline will fail it
            self.audit(run, "verify_resumed", step=run.step, attempt=run.attempt)
            saved_due = run.stage_due
            self.start_verify(run, runbook)
            run.stage_due = saved_due  # the window does not restart because a worker died
            self.effects = [
                e.model_copy(update={"until": saved_due}) if isinstance(e, StartVerify) else e
                for e in self.effects
            ]

    # --- escalation ----------------------------------------------------------------------------

    def escalate_now(
        self, run: IncidentRun, runbook: Runbook, *, actor: str | None, why: str = ""
    ) -> None:
        """Remediation gave up (or a person asked): the first level fires now if none has."""
        if run.escalation_level == 0 and run.acknowledged_by is None:
            self.fire_escalation(run, runbook, base=self.now, actor=actor, why=why)

    def fire_escalation(
        self,
        run: IncidentRun,
        runbook: Runbook,
        *,
        base: datetime,
        actor: str | None,
        why: str = "",
    ) -> None:
        fired = esc.fire(runbook.escalation, run.escalation_level, run.escalation_repeats, base)
        if fired is None:
            run.escalation_due = None
            self.changed = True
            return
        if fired.repeat:
            run.escalation_repeats += 1
        else:
            run.escalation_level = fired.index + 1
        run.escalation_due = fired.next_due
        self.touch(run)
        self.audit(
            run,
            "escalated",
            level=fired.index + 1,
            repeat=fired.repeat,
            notify=fired.level.notify,
            due=base.isoformat(),
            lateness_s=(self.now - base).total_seconds(),
            reason=why,
        )
        text = f"Escalated to level {fired.index + 1} ({fired.level.notify})"
        self.notify(run, runbook, f"{text}: {why}" if why else text, actor=actor, level=fired.level)

    # --- commands ----------------------------------------------------------------------------------

    def command(self, run: IncidentRun, runbook: Runbook, cmd: CommandReceived) -> None:
        if cmd.idempotency_key in run.commands_seen:
            return
        run.commands_seen = [*run.commands_seen, cmd.idempotency_key][-COMMANDS_MEMORY:]
        self.changed = True
        before = replies.Before.of(run)
        self.audit(run, "command", command=cmd.kind.value, actor=cmd.actor, step=cmd.step)
        if cmd.kind is CommandKind.RESOLVE:
            self.end(run, runbook, "resolved_by_command", actor=cmd.actor)
        elif cmd.kind is CommandKind.ACK:
            if run.acknowledged_by is None:
                run.acknowledged_by, run.escalation_due = cmd.actor, None
                self.touch(run)
                self.notify(run, runbook, f"Acknowledged by {cmd.actor}", actor=cmd.actor)
        elif cmd.kind is CommandKind.ESCALATE:
            self.fire_escalation(
                run, runbook, base=self.now, actor=cmd.actor, why="asked by a person"
            )
        elif run.stage is Stage.AWAITING_APPROVAL and approval.matches(cmd.step, run.step):
            if cmd.kind is CommandKind.APPROVE:
                self.history(run, "approved", f"by {cmd.actor}")
                self.run_attempt(run, runbook, run.step, 1, approved_by=cmd.actor)
            else:
                self.history(run, "rejected", f"by {cmd.actor}: {cmd.reason}")
                self.touch(run)
                self.notify(
                    run, runbook, f"Step {run.step + 1} rejected by {cmd.actor}", actor=cmd.actor
                )
                self.enter_step(run, runbook, run.step + 1)
        if cmd.reply_to:
            self.reply(cmd, replies.command_reply(cmd, before, run))

    def reply(self, cmd: CommandReceived, text: str) -> None:
        """Answer the person on their response_url (once per command: keyed by its key)."""
        assert cmd.reply_to is not None
        self.effects.append(
            ReplyToCommand(
                incident_id=cmd.incident_id,
                url=cmd.reply_to,
                text=text,
                idempotency_key=cmd.idempotency_key,
            )
        )

    # --- the end -----------------------------------------------------------------------------------

    def end(
        self, run: IncidentRun, runbook: Runbook | None, how: str, *, actor: str | None
    ) -> None:
        if run.stage is Stage.VERIFYING:
            self.effects.append(CancelVerify(incident_id=run.id))
        interrupted = run.stage in (Stage.RUNNING, Stage.AWAITING_APPROVAL) or (
            run.stage is Stage.VERIFYING and how != "verified"
        )
        if interrupted:
            self.history(run, "cancelled", how)
        run.stage, run.stage_due, run.escalation_due = Stage.DONE, None, None
        run.resolved_at, run.resolution = self.now, how
        self.touch(run)
        self.audit(run, "resolved", how=how, actor=actor)
        self.notify(run, runbook, f"Resolved ({how.replace('_', ' ')})", actor=actor)
        state = self.state
        del state.runs[run.id]
        state.finished[run.id] = how
        while len(state.finished) > FINISHED_MEMORY:
            del state.finished[next(iter(state.finished))]
        state.history = [*state.history, run][-HISTORY_MEMORY:]
        successor = admission.release(state, run.id)
        if successor is not None:
            nxt = state.runs[successor]
            nxt_runbook = self.runbooks(nxt.runbook_id)
            if nxt_runbook is None:
                self.end(nxt, None, "runbook_removed", actor=None)
            else:
                self.audit(nxt, "dequeued", after=run.id)
                self.start(nxt, nxt_runbook)
