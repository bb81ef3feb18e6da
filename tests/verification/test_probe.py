"""Generation probes against a local engine on loopback that answers what each test says.

Latency is measured with an injected monotonic clock that the engine moves while it
answers, so the 200 ms threshold is tested without waiting; one test lets a real delay
be the point, with generous bounds.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from probe_support import Answer, Engine, FakeMonotonic, serve_engine

from responder.models.target import Target
from responder.verification import (
    GenerationProbe,
    ProbeChecker,
    ProbeVerdict,
    Verifier,
    VerifySpec,
)
from responder_dev.stack.process import free_port


@pytest.fixture
def clock(probe_clock: FakeMonotonic) -> FakeMonotonic:
    return probe_clock


@pytest.fixture
def engine(probe_engine: Engine) -> Engine:
    return probe_engine


START = datetime(2026, 12, 7, 21, 0, tzinfo=UTC)


@pytest.fixture
async def checker(engine: Engine, clock: FakeMonotonic) -> AsyncIterator[ProbeChecker]:
    made = ProbeChecker({"drummaroo": engine.url + "/"}, timeout_s=5, monotonic=clock)
    try:
        yield made
    finally:
        await made.close()


DRUMMAROO = GenerationProbe(base="drummaroo")


def _loopback(address: str) -> bool:
    return ipaddress.ip_address(address).is_loopback


async def test_healthy_sends_the_contract_and_measures_the_callers_latency(
    engine: Engine, checker: ProbeChecker
) -> None:
    engine.answers = [Answer(confidence=0.93, takes_s=0.05)]
    verdict = await checker(DRUMMAROO)
    assert verdict.ok
    assert verdict.measured["verdict"] == "healthy"
    assert verdict.measured["success"] is True
    assert verdict.measured["confidence"] == 0.93
    assert verdict.measured["latency_ms"] == pytest.approx(50.0)  # not the engine's 1.0
    assert verdict.measured["engine"] == "drummaroo"
    assert verdict.detail.startswith(
        "probe healthy (confidence 0.93, latency 50 ms) at http://127.0.0.1:"
    )
    (call,) = engine.calls
    assert call["method"] == "POST"
    assert call["path"] == "/v1/generate/test"
    assert call["body"] == {"complexity": 0.5, "style": "test"}
    assert _loopback(call["local"])
    assert _loopback(call["peer"])


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (Answer(status=500), "HTTP 500"),
        (Answer(status=404), "HTTP 404"),
        (Answer(body={"ok": True}), "not a test-generation answer (success: Field required"),
        (
            Answer(success="yes"),
            "not a test-generation answer (success: Input should be a valid boolean",
        ),
        (
            Answer(confidence=1.5),
            "not a test-generation answer (confidence: Input should be less than",
        ),
    ],
)
async def test_failed_by_an_error_answer(
    engine: Engine, checker: ProbeChecker, answer: Answer, error: str
) -> None:
    engine.answers = [answer]
    verdict = await checker(DRUMMAROO)
    assert not verdict.ok
    assert verdict.measured["verdict"] == "failed"
    assert verdict.measured["error"].startswith(error), verdict.measured["error"]
    assert verdict.measured["success"] is None
    assert verdict.detail.startswith(f"probe failed: {error}")


async def test_failed_by_a_connection_error_and_by_a_timeout(clock: FakeMonotonic) -> None:
    refused = ProbeChecker(
        {"gone": f"http://127.0.0.1:{free_port()}"}, timeout_s=2, monotonic=clock
    )
    try:
        verdict = await refused(GenerationProbe(base="gone"))
    finally:
        await refused.close()
    assert not verdict.ok
    assert verdict.measured["verdict"] == "failed"
    assert verdict.measured["error"].startswith("call failed: ClientConnectorError")

    slow = Engine(FakeMonotonic(), answers=[Answer(real_delay_s=2.0)])
    runner = await serve_engine(slow)
    checker = ProbeChecker({"slow": slow.url}, timeout_s=0.2)
    try:
        verdict = await checker(GenerationProbe(base="slow"))
    finally:
        await checker.close()
        await runner.cleanup()
    assert not verdict.ok
    assert verdict.measured["error"] == "no answer within 0.2 s"


async def test_failed_by_success_false(engine: Engine, checker: ProbeChecker) -> None:
    engine.answers = [Answer(success=False, confidence=0.99)]
    verdict = await checker(DRUMMAROO)
    assert not verdict.ok
    assert verdict.measured["verdict"] == "failed"
    assert verdict.measured["success"] is False
    assert verdict.measured["confidence"] == 0.99
    assert "the engine reported success: false" in verdict.detail


async def test_quality_degraded_below_the_confidence_threshold(
    engine: Engine, checker: ProbeChecker
) -> None:
    engine.answers = [Answer(confidence=0.69, takes_s=0.02)]
    verdict = await checker(DRUMMAROO)
    assert not verdict.ok  # degraded is not recovered
    assert verdict.measured["verdict"] == "quality_degraded"
    assert verdict.measured["confidence"] == 0.69
    assert verdict.detail.startswith("probe quality_degraded: confidence 0.69 < 0.7")
    engine.answers = [Answer(confidence=0.7)]
    assert (await checker(DRUMMAROO)).measured["verdict"] == "healthy"  # 0.7 itself is fine


async def test_latency_degraded_above_200_ms_on_the_callers_clock(
    engine: Engine, checker: ProbeChecker
) -> None:
    engine.answers = [Answer(takes_s=0.250)]
    verdict = await checker(DRUMMAROO)
    assert not verdict.ok
    assert verdict.measured["verdict"] == "latency_degraded"
    assert verdict.measured["latency_ms"] == pytest.approx(250.0)
    assert "latency 250 ms > 200 ms" in verdict.detail
    engine.answers = [Answer(takes_s=0.200)]
    assert (await checker(DRUMMAROO)).measured["verdict"] == "healthy"  # 200 ms is not above


async def test_a_real_slow_engine_is_latency_degraded(clock: FakeMonotonic) -> None:
    """The delay is the point here: the real clock, a 400 ms answer, generous bounds."""
    slow = Engine(clock, answers=[Answer(real_delay_s=0.4)])
    runner = await serve_engine(slow)
    checker = ProbeChecker({"slow": slow.url}, timeout_s=10, monotonic=time.monotonic)
    try:
        verdict = await checker(GenerationProbe(base="slow"))
    finally:
        await checker.close()
        await runner.cleanup()
    assert verdict.measured["verdict"] == "latency_degraded"
    assert 390 <= verdict.measured["latency_ms"] < 10_000


async def test_accept_lets_a_degradation_count_as_recovered(
    engine: Engine, checker: ProbeChecker
) -> None:
    latency_ok = GenerationProbe(
        base="drummaroo", accept=frozenset({ProbeVerdict.LATENCY_DEGRADED})
    )
    engine.answers = [Answer(takes_s=0.5)]
    slow = await checker(latency_ok)
    assert slow.ok
    assert slow.measured["verdict"] == "latency_degraded"
    assert slow.measured["accepted"] == ["latency_degraded"]
    assert "accepted by the runbook" in slow.detail
    # Slow *and* unsure: accepting latency alone does not cover the quality problem.
    engine.answers = [Answer(takes_s=0.5, confidence=0.4)]
    both = await checker(latency_ok)
    assert not both.ok
    assert both.measured["verdict"] == "quality_degraded"
    assert "confidence 0.4 < 0.7; latency 500 ms > 200 ms" in both.detail
    both_ok = GenerationProbe(
        base="drummaroo",
        accept=frozenset({ProbeVerdict.LATENCY_DEGRADED, ProbeVerdict.QUALITY_DEGRADED}),
    )
    assert (await checker(both_ok)).ok
    engine.answers = [Answer(success=False)]
    assert not (await checker(both_ok)).ok  # failed is never accepted


async def test_parameters_path_and_thresholds_per_check(
    engine: Engine, checker: ProbeChecker
) -> None:
    probe = GenerationProbe(
        base="drummaroo",
        path="/custom/probe",
        complexity=0.9,
        style="jazz",
        min_confidence=0.95,
        max_latency_ms=20,
    )
    engine.answers = [Answer(confidence=0.93, takes_s=0.01)]
    verdict = await checker(probe)
    assert verdict.measured["verdict"] == "quality_degraded"
    assert verdict.measured["min_confidence"] == 0.95
    engine.answers = [Answer(confidence=0.97, takes_s=0.03)]
    assert (await checker(probe)).measured["verdict"] == "latency_degraded"
    assert [c["path"] for c in engine.calls] == ["/custom/probe", "/custom/probe"]
    assert engine.calls[0]["body"] == {"complexity": 0.9, "style": "jazz"}


async def test_unconfigured_base_and_no_pod_resolver_fail_saying_why(
    checker: ProbeChecker, engine: Engine
) -> None:
    missing = await checker(GenerationProbe(base="elsewhere"))
    assert not missing.ok
    assert missing.measured["verdict"] == "failed"
    assert "http base 'elsewhere' is not configured" in missing.detail
    pods = await checker(GenerationProbe(service=Target(namespace="m", kind="service", name="e")))
    assert "pod addresses need the Kubernetes configuration" in pods.detail
    assert engine.calls == []


@dataclass
class StubPods:
    """The pod resolver as the catalogue is one: loopback pod addresses, as the local stack's."""

    urls: list[str]
    asked: list[tuple[Target, int, str]] = field(default_factory=list)

    async def __call__(self, service: Target, port: int, path: str) -> list[str]:
        self.asked.append((service, port, path))
        return [url.rstrip("/") + path for url in self.urls]


