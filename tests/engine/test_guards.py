"""Each guard rail alone: cooldown, action window, admission queue, dry-run, approval gate."""

from __future__ import annotations

from datetime import timedelta

from engine_support import APPROVAL_ONLY, T0, runbook

from responder.engine.guards import admission, approval, cooldown, dry_run, rate_limit
from responder.engine.records import GuardState, IncidentRun, TargetState

M = timedelta(minutes=1)


def test_cooldown_blocks_until_its_end_and_never_without_an_action() -> None:
    assert cooldown.blocks(GuardState(), 10 * M, T0) is None
    guard = GuardState(last_action_at=T0)
    assert cooldown.blocks(guard, 10 * M, T0 + 9 * M) == T0 + 10 * M
    assert cooldown.blocks(guard, 10 * M, T0 + 10 * M) is None
    assert cooldown.blocks(guard, timedelta(0), T0) is None


def test_action_window_slides_and_stays_bounded() -> None:
    guard = GuardState()
    for n in range(3):
        guard = rate_limit.record(guard, T0 + n * M)
    assert not rate_limit.allows(guard, 3, timedelta(hours=1), T0 + 3 * M)
    assert rate_limit.allows(guard, 3, timedelta(hours=1), T0 + 61 * M)  # the first left the window
    for n in range(5000):
        guard = rate_limit.record(guard, T0 + n * timedelta(seconds=1))
    assert len(guard.action_times) <= 1000


def _state(*ids: str) -> TargetState:
    state = TargetState(key="ns/name")
    for i in ids:
        state.runs[i] = IncidentRun(id=i, key=i, runbook_id="r", target=None, opened_at=T0)
    return state


def test_admission_one_holder_fifo_queue_skipping_ended_incidents() -> None:
    state = _state("a", "b", "c")
    assert admission.admit(state, "a")
    assert not admission.admit(state, "b")
    assert not admission.admit(state, "c")
    assert not admission.admit(state, "b")  # no double queueing
    assert state.queue == ["b", "c"]
    del state.runs["b"]  # ended while queued
    assert admission.release(state, "a") == "c"
    assert state.active == "c"
    assert admission.release(state, "zzz") is None
    assert state.active == "c"


def test_dry_run_either_switch() -> None:
    assert not dry_run.effective(global_dry_run=False, runbook_dry_run=False)
    assert dry_run.effective(global_dry_run=True, runbook_dry_run=False)
    assert dry_run.effective(global_dry_run=False, runbook_dry_run=True)


def test_approval_gate_and_stale_buttons() -> None:
    gated = runbook(auto=False, steps=APPROVAL_ONLY, after="0s")
    assert approval.gated(gated.steps[0])
    assert approval.runnable(gated, gated.steps[0])
    plain = runbook()
    assert not approval.gated(plain.steps[0])
    assert approval.runnable(plain, plain.steps[0])
    assert approval.matches(None, 2)
    assert approval.matches(2, 2)
    assert not approval.matches(1, 2)
