"""PromQL checks: the step worked when the query returns at least one series.

The verdict's detail names the values the query returned (a comparison such as
``latency < 0.2`` returns the series that pass, with their value), so the audit shows
what the verification saw, not only that it held.

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


SHOWN_SERIES = 3
"""Series whose values a verdict names; the rest are counted."""


def describe(result: list[Any]) -> str:
    """``N series satisfy the query`` and the first few series' labels and values."""
    head = f"{len(result)} series satisfy the query"
    shown = [_series(item) for item in result[:SHOWN_SERIES]]
    shown = [text for text in shown if text]
    if not shown:
        return head
    more = f" (+{len(result) - len(shown)} more)" if len(result) > len(shown) else ""
    return f"{head}: {', '.join(shown)}{more}"


def _series(item: Any) -> str:
    """``{engine="melody"} 0.087`` for one instant-vector sample; "" if it is not one."""
    if not isinstance(item, dict):
        return ""
    value = item.get("value")
    if not isinstance(value, list | tuple) or len(value) != 2:
        return ""
    try:
        number = float(value[1])
    except (TypeError, ValueError):
        return ""
    metric = item.get("metric") or {}
    labels = ",".join(f'{k}="{v}"' for k, v in sorted(metric.items()) if k != "__name__")
    return f"{{{labels}}} {number:.6g}"


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
        return Verdict(bool(result), describe(result))

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
