"""Properties over arbitrary event sequences: duplicates, reorderings, late results, crashes.

Whatever Kafka redelivers and in whatever order the timer and the tasks report, the
engine never issues two different executions under one idempotency key, never starts more
real actions per target than ``max_actions`` allows, and its state survives JSON.
"""

from __future__ import annotations

from datetime import timedelta

from engine_support import T0, Engine, of_type, opened, runbook
from hypothesis import given, settings
from hypothesis import strategies as st

from responder.engine.records import (
    ActionFinished,
    CommandKind,
    CommandReceived,
    DeadlineDue,
    DeadlineKind,
    IncidentResolved,
    Resume,
    RunAction,
    Stage,
    VerifyFinished,
)

IDS = ["i0", "i1", "i2"]

events = st.one_of(
    st.builds(lambda i: opened(i), st.sampled_from(IDS)),
    st.builds(lambda i: IncidentResolved(incident_id=i, at=T0), st.sampled_from(IDS)),
    st.builds(
        lambda i, s, a, ok: ActionFinished(incident_id=i, step=s, attempt=a, ok=ok),
        st.sampled_from(IDS),
        st.integers(0, 2),
        st.integers(1, 2),
        st.booleans(),
    ),
    st.builds(
        lambda i, s, a, ok: VerifyFinished(incident_id=i, step=s, attempt=a, ok=ok),
        st.sampled_from(IDS),
        st.integers(0, 2),
        st.integers(1, 2),
        st.booleans(),
    ),
    st.builds(
        lambda i, k, key, s: CommandReceived(
            incident_id=i, kind=k, actor="U", idempotency_key=key, step=s
        ),
        st.sampled_from(IDS),
        st.sampled_from(list(CommandKind)),
        st.sampled_from(["a", "b", "c"]),
        st.none() | st.integers(0, 2),
    ),
    st.builds(
        lambda i, s, a, stage: Resume(incident_id=i, step=s, attempt=a, stage=stage),
        st.sampled_from(IDS),
        st.integers(0, 2),
        st.integers(1, 2),
        st.sampled_from([Stage.RUNNING, Stage.VERIFYING]),
    ),
    st.just("tick"),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(events, st.integers(0, 80)), max_size=40))
def test_no_key_runs_twice_and_the_window_holds(steps: list[tuple[object, int]]) -> None:
    engine = Engine(runbook(cooldown="0s", max_count=2, per="1h"))
    clock = T0
    for event, seconds in steps:
        clock += timedelta(seconds=seconds)
        if event == "tick":  # the timer: every due deadline of every incident, maybe twice
            for run in list(engine.state.runs.values()) if engine.state else []:
                for kind, due in (
                    (DeadlineKind.STAGE, run.stage_due),
                    (DeadlineKind.ESCALATION, run.escalation_due),
                ):
                    if due is not None and due <= clock:
                        engine.feed(DeadlineDue(incident_id=run.id, kind=kind, due=due), clock)
                        engine.feed(DeadlineDue(incident_id=run.id, kind=kind, due=due), clock)
            continue
        engine.feed(event, clock)  # type: ignore[arg-type]
    actions = of_type(engine.all_effects, RunAction)
    fresh = [a.key for a in actions if not a.reconcile]
    assert len(fresh) == len(set(fresh))
    assert {a.key for a in actions if a.reconcile} <= set(fresh)
    # The whole sequence fits in the 1 h window; approved (gated) steps are a person's call.
    unapproved = [a for a in actions if not a.reconcile and a.action != "region.failover"]
    assert len(unapproved) <= 2
    state = engine.state
    if state is not None:
        assert state.active is None or state.active in state.runs
        assert all(i in state.runs for i in state.queue)
        assert not (set(state.runs) & set(state.finished))
