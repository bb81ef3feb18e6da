"""The Alertmanager webhook receiver: checks a request, puts its alerts on Kafka, answers.

The answer is the whole contract with Alertmanager, which retries 5xx and never retries
4xx. So: bad input is a 4xx naming what is wrong (retrying it cannot help), and a request
is answered 200 only after the broker acknowledged every one of its alerts; anything else
on the broker side is a 503 with ``Retry-After``, within the producer's deadline.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import ValidationError

from responder.clock import UtcClock, utc_now
from responder.errors import TemporaryError
from responder.ingest.auth import authorized
from responder.ingest.metrics import IngestMetrics
from responder.ingest.publisher import AlertPublisher
from responder.models.alerts import (
    AlertmanagerWebhook,
    IncidentKeyer,
    label_incident_key,
    normalize,
)
from responder.settings import IngestSettings

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PUBLISHER: web.AppKey[AlertPublisher] = web.AppKey("publisher", AlertPublisher)
METRICS: web.AppKey[IngestMetrics] = web.AppKey("metrics", IngestMetrics)
SETTINGS: web.AppKey[IngestSettings] = web.AppKey("settings", IngestSettings)
CLOCK: web.AppKey[UtcClock] = web.AppKey("clock")
KEYER: web.AppKey[IncidentKeyer] = web.AppKey("keyer")

MAX_REPORTED_ERRORS = 10


def _error(status: int, message: str, **extra: object) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def _field(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def _invalid(error: ValidationError) -> web.Response:
    details = [
        {"field": _field(e["loc"]), "message": e["msg"]}
        for e in error.errors(include_url=False, include_input=False)[:MAX_REPORTED_ERRORS]
    ]
    first = details[0]
    return _error(
        400, f"{first['field']}: {first['message']}", field=first["field"], errors=details
    )


async def alertmanager_webhook(request: web.Request) -> web.Response:
    """``POST /v1/alertmanager``: Alertmanager webhook payload version 4."""
    settings = request.app[SETTINGS]
    metrics = request.app[METRICS]
    if not authorized(request.headers.get("Authorization"), settings):
        response = _error(401, "missing or wrong credentials")
        response.headers["WWW-Authenticate"] = 'Bearer realm="responder", Basic realm="responder"'
        return response
    if request.content_type != "application/json":
        return _error(415, f"content type must be application/json, not {request.content_type!r}")
    if request.content_length is not None and request.content_length > settings.max_body_bytes:
        return _error(413, f"body larger than {settings.max_body_bytes} bytes")
    try:
        body = await request.read()  # bounded by the app's client_max_size
    except web.HTTPRequestEntityTooLarge:
        return _error(413, f"body larger than {settings.max_body_bytes} bytes")
    try:
        webhook = AlertmanagerWebhook.model_validate_json(body)
    except ValidationError as exc:
        return _invalid(exc)

    events = normalize(webhook, received_at=request.app[CLOCK](), key=request.app[KEYER])
    messages = [(e.incident_key.encode(), e.model_dump_json().encode()) for e in events]
    bound = log.bind(
        group_key=webhook.group_key,
        alerts=len(events),
        truncated=webhook.truncated_alerts,  # alerts Alertmanager left out (max_alerts)
        status=webhook.status,
    )
    started = time.perf_counter()
    try:
        await request.app[PUBLISHER].publish(messages)
    except TemporaryError as exc:
        bound.warning("alertmanager.webhook.unavailable", error=str(exc))
        response = _error(503, f"alerts not accepted, retry later: {exc}")
        response.headers["Retry-After"] = str(max(1, round(exc.delay)))
        return response
    metrics.publish_seconds.observe(time.perf_counter() - started)
    metrics.alerts_accepted.inc(len(events))
    bound.info("alertmanager.webhook.accepted")
    return web.json_response({"accepted": len(events)})


async def healthz(request: web.Request) -> web.Response:
    """The process is alive and its loop answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when the broker answers: before that every webhook would get a 503."""
    if await request.app[PUBLISHER].ready():
        return web.json_response({"status": "ready"})
    return web.json_response({"status": "broker unreachable"}, status=503)


async def metrics_view(request: web.Request) -> web.Response:
    payload = generate_latest(request.app[METRICS].registry)
    return web.Response(body=payload, headers={"Content-Type": CONTENT_TYPE_LATEST})


@web.middleware
async def count_and_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every answer by route and status; log failures the handler did not log."""
    route = (
        request.match_info.route.resource.canonical if request.match_info.route.resource else "?"
    )
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        request.app[METRICS].requests.labels(route=route, status=str(exc.status)).inc()
        raise
    request.app[METRICS].requests.labels(route=route, status=str(response.status)).inc()
    if response.status >= 400 and response.status != 503:
        log.info("ingest.request.rejected", route=route, status=response.status)
    return response


def create_app(
    settings: IngestSettings,
    publisher: AlertPublisher,
    *,
    registry: CollectorRegistry | None = None,
    clock: UtcClock = utc_now,
    keyer: IncidentKeyer = label_incident_key,
) -> web.Application:
    """The ingest application; the caller owns the publisher's start and stop."""
    settings.require_credentials()
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[count_and_log])
    app[SETTINGS] = settings
    app[PUBLISHER] = publisher
    app[METRICS] = IngestMetrics(registry if registry is not None else CollectorRegistry())
    app[CLOCK] = clock
    app[KEYER] = keyer
    app.router.add_post("/v1/alertmanager", alertmanager_webhook)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)
    return app