async def test_every_pod_is_probed_and_the_worst_verdict_counts(clock: FakeMonotonic) -> None:
    port = free_port("127.0.0.2")
    healthy = Engine(clock, host="127.0.0.2", port=port, answers=[Answer(confidence=0.9)])
    unsure = Engine(clock, host="127.0.0.3", port=port, answers=[Answer(confidence=0.5)])
    runners = [await serve_engine(healthy), await serve_engine(unsure)]
    pods = StubPods([healthy.url, unsure.url])
    checker = ProbeChecker({}, timeout_s=5, pods=pods, monotonic=clock)
    service = Target(namespace="musearoo", kind="service", name="drummaroo-engine")
    try:
        verdict = await checker(GenerationProbe(service=service, port=port))
        pods.urls = []
        none = await checker(GenerationProbe(service=service, port=port))
    finally:
        await checker.close()
        for runner in runners:
            await runner.cleanup()
    assert pods.asked[0] == (service, port, "/v1/generate/test")
    assert not verdict.ok
    assert verdict.measured["verdict"] == "quality_degraded"
    assert verdict.measured["url"] == f"{unsure.url}/v1/generate/test"
    assert sorted(p["verdict"] for p in verdict.measured["probes"]) == [
        "healthy",
        "quality_degraded",
    ]
    assert verdict.detail.endswith(f"worst of 2 pods at {unsure.url}/v1/generate/test")
    for engine in (healthy, unsure):
        (call,) = engine.calls
        assert call["local"] == engine.host
        assert _loopback(call["local"])
    assert not none.ok
    assert "no ready endpoint in the pods of service musearoo/drummaroo-engine" in none.detail


async def test_the_verifier_polls_a_degraded_engine_until_it_is_healthy(
    engine: Engine, checker: ProbeChecker
) -> None:
    """A degraded verdict is "not yet": polled again until healthy, or the window ends."""
    engine.answers = [Answer(confidence=0.4), Answer(takes_s=0.3), Answer(confidence=0.91)]
    at = [START]

    async def sleep(seconds: float) -> None:
        at[0] += timedelta(seconds=seconds)

    verifier = Verifier({GenerationProbe: checker}, now=lambda: at[0], sleep=sleep)
    spec = VerifySpec(DRUMMAROO, every_s=5, until=START + timedelta(seconds=60))
    verdict = await verifier.verify(spec)
    assert verdict.ok
    assert verdict.measured["confidence"] == 0.91
    assert len(engine.calls) == 3
    engine.answers = [Answer(confidence=0.4)]
    short = VerifySpec(DRUMMAROO, every_s=5, until=at[0] + timedelta(seconds=10))
    last = await verifier.verify(short)
    assert not last.ok  # the window ended on a degraded verdict, with what it measured
    assert last.measured["verdict"] == "quality_degraded"
