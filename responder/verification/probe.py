"""Generation probes: ask an engine for a test generation and judge the answer.

The design's health checker judges a MuseAroo engine by one test generation with fixed
parameters: **failed** when the call fails or the engine says it did not succeed,
**quality degraded** when its confidence is below 0.7, **latency degraded** when the call
took more than 200 ms, **healthy** otherwise. A PromQL check sees what the engine reported
a minute ago; a probe sees what it does now, which is what a step that reloaded its models
wants to know.

The contract (shared with the engine simulator): ``POST /v1/generate/test`` with
``{"complexity": 0.5, "style": "test"}`` answers 200 and
``{"success": bool, "confidence": 0..1, "engine": str, "duration_ms": float}``. Any other
status, a connection error, a timeout or an answer of another shape is a failed call.
Latency is the wall time of the call as the caller measures it (injected monotonic clock),
never the engine's own ``duration_ms``.

Where the call goes is never taken from a label: either an allow-listed base URL
(``actions.http_base_urls``, as the HTTP check) or the ready pods behind the target's
Service, whose addresses the Kubernetes actions resolve and check against
``actions.allowed_endpoint_networks`` (``PodURLs``, injected: this package does not
import the actions). With several pods every one is probed and the worst verdict counts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from responder.models.target import Target
from responder.verification.base import Verdict
from responder.verification.http import base_url

__all__ = [
    "PROBE_PATH",
    "GenerationProbe",
    "Judgement",
    "PodURLs",
    "ProbeChecker",
    "ProbeReading",
    "ProbeVerdict",
    "judge",
]

PROBE_PATH = "/v1/generate/test"
"""The engines' test-generation endpoint (the probe contract)."""

BODY_KEPT = 200
"""Characters of an unexpected answer kept in the verdict's error."""


class ProbeVerdict(StrEnum):
    """The health checker's four verdicts, mildest first."""

    HEALTHY = "healthy"
    LATENCY_DEGRADED = "latency_degraded"
    QUALITY_DEGRADED = "quality_degraded"
    FAILED = "failed"

    @property
    def rank(self) -> int:
        return list(ProbeVerdict).index(self)


DEGRADED = frozenset({ProbeVerdict.LATENCY_DEGRADED, ProbeVerdict.QUALITY_DEGRADED})
"""The verdicts a runbook may accept as recovered (``accept:``); failed never is."""


class PodURLs(Protocol):
    """The probe URLs of the ready pods behind a Service (production: the action catalogue's)."""

    async def __call__(self, service: Target, port: int, path: str) -> list[str]:
        """One URL per ready pod, each address checked against the allowed networks."""
        ...


@dataclass(frozen=True, slots=True)
class GenerationProbe:
    """One test generation to run and the thresholds to judge it by.

    Exactly one of ``base`` (an ``actions.http_base_urls`` name) and ``service`` (probe
    every ready pod behind this Service on ``port``) is set.
    """

    base: str | None = None
    service: Target | None = None
    port: int = 8080
    path: str = PROBE_PATH
    complexity: float = 0.5
    style: str = "test"
    min_confidence: float = 0.7
    max_latency_ms: float = 200.0
    accept: frozenset[ProbeVerdict] = frozenset()

    @property
    def body(self) -> dict[str, Any]:
        return {"complexity": self.complexity, "style": self.style}

    @property
    def where(self) -> str:
        if self.service is not None:
            return f"the pods of service {self.service.namespace}/{self.service.name}"
        return f"http base {self.base!r}"


class _Answer(BaseModel):
    """The engine's answer; extra fields are tolerated (the simulator may add some)."""

    model_config = ConfigDict(extra="ignore")

    success: StrictBool
    confidence: float = Field(ge=0.0, le=1.0)
    engine: str = ""
    duration_ms: float | None = None


@dataclass(frozen=True, slots=True)
class ProbeReading:
    """What one call measured; ``error`` set when the call itself failed."""

    url: str
    latency_ms: float
    success: bool | None = None
    confidence: float | None = None
    engine: str | None = None
    status: int | None = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "success": self.success,
            "confidence": self.confidence,
            "latency_ms": self.latency_ms,
            "engine": self.engine,
            "status": self.status,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class Judgement:
    """A reading judged: its verdict, why, and every way it is degraded (both may be)."""

    verdict: ProbeVerdict
    reasons: tuple[str, ...] = ()
    degraded: frozenset[ProbeVerdict] = frozenset()

    def recovered(self, accept: frozenset[ProbeVerdict]) -> bool:
        """Healthy, or degraded only in ways the runbook accepts; failed never is."""
        return self.verdict is not ProbeVerdict.FAILED and self.degraded <= accept


def judge(reading: ProbeReading, probe: GenerationProbe) -> Judgement:
    """The verdict of one reading, in the design's order: failed, then quality, then latency.

    A reading degraded both ways is reported as quality degraded and keeps both reasons, so
    a runbook accepting only one of them does not count it as recovered.
    """
    if reading.error is not None:
        return Judgement(ProbeVerdict.FAILED, (reading.error,))
    if not reading.success or reading.confidence is None:
        return Judgement(ProbeVerdict.FAILED, ("the engine reported success: false",))
    reasons: list[str] = []
    degraded: set[ProbeVerdict] = set()
    if reading.confidence < probe.min_confidence:
        degraded.add(ProbeVerdict.QUALITY_DEGRADED)
        reasons.append(f"confidence {reading.confidence:g} < {probe.min_confidence:g}")
    if reading.latency_ms > probe.max_latency_ms:
        degraded.add(ProbeVerdict.LATENCY_DEGRADED)
        reasons.append(f"latency {reading.latency_ms:.0f} ms > {probe.max_latency_ms:g} ms")
    verdict = max(degraded, key=lambda v: v.rank, default=ProbeVerdict.HEALTHY)
    return Judgement(verdict, tuple(reasons), frozenset(degraded))


