"""A local PagerDuty Events API v2 (``POST /v2/enqueue``), over HTTPS as the SDK requires.

Validates an event as the Events API v2 reference documents it: ``routing_key``
(32 characters, and one this fake knows), ``event_action`` in trigger|acknowledge|
resolve, ``dedup_key`` at most 255 characters and required for acknowledge/resolve,
for a trigger a ``payload`` with ``summary`` (≤ 1024), ``source`` and ``severity``
(critical|error|warning|info), optional ``timestamp``/``component``/``group``/
``class``/``custom_details``/``links``/``images``, and 512 KB per event. Success is
202 ``{"status": "success", "message": "Event processed", "dedup_key": …}``; an invalid
event is 400 with an ``errors`` list; 429 and 5xx can be scripted. It also keeps the
alert state per (routing key, dedup key), so a test sees an acknowledge sent with
the wrong routing key leave the alert untouched, as it would in PagerDuty.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from responder_dev.fakes.http import LoopbackServer, Recorded

MAX_EVENT_BYTES = 512 * 1024
SEVERITIES = {"critical", "error", "warning", "info"}
ACTIONS = {"trigger", "acknowledge", "resolve"}


@dataclass
class Scripted:
    status: int
    retry_after: int | None = None


@dataclass
class FakePagerDuty:
    cert: Path
    key: Path
    routing_keys: set[str] = field(default_factory=set)
    events: list[Recorded] = field(default_factory=list)
    """Accepted events (202) only."""
    requests: list[Recorded] = field(default_factory=list)
    """Every request, accepted or not."""
    alerts: dict[tuple[str, str], str] = field(default_factory=dict)
    """(routing_key, dedup_key) -> triggered | acknowledged | resolved."""
    script: list[Scripted] = field(default_factory=list)
    by_action: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def __post_init__(self) -> None:
        app = web.Application(client_max_size=4 * MAX_EVENT_BYTES)
        app.router.add_post("/v2/enqueue", self._enqueue)
        self._server = LoopbackServer(app, tls=(self.cert, self.key))
        self.url = ""

    async def start(self) -> str:
        self.url = await self._server.start()
        return self.url

    async def stop(self) -> None:
        await self._server.stop()

    def fail_next(self, status: int, *, retry_after: int | None = None, times: int = 1) -> None:
        self.script.extend(Scripted(status, retry_after) for _ in range(times))

    @staticmethod
    def _invalid(*errors: str) -> web.Response:
        return web.json_response(
            {
                "status": "invalid event",
                "message": "Event object is invalid",
                "errors": list(errors),
            },
            status=400,
        )

    async def _enqueue(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = None
        self.requests.append(
            Recorded(path="/v2/enqueue", headers=dict(request.headers), raw=raw, body=body)
        )
        if self.script:
            scripted = self.script.pop(0)
            if scripted.status == 429:
                headers = {"Retry-After": str(scripted.retry_after)} if scripted.retry_after else {}
                return web.json_response(
                    {
                        "status": "throttle event",
                        "message": "Requests for this service are arriving too quickly. Please retry later.",
                    },
                    status=429,
                    headers=headers,
                )
            return web.Response(status=scripted.status, text="Internal Server Error")
        if len(raw) > MAX_EVENT_BYTES:
            return self._invalid("Event object is larger than 512 KB")
        if not isinstance(body, dict):
            return self._invalid("Event object is not valid JSON")
        errors = self._validate(body)
        if errors:
            return self._invalid(*errors)
        action, routing_key = body["event_action"], body["routing_key"]
        dedup_key = body.get("dedup_key") or uuid.uuid4().hex
        state_key = (routing_key, dedup_key)
        current = self.alerts.get(state_key)
        if action == "trigger" and current in (None, "resolved"):
            self.alerts[state_key] = "triggered"
        elif action == "acknowledge" and current == "triggered":
            self.alerts[state_key] = "acknowledged"
        elif action == "resolve" and current in ("triggered", "acknowledged"):
            self.alerts[state_key] = "resolved"
        self.events.append(self.requests[-1])
        self.by_action[action] += 1
        return web.json_response(
            {"status": "success", "message": "Event processed", "dedup_key": dedup_key}, status=202
        )

    def _validate(self, body: dict[str, Any]) -> list[str]:
        errors: list[str] = []
        routing_key = body.get("routing_key")
        if not isinstance(routing_key, str) or not routing_key:
            errors.append("'routing_key' is missing or blank")
        elif len(routing_key) != 32:
            errors.append("'routing_key' must be 32 characters")
        elif routing_key not in self.routing_keys:
            errors.append("Invalid routing key")
        action = body.get("event_action")
        if action not in ACTIONS:
            errors.append("'event_action' is missing or invalid")
        dedup_key = body.get("dedup_key")
        if dedup_key is not None and (not isinstance(dedup_key, str) or len(dedup_key) > 255):
            errors.append("'dedup_key' must be a string of at most 255 characters")
        if action in ("acknowledge", "resolve") and not dedup_key:
            errors.append("'dedup_key' is required for acknowledge and resolve")
        if action == "trigger":
            payload = body.get("payload")
            if not isinstance(payload, dict):
                errors.append("'payload' is missing or not an object")
            else:
                summary = payload.get("summary")
                if not isinstance(summary, str) or not summary:
                    errors.append("'payload.summary' is missing or blank")
                elif len(summary) > 1024:
                    errors.append("'payload.summary' is longer than 1024 characters")
                if not isinstance(payload.get("source"), str) or not payload["source"]:
                    errors.append("'payload.source' is missing or blank")
                if payload.get("severity") not in SEVERITIES:
                    errors.append(
                        "'payload.severity' must be one of critical, error, warning, info"
                    )
                for name in ("component", "group", "class", "timestamp"):
                    if name in payload and not isinstance(payload[name], str):
                        errors.append(f"'payload.{name}' must be a string")
                if "custom_details" in payload and not isinstance(
                    payload["custom_details"], dict | str
                ):
                    errors.append("'payload.custom_details' must be an object")
            links = body.get("links", [])
            if not isinstance(links, list) or any(
                not isinstance(x, dict) or "href" not in x for x in links
            ):
                errors.append("'links' must be a list of objects with 'href'")
        return errors
