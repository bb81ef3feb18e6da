"""A generation probe verifying a step, from the runbook to the engine's decision.

The runbook's ``probe:`` becomes the engine's ``StartVerify``, the effect runner's spec, a
real probe of a local engine on loopback, and the ``VerifyFinished`` the engine decides
on: a degraded engine keeps the incident unrecovered (the plan goes on to its next step),
unless the runbook accepts that degradation; either way the verdict and the measured
values are on the incident's step and in the audit.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from engine_support import TKEY, Engine, of_type, opened, runbook
from probe_support import Answer, FakeMonotonic
from probe_support import Engine as EngineServer

from responder.engine.records import (
    ActionFinished,
    Audit,
    DeadlineDue,
    DeadlineKind,
    Event,
    RunAction,
    Stage,
    StartVerify,
    VerifyFinished,
)
from responder.settings import ActionsSettings, RemediationSettings
from responder.verification import GenerationProbe, ProbeChecker, Verifier
from streams.effects import EffectRunner, Outbound, verify_spec


@pytest.fixture
def clock(probe_clock: FakeMonotonic) -> FakeMonotonic:
    return probe_clock


@pytest.fixture
def server(probe_engine: EngineServer) -> EngineServer:
    return probe_engine


S = timedelta(seconds=1)


def probed_steps(probe: str) -> str:
    return f"""
  - action: model.reload
    with: {{path: /admin/reload, port: 8080}}
    timeout: 60s
    verify:
      probe: {probe}
      within: 30s
      every: 10s
  - action: deployment.restart
    timeout: 60s
""".strip("\n")


async def no_actions() -> dict[str, Any]:
    return {}


async def verify_once(engine: Engine, server: EngineServer, clock: FakeMonotonic) -> VerifyFinished:
    """The engine's StartVerify carried out by the effect runner, as the worker does, in a
    window the fake time ends after one evaluation; returns the event it reports."""
    (start,) = of_type(engine.all_effects, StartVerify)
    at = [start.until - timedelta(seconds=1)]

    async def sleep(seconds: float) -> None:
        at[0] += timedelta(seconds=seconds)

    checker = ProbeChecker({"drummaroo": server.url}, timeout_s=5, monotonic=clock)
    reported: asyncio.Queue[tuple[str, Event]] = asyncio.Queue()

    async def send(key: str, event: Event) -> None:
        await reported.put((key, event))

    runner = EffectRunner(
        settings=RemediationSettings(),
        actions_settings=ActionsSettings(),
        actions=no_actions,
        send=send,
        outbound=Outbound(notifications=None, audit=None, routes=None),
        verifier=Verifier({GenerationProbe: checker}, now=lambda: at[0], sleep=sleep),
    )
    try:
        runner.start(TKEY, [start])
        key, event = await asyncio.wait_for(reported.get(), 10)
    finally:
        await runner.stop()
    assert key == TKEY
    assert isinstance(event, VerifyFinished)
    return event


def reload_done(engine: Engine) -> None:
    engine.feed(opened())
    engine.feed(ActionFinished(incident_id="inc-1", step=0, attempt=1, ok=True), 2 * S)


async def test_a_degraded_engine_keeps_the_incident_unrecovered(
    server: EngineServer, clock: FakeMonotonic
) -> None:
    engine = Engine(runbook(steps=probed_steps("{base: drummaroo}")))
    reload_done(engine)
    (start,) = of_type(engine.all_effects, StartVerify)
    assert start.kind == "probe"
    assert start.probe is not None
    assert (start.probe.min_confidence, start.probe.max_latency_ms) == (0.7, 200.0)
    server.answers = [Answer(confidence=0.55, takes_s=0.04)]

    decision = engine.feed(await verify_once(engine, server, clock), 31 * S)

    run = engine.run()
    assert run.stage is Stage.RUNNING  # not recovered: the next step runs
    assert [a.action for a in of_type(decision.effects, RunAction)] == ["deployment.restart"]
    outcome = run.history[-2]
    assert (outcome.step, outcome.status) == (0, "verify_failed")
    assert outcome.measured is not None
    assert outcome.measured["verdict"] == "quality_degraded"
    assert outcome.measured["confidence"] == 0.55
    assert outcome.measured["latency_ms"] == pytest.approx(40.0)
    assert outcome.measured["success"] is True
    (audited,) = [
        a.event
        for a in of_type(decision.effects, Audit)
        if a.event.kind == "remediation.verify_failed"
    ]
    assert audited.data["ok"] is False
    assert audited.data["late"] is False
    assert audited.data["measured"]["verdict"] == "quality_degraded"
    assert server.calls[0]["body"] == {"complexity": 0.5, "style": "test"}


async def test_accept_in_the_runbook_lets_a_slow_engine_count_as_recovered(
    server: EngineServer, clock: FakeMonotonic
) -> None:
    slow = Answer(confidence=0.9, takes_s=0.35)
    strict = Engine(runbook(steps=probed_steps("{base: drummaroo}")))
    reload_done(strict)
    server.answers = [slow]
    strict.feed(await verify_once(strict, server, clock), 31 * S)
    assert strict.run().stage is Stage.RUNNING  # latency degraded: not recovered

    lenient = Engine(runbook(steps=probed_steps("{base: drummaroo, accept: [latency_degraded]}")))
    reload_done(lenient)
    finished = await verify_once(lenient, server, clock)
    decision = lenient.feed(finished, 31 * S)
    assert lenient.state is not None
    assert lenient.state.finished == {"inc-1": "verified"}
    assert of_type(decision.effects, RunAction) == []
    (resolved,) = lenient.state.history
    verified = resolved.history[-1]
    assert verified.status == "verified"
    assert verified.measured is not None
    assert verified.measured["verdict"] == "latency_degraded"
    assert verified.measured["accepted"] == ["latency_degraded"]
    assert verified.measured["latency_ms"] == pytest.approx(350.0)


async def test_a_verdict_after_the_window_deadline_is_audited_late(
    server: EngineServer, clock: FakeMonotonic
) -> None:
    engine = Engine(runbook(steps=probed_steps("{base: drummaroo}")))
    reload_done(engine)
    due = engine.run().stage_due
    assert due is not None
    server.answers = [Answer(success=False)]
    finished = await verify_once(engine, server, clock)
    engine.feed(DeadlineDue(incident_id="inc-1", kind=DeadlineKind.STAGE, due=due), 32 * S)
    decision = engine.feed(finished, 33 * S)
    (audited,) = [a.event for a in of_type(decision.effects, Audit)]
    assert audited.kind == "remediation.verify_failed"
    assert audited.data["late"] is True
    assert audited.data["measured"]["verdict"] == "failed"
    assert of_type(decision.effects, RunAction) == []  # the deadline moved the plan on already


def test_a_probe_of_the_targets_pods_names_the_service_like_model_reload() -> None:
    engine = Engine(runbook(steps=probed_steps("{port: 9090, min_confidence: 0.8}")))
    reload_done(engine)
    (start,) = of_type(engine.all_effects, StartVerify)
    spec = verify_spec(start)
    assert isinstance(spec.check, GenerationProbe)
    assert spec.check.base is None
    assert spec.check.service is not None
    assert (spec.check.service.namespace, spec.check.service.name) == (
        "musearoo",
        "drummaroo-engine",
    )
    assert spec.check.service.kind == "service"
    assert (spec.check.port, spec.check.min_confidence) == (9090, 0.8)
    assert (spec.every_s, spec.until) == (10.0, start.until)
