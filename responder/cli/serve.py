"""``responder serve``: the ingest HTTP service, wired to the Kafka producer."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from aiohttp import web


@click.command()
def serve() -> None:
    """Receive Alertmanager webhooks and publish their alerts to Kafka."""
    # Imported here, not at the top: aiohttp and the ingest wiring (Slack, PagerDuty, the
    # actions registry) would otherwise slow every other `responder` command's start-up.
    import structlog
    from aiohttp import web

    from responder.ingest.app import create_app
    from responder.ingest.keys import load_store, runbook_keyer, watching
    from responder.ingest.publisher import KafkaPublisher
    from responder.ingest.wiring import build_chatops
    from responder.models.topics import ALERTS, topic_name
    from responder.settings import get_settings

    log = structlog.get_logger(__name__)
    settings = get_settings()
    publisher = KafkaPublisher(
        settings.kafka,
        topic_name(settings.kafka.topic_prefix, ALERTS),
        retry_after_s=settings.ingest.retry_after_s,
    )
    store = load_store(settings.remediation.runbooks_dir)
    app = create_app(settings.ingest, publisher, keyer=runbook_keyer(store))
    app.cleanup_ctx.append(functools.partial(watching, store))

    async def producer_lifetime(_: web.Application) -> AsyncIterator[None]:
        await publisher.start()
        yield
        await publisher.stop()

    app.cleanup_ctx.append(producer_lifetime)
    chatops = build_chatops(settings)  # Slack and PagerDuty in, when their secrets are set
    if chatops is not None:
        chatops.mount(app)
    log.info("ingest.starting", host=settings.ingest.host, port=settings.ingest.port)
    web.run_app(
        app, host=settings.ingest.host, port=settings.ingest.port, print=None, access_log=None
    )
