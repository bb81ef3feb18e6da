"""Verification without Faust: PromQL against the real Prometheus, HTTP against a local
server, and the polling window with a fake clock (no waiting)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from verification_support import HealthServer

from responder.verification import (
    HTTPChecker,
    HTTPGet,
    PromQL,
    PromQLChecker,
    Verdict,
    Verifier,
    VerifySpec,
)
from responder_dev.stack.process import free_port

START = datetime(2026, 12, 7, 21, 0, tzinfo=UTC)


@dataclass
class FakeTime:
    """``now`` and ``sleep`` of the verifier: sleeping moves the clock, nothing waits."""

    at: datetime = START
    slept: list[float] = field(default_factory=list)

    def now(self) -> datetime:
        return self.at

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.at += timedelta(seconds=seconds)


@dataclass(frozen=True)
class Scripted:
    """A check kind of the test's own: its verdicts, in order."""

    name: str


class ScriptedChecker:
    def __init__(self, verdicts: list[bool | Exception]) -> None:
        self.verdicts = verdicts
        self.calls = 0

    async def __call__(self, check: Scripted) -> Verdict:
        answer = self.verdicts[min(self.calls, len(self.verdicts) - 1)]
        self.calls += 1
        if isinstance(answer, Exception):
            raise answer
        return Verdict(answer, f"{check.name} call {self.calls}")

    async def close(self) -> None:
        return None


def verifier(checker: Any, time: FakeTime) -> Verifier:
    return Verifier({Scripted: checker}, now=time.now, sleep=time.sleep)


async def test_polls_until_the_check_holds() -> None:
    time = FakeTime()
    checker = ScriptedChecker([False, RuntimeError("refused"), True])
    spec = VerifySpec(Scripted("s"), every_s=5, until=START + timedelta(seconds=60))
    verdict = await verifier(checker, time).verify(spec)
    assert verdict == Verdict(True, "s call 3")
    assert time.slept == [5, 5]  # an evaluation that raised is "not yet", not an error


async def test_window_ends_with_the_last_failing_verdict_and_a_short_last_sleep() -> None:
    time = FakeTime()
    checker = ScriptedChecker([False])
    spec = VerifySpec(Scripted("s"), every_s=4, until=START + timedelta(seconds=10))
    verdict = await verifier(checker, time).verify(spec)
    assert not verdict.ok
    assert time.slept == [4, 4, 2]  # never sleeps past the window's end
    assert checker.calls == 4  # checked once more at the end of the window


async def test_a_check_that_raises_becomes_a_failing_verdict() -> None:
    time = FakeTime()
    checker = ScriptedChecker([ValueError("boom")])
    assert await verifier(checker, time).check(Scripted("s")) == Verdict(
        False, "check failed: ValueError('boom')"
    )
    unknown = await verifier(checker, time).check(PromQL("up"))
    assert unknown == Verdict(False, "no checker for PromQL checks")


async def test_promql_against_the_real_prometheus(prometheus: Any) -> None:
    checker = PromQLChecker(prometheus.url, timeout_s=5)
    real = Verifier({PromQL: checker})
    try:
        # Prometheus scrapes itself every second: `up` holds once the first scrape is in.
        spec = VerifySpec(PromQL('up{job="prometheus"}'), every_s=0.2, until=_in(30))
        held = await real.verify(spec)
        # The verdict names the value it saw: `up` is 1 for a scraped target.
        assert held.ok
        assert held.detail.startswith("1 series satisfy the query: {")
        assert 'job="prometheus"' in held.detail
        assert held.detail.endswith("} 1")
        assert await real.check(PromQL('up{job="prometheus"} == 42')) == Verdict(
            False, "0 series satisfy the query"
        )
        refused = await real.check(PromQL("sum(("))  # Prometheus answers 400: not yet
        assert not refused.ok
        assert refused.detail.startswith("check failed:")
    finally:
        await real.close()


async def test_promql_with_prometheus_down_is_not_yet() -> None:
    real = Verifier({PromQL: PromQLChecker(f"http://127.0.0.1:{free_port()}", timeout_s=2)})
    verdict = await real.check(PromQL("up"))
    assert not verdict.ok
    assert verdict.detail.startswith("check failed:")


async def test_http_statuses_bases_and_redirects(health_server: HealthServer) -> None:
    checker = HTTPChecker({"health": health_server.url + "/"}, timeout_s=5)
    real = Verifier({HTTPGet: checker})
    try:
        ok = frozenset({200})
        assert await real.check(HTTPGet("health", "/status/200", ok)) == Verdict(True, "HTTP 200")
        assert await real.check(HTTPGet("health", "status/503", ok)) == Verdict(False, "HTTP 503")
        assert await real.check(HTTPGet("health", "/status/503", frozenset({503}))) == Verdict(
            True, "HTTP 503"
        )
        # A redirect is not followed: it could lead anywhere the allow-list does not name.
        assert await real.check(HTTPGet("health", "/moved", ok)) == Verdict(False, "HTTP 302")
        assert await real.check(HTTPGet("elsewhere", "/status/200", ok)) == Verdict(
            False, "http base 'elsewhere' is not configured"
        )
        assert health_server.hits == ["/status/200", "/status/503", "/status/503", "/moved"]
    finally:
        await real.close()


def _in(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)
