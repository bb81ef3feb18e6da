"""PagerDuty Events API v2 out: trigger on escalation, acknowledge and resolve after.

Uses the ``pagerduty`` package (``EventsApiV2Client``), the maintained successor of
``pdpyras`` (deprecated since 2025-06-20). The SDK is synchronous and, left to its
defaults, sleeps inside the calling thread between retries (and retries 429
forever), so each SDK call here is a *single* HTTP attempt in a worker thread with
a deadline, and the retry loop lives on the event loop: jittered backoff, the
per-routing-key limiter consulted before every attempt, and a bounded number of
attempts. ``dedup_key`` is our incident id; acknowledge and resolve go with the
routing key the trigger used, which the ``PagerDutyStore`` remembers by name.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Callable
from typing import Any, Protocol

import pagerduty
import structlog
from pydantic import BaseModel, ConfigDict

from responder.errors import ConfigError, PermanentError, TemporaryError
from responder.integrations.base import (
    DeliveryOutcome,
    DeliveryResult,
    LockStripes,
    Sleep,
    default_sleep,
)
from responder.integrations.ratelimit import SlidingWindowLimiter
from responder.models.notifications import IncidentPhase, Notification, Severity, StepStatus
from responder.retry import full_jitter_delay, is_retryable_status
from responder.settings import PagerDutySettings

log = structlog.get_logger(__name__)

SUMMARY_MAX = 1024
DEDUP_KEY_MAX = 255
PAYLOAD_MAX_BYTES = 512 * 1024

SEVERITY_MAP: dict[Severity, str] = {
    Severity.CRITICAL: "critical",
    Severity.ERROR: "error",
    Severity.WARNING: "warning",
    Severity.INFO: "info",
}
"""Runbook severity -> PagerDuty payload.severity (the scales coincide; the table says so)."""


class PagedIncident(BaseModel):
    """What we remember about an incident we paged."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    service: str
    """Routing key *name*; the key itself stays in settings."""
    delivered: tuple[str, ...] = ()
    """Idempotency keys already sent (bounded)."""
    acknowledged: bool = False
    resolved: bool = False


class PagerDutyStore(Protocol):
    """Per-incident memory; the lead backs it with a Faust table keyed by incident id."""

    async def get(self, incident_id: str) -> PagedIncident | None: ...

    async def put(self, incident_id: str, record: PagedIncident) -> None: ...


class InMemoryPagerDutyStore:
    """For tests and single-process runs."""

    def __init__(self) -> None:
        self.records: dict[str, PagedIncident] = {}

    async def get(self, incident_id: str) -> PagedIncident | None:
        return self.records.get(incident_id)

    async def put(self, incident_id: str, record: PagedIncident) -> None:
        self.records[incident_id] = record


_DELIVERED_KEEP = 32


def _remember(record: PagedIncident, key: str, **changes: Any) -> PagedIncident:
    delivered = (*record.delivered, key)[-_DELIVERED_KEEP:]
    return record.model_copy(update={"delivered": delivered, **changes})


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def build_trigger_payload(n: Notification, *, default_source: str) -> dict[str, Any]:
    """The ``payload`` of a trigger event, within PagerDuty's documented limits."""
    namespace = n.target.get("namespace")
    workload = next((v for k, v in n.target.items() if k != "namespace"), None)
    source = f"{namespace}/{workload}" if namespace and workload else default_source
    steps = [
        {"step": s.index, "action": s.action, "status": s.status.value, "result": s.detail}
        | ({"measured": s.measured} if s.measured else {})
        for s in n.steps
    ]
    failed = sum(1 for s in n.steps if s.status is StepStatus.FAILED)
    summary = f"[{n.severity.value}] {n.title} ({n.runbook_id}; {failed} step(s) failed)"
    return {
        "summary": _truncate(summary, SUMMARY_MAX),
        "source": _truncate(source, 255),
        "severity": SEVERITY_MAP[n.severity],
        "timestamp": n.occurred_at.isoformat(),
        "component": workload or n.runbook_id,
        "group": namespace or "default",
        "class": n.runbook_id,
        "custom_details": {
            "incident_id": n.incident_id,
            "runbook": n.runbook_id,
            "phase": n.phase.value,
            "escalation_level": n.escalation_level,
            "target": dict(n.target),
            "steps_tried": steps,
            "last_event": n.event,
        },
    }


