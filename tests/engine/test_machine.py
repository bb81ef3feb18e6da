"""Every transition of the remediation state machine, with an injected clock and no broker."""

from __future__ import annotations

from datetime import timedelta

from engine_support import APPROVAL_ONLY, TKEY, Engine, of_type, opened, runbook

from responder.engine.records import (
    ActionFinished,
    Audit,
    CancelVerify,
    CommandKind,
    CommandReceived,
    DeadlineDue,
    DeadlineKind,
    IncidentResolved,
    IndexIncident,
    LedgerStatus,
    Notify,
    Resume,
    RunAction,
    Stage,
    StartVerify,
    VerifyFinished,
)
from responder.models.notifications import IncidentPhase

S = timedelta(seconds=1)


def cmd(
    kind: CommandKind, key: str, step: int | None = None, incident: str = "inc-1"
) -> CommandReceived:
    return CommandReceived(
        incident_id=incident, kind=kind, actor="U1", idempotency_key=key, step=step
    )


def finished(step: int, attempt: int, ok: bool, incident: str = "inc-1") -> ActionFinished:
    return ActionFinished(incident_id=incident, step=step, attempt=attempt, ok=ok, detail="x")


def test_open_runs_the_first_step_with_a_ledger_entry_and_an_idempotency_key() -> None:
    engine = Engine(runbook())
    decision = engine.feed(opened())
    (action,) = of_type(decision.effects, RunAction)
    assert (action.step, action.attempt, action.key) == (0, 1, "inc-1:0:1")
    assert action.action == "cache.clear"
    assert action.params["pattern"] == "generation:*"
    assert action.timeout_s == 30
    assert not action.dry_run
    run = engine.run()
    assert run.stage is Stage.RUNNING
    assert run.stage_due == opened().opened_at + 30 * S
    assert run.ledger["inc-1:0:1"].status is LedgerStatus.STARTED
    assert run.escalation_due == opened().opened_at + 300 * S
    assert of_type(decision.effects, IndexIncident)[0].target_key == TKEY
    assert engine.state is not None
    assert engine.state.guard.last_action_at == opened().opened_at


def test_duplicate_open_is_one_incident_and_one_action() -> None:
    engine = Engine(runbook())
    engine.feed(opened())
    for _ in range(1000):
        again = engine.feed(opened(), 1 * S)
        assert again.effects == []
        assert not again.changed
    assert len(of_type(engine.all_effects, RunAction)) == 1


def test_action_ok_then_verified_resolves_and_frees_the_target() -> None:
    engine = Engine(runbook())
    engine.feed(opened())
    decision = engine.feed(finished(0, 1, ok=True), 2 * S)
    (verify,) = of_type(decision.effects, StartVerify)
    assert verify.kind == "promql"
    assert verify.promql == 'up{namespace="musearoo"} == 1'
    assert verify.every_s == 5
    assert verify.until == opened().opened_at + 62 * S
    assert engine.run().stage is Stage.VERIFYING
    assert engine.run().polling
    decision = engine.feed(VerifyFinished(incident_id="inc-1", step=0, attempt=1, ok=True), 10 * S)
    assert engine.state is not None
    assert engine.state.runs == {}
    assert engine.state.active is None
    assert engine.state.finished == {"inc-1": "verified"}
    (note,) = of_type(decision.effects, Notify)
    assert note.notification.phase is IncidentPhase.RESOLVED


def test_failed_attempt_retries_then_moves_to_the_next_step() -> None:
    engine = Engine(runbook())
    engine.feed(opened())
    retry = of_type(engine.feed(finished(0, 1, ok=False), 1 * S).effects, RunAction)
    assert [(a.step, a.attempt, a.key) for a in retry] == [(0, 2, "inc-1:0:2")]
    nxt = of_type(engine.feed(finished(0, 2, ok=False), 2 * S).effects, RunAction)
    assert [(a.step, a.attempt, a.action) for a in nxt] == [(1, 1, "model.reload")]


def test_step_without_verify_waits_for_the_alert_and_fails_at_its_timeout() -> None:
    engine = Engine(runbook())
    engine.feed(opened())
    engine.feed(finished(0, 1, ok=True), 1 * S)
    engine.feed(VerifyFinished(incident_id="inc-1", step=0, attempt=1, ok=False), 5 * S)
    engine.feed(finished(1, 1, ok=True), 6 * S)
    run = engine.run()
    assert run.stage is Stage.VERIFYING
    assert run.stage_due is not None
    assert of_type(engine.all_effects[-3:], StartVerify) == []  # alert_resolved: nothing to poll
    assert not run.polling  # so the timer never takes it for an orphaned check
    decision = engine.feed(
        DeadlineDue(incident_id="inc-1", kind=DeadlineKind.STAGE, due=run.stage_due), 70 * S
    )
    assert engine.run().stage is Stage.AWAITING_APPROVAL
    assert engine.run().step == 2
    assert of_type(decision.effects, CancelVerify)