class ProbeChecker:
    """Runs ``GenerationProbe`` checks with one session (opened on first use).

    ``timeout_s`` bounds each call (a call cut short is failed); ``monotonic`` is the
    clock latency is measured with.
    """

    def __init__(
        self,
        base_urls: Mapping[str, str],
        timeout_s: float,
        *,
        pods: PodURLs | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        parallelism: int = 8,
    ) -> None:
        self.base_urls = base_urls
        self.timeout_s = timeout_s
        self._pods = pods
        self._monotonic = monotonic
        self._limit = asyncio.Semaphore(parallelism)
        self._session: aiohttp.ClientSession | None = None

    async def __call__(self, check: GenerationProbe) -> Verdict:
        try:
            urls = await self._urls(check)
        except Exception as exc:  # noqa: BLE001 - no address is a failed probe, said why
            return self._failed(check, f"cannot resolve {check.where}: {exc}")
        if not urls:
            return self._failed(check, f"no ready endpoint in {check.where}")
        readings = await asyncio.gather(*(self._limited(check, url) for url in urls))
        return self._verdict(check, list(readings))

    async def _urls(self, check: GenerationProbe) -> list[str]:
        if check.service is not None:
            if self._pods is None:
                raise LookupError("pod addresses need the Kubernetes configuration")
            return await self._pods(check.service, check.port, check.path)
        url = base_url(self.base_urls, check.base or "", check.path)
        if url is None:
            raise LookupError(f"http base {check.base!r} is not configured")
        return [url]

    async def _limited(self, check: GenerationProbe, url: str) -> ProbeReading:
        async with self._limit:
            return await self.call(check, url)

    async def call(self, check: GenerationProbe, url: str) -> ProbeReading:
        """One test generation at ``url``, timed; every failure becomes the reading's error."""
        if self._session is None or self._session.closed:
            # No proxy from the environment, no redirects: the call goes where it was aimed.
            self._session = aiohttp.ClientSession(trust_env=False)
        started = self._monotonic()

        def elapsed_ms() -> float:
            # Microseconds are the precision recorded, and the one the threshold is judged at.
            return round((self._monotonic() - started) * 1000.0, 3)

        try:
            async with self._session.post(
                url,
                json=check.body,
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                allow_redirects=False,
            ) as response:
                raw = await response.read()
                latency = elapsed_ms()
                status = response.status
        except TimeoutError:
            return ProbeReading(url, elapsed_ms(), error=f"no answer within {self.timeout_s:g} s")
        except aiohttp.ClientError as exc:
            return ProbeReading(url, elapsed_ms(), error=f"call failed: {exc!r}"[:300])
        if not 200 <= status < 300:
            head = raw[:BODY_KEPT].decode(errors="replace")
            return ProbeReading(url, latency, status=status, error=f"HTTP {status}: {head}")
        try:
            answer = _Answer.model_validate_json(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()
            )
            return ProbeReading(
                url,
                latency,
                status=status,
                error=f"not a test-generation answer ({problems})"[:300],
            )
        return ProbeReading(
            url,
            latency,
            success=answer.success,
            confidence=answer.confidence,
            engine=answer.engine,
            status=status,
        )

    def _verdict(self, check: GenerationProbe, readings: list[ProbeReading]) -> Verdict:
        judged = [(reading, judge(reading, check)) for reading in readings]
        worst, judgement = max(judged, key=lambda j: j[1].verdict.rank)
        verdict = judgement.verdict
        ok = all(j.recovered(check.accept) for _, j in judged)
        measured: dict[str, Any] = {
            "kind": "probe",
            "verdict": verdict.value,
            "success": worst.success,
            "confidence": worst.confidence,
            "latency_ms": worst.latency_ms,
            "engine": worst.engine,
            "url": worst.url,
            "error": worst.error,
            "min_confidence": check.min_confidence,
            "max_latency_ms": check.max_latency_ms,
            "accepted": sorted(check.accept),
            "recovered": ok,
        }
        if len(readings) > 1:
            measured["probes"] = [r.as_json() | {"verdict": j.verdict.value} for r, j in judged]
        why = "; ".join(judgement.reasons)
        detail = f"probe {verdict.value}" + (f": {why}" if why else "")
        if verdict is not ProbeVerdict.FAILED:
            detail += f" (confidence {worst.confidence:g}, latency {worst.latency_ms:.0f} ms)"
        if ok and verdict is not ProbeVerdict.HEALTHY:
            detail += ", accepted by the runbook"
        if len(readings) > 1:
            detail += f", worst of {len(readings)} pods"
        return Verdict(ok, f"{detail} at {worst.url}", measured)

    def _failed(self, check: GenerationProbe, error: str) -> Verdict:
        measured = {
            "kind": "probe",
            "verdict": ProbeVerdict.FAILED.value,
            "success": None,
            "confidence": None,
            "latency_ms": None,
            "error": error,
            "min_confidence": check.min_confidence,
            "max_latency_ms": check.max_latency_ms,
            "accepted": sorted(check.accept),
            "recovered": False,
        }
        return Verdict(False, f"probe failed: {error}", measured)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