class EventsClient:
    """Sends one Events API v2 event per call, retrying on the event loop."""

    def __init__(
        self,
        settings: PagerDutySettings,
        *,
        limiter: SlidingWindowLimiter | None = None,
        sleep: Sleep = default_sleep,
        rand: Callable[[], float] | None = None,
    ) -> None:
        if not settings.routing_keys:
            raise ConfigError("pagerduty.routing_keys is empty: nothing to page")
        self._settings = settings
        self._sleep = sleep
        self._rand = rand
        self._limiter = limiter or SlidingWindowLimiter(
            settings.events_per_minute, 60.0, sleep=sleep
        )
        verify: ssl.SSLContext | bool = True
        if settings.ca_file is not None:
            verify = ssl.create_default_context(cafile=settings.ca_file)
        self._clients: dict[str, pagerduty.EventsApiV2Client] = {}
        for name, key in settings.routing_keys.items():
            try:
                client = pagerduty.EventsApiV2Client(
                    key.get_secret_value(),
                    base_url=settings.events_url.rstrip("/"),
                    verify=verify,
                    trust_env=settings.trust_env,
                )
            except pagerduty.UrlError as exc:
                raise ConfigError(f"pagerduty.events_url: {exc}") from exc
            # One HTTP attempt per SDK call: no SDK-side sleeping retries. max_network_attempts=0
            # raises on the first transport error; max_http_attempts=-1 makes the SDK's
            # "attempts > max" check true on the first error status, so it returns that response.
            client.max_network_attempts = 0
            client.max_http_attempts = -1
            client.retry = {status: 1 for status in (429, 500, 502, 503, 504)}
            client.timeout = settings.timeout_s  # type: ignore[assignment]  # int in the SDK, httpx takes float
            self._clients[name] = client

    def has_service(self, service: str) -> bool:
        return service in self._clients

    def close(self) -> None:
        for client in self._clients.values():
            client.close()

    async def send(
        self, service: str, action: str, dedup_key: str, event: dict[str, Any] | None = None
    ) -> str:
        """Send ``action`` for ``dedup_key`` via the ``service`` routing key; returns PagerDuty's dedup key."""
        if service not in self._clients:
            raise PermanentError(f"pagerduty: no routing key named {service!r}")
        if not dedup_key or len(dedup_key) > DEDUP_KEY_MAX:
            raise PermanentError("pagerduty: dedup_key must be 1..255 characters")
        properties = dict(event or {})
        size = len(json.dumps({"event_action": action, "dedup_key": dedup_key, **properties}))
        if size > PAYLOAD_MAX_BYTES:
            raise PermanentError(f"pagerduty: event is {size} bytes, the limit is 512 KB")
        client = self._clients[service]
        attempts = self._settings.max_attempts
        bound = log.bind(incident_id=dedup_key, pagerduty_service=service, event_action=action)
        for attempt in range(attempts):
            await self._limiter.acquire(service)
            try:
                result = await asyncio.wait_for(
                    asyncio.to_thread(client.send_event, action, dedup_key=dedup_key, **properties),
                    timeout=self._settings.timeout_s + 1.0,
                )
            except pagerduty.HttpError as exc:
                status = exc.response.status_code if exc.response is not None else 0
                message = _pagerduty_message(exc)
                if not is_retryable_status(status):
                    bound.error("pagerduty.rejected", status=status, message=message)
                    raise PermanentError(
                        f"pagerduty rejected {action} (HTTP {status}): {message}"
                    ) from exc
                retry_after = _retry_after(exc)
                reason = f"HTTP {status}"
            except (pagerduty.Error, TimeoutError) as exc:
                retry_after = None
                reason = type(exc).__name__
            else:
                bound.info("pagerduty.sent", attempt=attempt + 1)
                return result
            if attempt + 1 >= attempts:
                bound.warning("pagerduty.gave_up", attempts=attempts, reason=reason)
                raise TemporaryError(
                    f"pagerduty {action}: {reason} after {attempts} attempts",
                    delay=self._settings.backoff_cap_s,
                )
            delay = full_jitter_delay(
                attempt,
                base_s=self._settings.backoff_base_s,
                cap_s=self._settings.backoff_cap_s,
                **({"rand": self._rand} if self._rand else {}),
            )
            if retry_after is not None:
                delay = max(delay, min(retry_after, self._settings.backoff_cap_s))
            bound.warning("pagerduty.retry", attempt=attempt + 1, reason=reason, delay_s=delay)
            await self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover


def _pagerduty_message(exc: pagerduty.HttpError) -> str:
    """PagerDuty's own words from a 4xx body (``message`` + ``errors``), never the request."""
    response = exc.response
    if response is None:
        return str(exc)
    try:
        body = response.json()
    except ValueError:
        return _truncate(response.text, 300)
    if isinstance(body, dict):
        message = str(body.get("message", ""))
        errors = body.get("errors") or []
        if isinstance(errors, list) and errors:
            message = f"{message}: {'; '.join(str(e) for e in errors)}"
        return _truncate(message, 500)
    return _truncate(str(body), 300)


def _retry_after(exc: pagerduty.HttpError) -> float | None:
    response = exc.response
    if response is None:
        return None
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class PagerDutyNotifier:
    """Escalation -> trigger; acknowledged -> acknowledge; resolved -> resolve."""

    name = "pagerduty"

    def __init__(
        self, settings: PagerDutySettings, client: EventsClient, store: PagerDutyStore
    ) -> None:
        self._settings = settings
        self._client = client
        self._store = store
        self._locks = LockStripes()

    async def aclose(self) -> None:
        await asyncio.to_thread(self._client.close)

    async def notify(self, notification: Notification) -> DeliveryResult:
        async with self._locks.for_key(notification.incident_id):
            return await self._notify(notification)

    async def _notify(self, n: Notification) -> DeliveryResult:
        record = await self._store.get(n.incident_id)
        if record is not None and n.idempotency_key in record.delivered:
            return self._result(DeliveryOutcome.DUPLICATE, "transition already sent")
        if n.phase is IncidentPhase.ESCALATED:
            if record is not None and not record.resolved:
                # Already paged: PagerDuty would only append to the same alert; say nothing.
                await self._store.put(n.incident_id, _remember(record, n.idempotency_key))
                return self._result(DeliveryOutcome.DUPLICATE, "already paged")
            service = n.pagerduty_service or self._settings.default_service
            event = {
                "payload": build_trigger_payload(n, default_source=self._settings.source),
                "links": [{"href": link.href, "text": link.text} for link in n.links],
            }
            await self._client.send(service, "trigger", n.incident_id, event)
            await self._store.put(
                n.incident_id,
                _remember(PagedIncident(service=service), n.idempotency_key),
            )
            return self._result(DeliveryOutcome.DELIVERED, f"triggered via {service}")
        if n.phase in (IncidentPhase.ACKNOWLEDGED, IncidentPhase.RESOLVED) or n.acknowledged:
            if record is None:
                return self._result(DeliveryOutcome.NOT_APPLICABLE, "never paged")
            resolving = n.phase is IncidentPhase.RESOLVED
            if record.resolved or (not resolving and record.acknowledged):
                await self._store.put(n.incident_id, _remember(record, n.idempotency_key))
                return self._result(DeliveryOutcome.DUPLICATE, "state already sent")
            action = "resolve" if resolving else "acknowledge"
            await self._client.send(record.service, action, n.incident_id)
            changes = {"resolved": True} if resolving else {"acknowledged": True}
            await self._store.put(n.incident_id, _remember(record, n.idempotency_key, **changes))
            return self._result(DeliveryOutcome.DELIVERED, f"{action} via {record.service}")
        return self._result(DeliveryOutcome.NOT_APPLICABLE, f"nothing to page on {n.phase}")

    def _result(self, outcome: DeliveryOutcome, detail: str) -> DeliveryResult:
        return DeliveryResult(notifier=self.name, outcome=outcome, detail=detail)