def test_exhausted_steps_escalate_at_once_and_hold_the_target() -> None:
    rb = runbook(steps="  - action: cache.clear\n    with: {pattern: 'a:*'}\n    timeout: 30s")
    engine = Engine(rb)
    engine.feed(opened())
    decision = engine.feed(finished(0, 1, ok=False), 3 * S)
    run = engine.run()
    assert run.stage is Stage.IDLE
    assert run.halted == "steps exhausted"
    assert run.escalation_level == 1
    assert run.escalation_due == opened().opened_at + 123 * S
    (note,) = [
        n.notification
        for n in of_type(decision.effects, Notify)
        if n.notification.phase is IncidentPhase.ESCALATED
    ]
    assert note.slack_channel == "#incidents"
    assert note.pagerduty_service is None
    assert engine.state is not None
    assert engine.state.active == "inc-1"


def test_step_timeout_fails_the_attempt_and_a_late_result_is_recorded_only() -> None:
    engine = Engine(runbook())
    engine.feed(opened())
    due = engine.run().stage_due
    assert (
        engine.feed(
            DeadlineDue(incident_id="inc-1", kind=DeadlineKind.STAGE, due=due), 29 * S
        ).effects
        == []
    )
    decision = engine.feed(
        DeadlineDue(incident_id="inc-1", kind=DeadlineKind.STAGE, due=due), 30 * S
    )
    assert [(a.step, a.attempt) for a in of_type(decision.effects, RunAction)] == [(0, 2)]
    assert engine.run().ledger["inc-1:0:1"].status is LedgerStatus.TIMED_OUT
    # The same deadline again (the timer published it twice): at most once.
    assert (
        engine.feed(
            DeadlineDue(incident_id="inc-1", kind=DeadlineKind.STAGE, due=due), 31 * S
        ).effects
        == []
    )
    late = engine.feed(finished(0, 1, ok=True), 32 * S)
    assert of_type(late.effects, StartVerify) == []
    assert engine.run().attempt == 2
    assert engine.run().ledger["inc-1:0:1"].ok is True


def test_escalation_levels_fire_in_order_with_their_waits_and_repeat() -> None:
    rb = runbook(repeat="{every: 30m, times: 2}")
    engine = Engine(rb)
    engine.feed(opened())
    fired = []
    for _ in range(6):
        due = engine.run().escalation_due
        if due is None:
            break
        late = due + 0.3 * S  # the timer notices a little late; the chain must not drift
        for note in of_type(
            engine.feed(
                DeadlineDue(incident_id="inc-1", kind=DeadlineKind.ESCALATION, due=due), late
            ).effects,
            Notify,
        ):
            fired.append(
                (
                    due - opened().opened_at,
                    note.notification.slack_channel,
                    note.notification.pagerduty_service,
                )
            )
    assert fired == [
        (300 * S, "#incidents", None),
        (420 * S, None, "oncall"),
        (420 * S + timedelta(minutes=30), None, "oncall"),
        (420 * S + timedelta(minutes=60), None, "oncall"),
    ]


def test_ack_stops_the_chain_and_remediation_goes_on() -> None:
    engine = Engine(runbook())
    engine.feed(opened())
    due = engine.run().escalation_due
    engine.feed(cmd(CommandKind.ACK, "k1"), 10 * S)
    assert engine.run().escalation_due is None
    assert engine.run().acknowledged_by == "U1"
    assert (
        engine.feed(
            DeadlineDue(incident_id="inc-1", kind=DeadlineKind.ESCALATION, due=due), 400 * S
        ).effects
        == []
    )
    assert engine.run().stage is Stage.RUNNING


def test_escalate_command_fires_the_next_level_now() -> None:
    engine = Engine(runbook())
    engine.feed(opened())
    decision = engine.feed(cmd(CommandKind.ESCALATE, "e1"), 5 * S)
    assert engine.run().escalation_level == 1
    assert [n.notification.actor for n in of_type(decision.effects, Notify)] == ["U1"]


