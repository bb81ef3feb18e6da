"""PromQL checks: the step worked when the query returns at least one series.

prometheus-api-client is synchronous (requests), so the query runs in a thread with
Prometheus' own timeout and an outer one a second longer, so a hung socket cannot hold
the verification past its budget.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from responder.verification.base import Verdict


@dataclass(frozen=True, slots=True)
class PromQL:
    """An instant query whose non-empty result means "healthy"."""

    query: str


class PromQLChecker:
    """Runs ``PromQL`` checks against one Prometheus."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._client: Any = None

    async def __call__(self, check: PromQL) -> Verdict:
        timeout = self.timeout_s
        result = await asyncio.wait_for(
            asyncio.to_thread(self._query, check.query, timeout), timeout + 1
        )
        return Verdict(bool(result), f"{len(result)} series satisfy the query")

    def _query(self, query: str, timeout: float) -> list[Any]:
        if self._client is None:
            from prometheus_api_client import PrometheusConnect

            self._client = PrometheusConnect(url=self.url, disable_ssl=True)
        # Prometheus reads a duration parameter as float seconds ("5.0") or as its own
        # duration syntax ("5s"); "5.0s" is neither and is refused with 400.
        result = self._client.custom_query(
            query, params={"timeout": repr(float(timeout))}, timeout=timeout
        )
        return list(result) if isinstance(result, list) else []

    async def close(self) -> None:
        return None
