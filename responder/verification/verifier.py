"""The polling loop: evaluate a check until it holds or its window ends.

A check that cannot be evaluated (Prometheus down, connection refused) is "not yet", never
an error: the window decides. Time is injected (``now``, ``sleep``) so the loop is tested
without waiting; kinds are looked up by their spec's type, so a new kind is one module
with its spec and checker plus one entry in ``from_settings``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from responder.settings import ActionsSettings, RemediationSettings
from responder.verification.base import Check, Checker, Verdict, VerifySpec
from responder.verification.http import HTTPChecker, HTTPGet
from responder.verification.probe import GenerationProbe, PodURLs, ProbeChecker
from responder.verification.promql import PromQL, PromQLChecker

log = structlog.get_logger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Verifier:
    """Runs verifications with one checker per kind."""

    def __init__(
        self,
        checkers: Mapping[type[Any], Checker[Any]],
        *,
        now: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._checkers = dict(checkers)
        self._now = now
        self._sleep = sleep

    @classmethod
    def from_settings(
        cls,
        remediation: RemediationSettings,
        actions: ActionsSettings,
        *,
        pods: PodURLs | None = None,
        now: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> Verifier:
        """``pods``: where a probe of a Service's pods finds their URLs (None: such probes fail)."""
        timeout = remediation.query_timeout_s
        checkers: dict[type[Any], Checker[Any]] = {
            PromQL: PromQLChecker(remediation.prometheus_url, timeout),
            HTTPGet: HTTPChecker(actions.http_base_urls, timeout),
            GenerationProbe: ProbeChecker(
                actions.http_base_urls,
                timeout,
                pods=pods,
                parallelism=actions.endpoint_parallelism,
            ),
        }
        return cls(checkers, now=now, sleep=sleep)

    async def check(self, check: Check) -> Verdict:
        """Evaluate once; an evaluation that fails is a failing verdict saying why."""
        checker = self._checkers.get(type(check))
        if checker is None:
            return Verdict(False, f"no checker for {type(check).__name__} checks")
        try:
            return await checker(check)
        except Exception as exc:  # noqa: BLE001 - a failing check is "not yet", never a crash
            return Verdict(False, f"check failed: {exc!r}")

    async def verify(self, spec: VerifySpec) -> Verdict:
        """Poll until the check holds (an ok verdict) or the window ends (the last failing one)."""
        while True:
            verdict = await self.check(spec.check)
            if verdict.ok:
                return verdict
            left = (spec.until - self._now()).total_seconds()
            if left <= 0:
                return verdict
            await self._sleep(min(spec.every_s, left))

    async def close(self) -> None:
        for checker in self._checkers.values():
            await checker.close()