def test_approval_gate_waits_then_runs_the_approved_step() -> None:
    engine = Engine(runbook())
    engine.feed(opened())
    engine.feed(finished(0, 1, ok=False), 1 * S)
    engine.feed(finished(0, 2, ok=False), 2 * S)
    engine.feed(finished(1, 1, ok=False), 3 * S)
    run = engine.run()
    assert (run.stage, run.step) == (Stage.AWAITING_APPROVAL, 2)
    # A stale button drawn for another step approves nothing.
    assert (
        of_type(engine.feed(cmd(CommandKind.APPROVE, "a0", step=1), 4 * S).effects, RunAction) == []
    )
    decision = engine.feed(cmd(CommandKind.APPROVE, "a1", step=2), 5 * S)
    (action,) = of_type(decision.effects, RunAction)
    assert (action.action, action.key) == ("region.failover", "inc-1:2:1")
    # The same button pressed again (Slack retry): nothing more.
    assert engine.feed(cmd(CommandKind.APPROVE, "a1", step=2), 6 * S).effects == []


def test_rejection_skips_the_step_and_escalates_when_none_is_left() -> None:
    engine = Engine(runbook(auto=False, steps=APPROVAL_ONLY, after="0s"))
    decision = engine.feed(opened())
    run = engine.run()
    assert (run.stage, run.escalation_level) == (Stage.AWAITING_APPROVAL, 1)
    assert of_type(decision.effects, RunAction) == []
    engine.feed(cmd(CommandKind.REJECT, "r1"), 5 * S)
    run = engine.run()
    assert run.stage is Stage.IDLE
    assert run.history[-1].status == "rejected"


def test_no_auto_recovery_escalates_at_once_and_runs_nothing_unapproved() -> None:
    engine = Engine(runbook(auto=False, steps=APPROVAL_ONLY, after="0s"))
    decision = engine.feed(opened())
    phases = [n.notification.phase for n in of_type(decision.effects, Notify)]
    assert IncidentPhase.ESCALATED in phases
    assert IncidentPhase.AWAITING_APPROVAL in phases
    assert of_type(decision.effects, RunAction) == []
    approved = engine.feed(cmd(CommandKind.APPROVE, "a1"), 60 * S)
    assert [a.action for a in of_type(approved.effects, RunAction)] == ["deployment.restart"]


def test_alert_resolving_during_a_step_ends_the_incident_and_ignores_its_late_result() -> None:
    engine = Engine(runbook())
    engine.feed(opened())
    decision = engine.feed(IncidentResolved(incident_id="inc-1", at=opened().opened_at), 4 * S)
    assert engine.state is not None
    assert engine.state.finished == {"inc-1": "alert_resolved"}
    assert [n.notification.phase for n in of_type(decision.effects, Notify)] == [
        IncidentPhase.RESOLVED
    ]
    assert engine.feed(finished(0, 1, ok=True), 5 * S).effects == []


def test_alert_resolving_while_verifying_cancels_the_verification() -> None:
    engine = Engine(runbook())
    engine.feed(opened())
    engine.feed(finished(0, 1, ok=True), 1 * S)
    decision = engine.feed(IncidentResolved(incident_id="inc-1", at=opened().opened_at), 4 * S)
    assert of_type(decision.effects, CancelVerify)


def test_resolve_command_ends_it_from_any_stage() -> None:
    engine = Engine(runbook())
    engine.feed(opened())
    engine.feed(cmd(CommandKind.RESOLVE, "z"), 4 * S)
    assert engine.state is not None
    assert engine.state.finished == {"inc-1": "resolved_by_command"}


def test_second_incident_on_the_target_queues_and_starts_after_the_cooldown() -> None:
    engine = Engine(runbook(), runbook(id="other", alertname="Other"))
    engine.feed(opened())
    queued = engine.feed(opened("inc-2", runbook_id="other"), 1 * S)
    assert of_type(queued.effects, RunAction) == []
    assert engine.state is not None
    assert engine.state.queue == ["inc-2"]
    engine.feed(IncidentResolved(incident_id="inc-1", at=opened().opened_at), 2 * S)
    second = engine.run("inc-2")
    assert engine.state.active == "inc-2"
    assert second.stage is Stage.QUEUED
    assert second.stage_due == opened().opened_at + timedelta(minutes=10)  # cooldown of the target
    started = engine.feed(
        DeadlineDue(incident_id="inc-2", kind=DeadlineKind.STAGE, due=second.stage_due),
        timedelta(minutes=10),
    )
    assert [a.key for a in of_type(started.effects, RunAction)] == ["inc-2:0:1"]


def test_queued_incident_resolving_leaves_the_queue() -> None:
    engine = Engine(runbook(), runbook(id="other", alertname="Other"))
    engine.feed(opened())
    engine.feed(opened("inc-2", runbook_id="other"), 1 * S)
    engine.feed(IncidentResolved(incident_id="inc-2", at=opened().opened_at), 2 * S)
    engine.feed(IncidentResolved(incident_id="inc-1", at=opened().opened_at), 3 * S)
    assert engine.state is not None
    assert engine.state.active is None
    assert engine.state.queue == []


def test_max_actions_halts_and_escalates() -> None:
    engine = Engine(runbook(cooldown="0s", max_count=3, per="1h"))
    actions = 0
    for n in range(10):
        decision = engine.feed(opened(f"i{n}"), n * 5 * S)
        actions += len(of_type(decision.effects, RunAction))
        engine.feed(IncidentResolved(incident_id=f"i{n}", at=opened().opened_at), (n * 5 + 1) * S)
    assert actions == 3
    halted = [
        a.event
        for a in of_type(engine.all_effects, Audit)
        if a.event.kind == "remediation.rate_limited"
    ]
    assert len(halted) == 7


def test_dry_run_global_and_per_runbook_do_not_touch_the_guard() -> None:
    for engine in (Engine(runbook(), dry_run=True), Engine(runbook(dry=True))):
        (action,) = of_type(engine.feed(opened()).effects, RunAction)
        assert action.dry_run
        assert engine.state is not None
        assert engine.state.guard.last_action_at is None


def test_resume_reconciles_a_started_action_and_restarts_verification_with_its_window() -> None:
    engine = Engine(runbook())
    engine.feed(opened())
    (again,) = of_type(
        engine.feed(
            Resume(incident_id="inc-1", step=0, attempt=1, stage=Stage.RUNNING), 3 * S
        ).effects,
        RunAction,
    )
    assert again.reconcile
    assert again.key == "inc-1:0:1"
    assert again.timeout_s == 27
    engine.feed(finished(0, 1, ok=True), 4 * S)
    until = engine.run().stage_due
    (verify,) = of_type(
        engine.feed(
            Resume(incident_id="inc-1", step=0, attempt=1, stage=Stage.VERIFYING), 20 * S
        ).effects,
        StartVerify,
    )
    assert verify.until == until
    assert engine.run().stage_due == until
    # A resume for a stage that has moved on does nothing.
    assert (
        engine.feed(
            Resume(incident_id="inc-1", step=0, attempt=1, stage=Stage.RUNNING), 21 * S
        ).effects
        == []
    )


def test_invalid_target_escalates_and_acts_on_nothing() -> None:
    engine = Engine(runbook())
    decision = engine.feed(
        opened(target=None, invalid_target="name: 'x; rm' is not a valid RFC 1123 name")
    )
    assert of_type(decision.effects, RunAction) == []
    assert engine.run().stage is Stage.IDLE
    assert engine.run().escalation_level == 1
    kinds = [a.event.kind for a in of_type(decision.effects, Audit)]
    assert "remediation.target_invalid" in kinds


def test_unknown_runbook_ends_the_incident_with_an_audit() -> None:
    engine = Engine(runbook())
    decision = engine.feed(opened(runbook_id="gone"))
    assert engine.state is not None
    assert engine.state.finished == {"inc-1": "runbook_unknown"}
    assert of_type(decision.effects, RunAction) == []


def test_notifications_are_numbered_and_keyed_per_transition() -> None:
    engine = Engine(runbook())
    engine.feed(opened())
    engine.feed(finished(0, 1, ok=False), 1 * S)
    keys = [n.notification.idempotency_key for n in of_type(engine.all_effects, Notify)]
    seqs = [n.notification.sequence for n in of_type(engine.all_effects, Notify)]
    assert len(set(keys)) == len(keys)
    assert seqs == sorted(seqs)


def test_each_verification_is_audited_with_what_it_saw() -> None:
    """The audit trail, not only the in-memory history, says how each verification went."""
    engine = Engine(runbook())
    engine.feed(opened())
    engine.feed(finished(0, 1, ok=True), 1 * S)
    seen = '1 series satisfy the query: {engine="melody"} 0.087'
    held = engine.feed(
        VerifyFinished(incident_id="inc-1", step=0, attempt=1, ok=True, detail=seen), 4 * S
    )
    (verified,) = [a.event for a in of_type(held.effects, Audit) if a.event.kind.endswith("ied")]
    assert verified.kind == "remediation.verified"
    assert verified.data["step"] == 0
    assert verified.data["detail"] == seen

    other = Engine(runbook())
    other.feed(opened())
    other.feed(finished(0, 1, ok=True), 1 * S)
    due = other.run().stage_due
    assert due is not None
    window_over = other.feed(
        DeadlineDue(incident_id="inc-1", kind=DeadlineKind.STAGE, due=due), 70 * S
    )
    kinds = [a.event.kind for a in of_type(window_over.effects, Audit)]
    assert "remediation.verify_failed" in kinds
    (failed,) = [
        a.event
        for a in of_type(window_over.effects, Audit)
        if a.event.kind == "remediation.verify_failed"
    ]
    assert failed.data["detail"] == "not verified within the window"
