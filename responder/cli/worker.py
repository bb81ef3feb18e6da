"""``responder worker``: the Faust worker running the triage agent (and, later, the others)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from responder.settings import Settings
    from streams.context import ResponderStreams


def ensure_worker_topics(streams: ResponderStreams, settings: Settings) -> None:
    """Create every topic the worker uses, table changelogs included, with their partitions.

    Before the group subscribes: a missing subscribed topic is ignored until the consumer's
    next metadata refresh (minutes), and a changelog the broker auto-creates (a metadata
    request racing Faust's own declaration) gets the broker's default partition count, so a
    table write to a higher partition never completes. Every worker process, the test and
    bench workers too, starts through here.
    """
    from responder.kafka_admin import all_topic_names, ensure_topics

    changelogs = [table.changelog_topic.get_topic_name() for table in streams.app.tables.values()]
    asyncio.run(
        ensure_topics(settings.kafka, all_topic_names(settings.kafka), compacted=changelogs)
    )


@click.command()
@click.option("--loglevel", default="info", show_default=True, help="Faust's own log level.")
def worker(loglevel: str) -> None:
    """Run the Faust worker: consume alerts, keep the incidents table, publish transitions."""
    from responder.errors import ConfigError
    from responder.settings import get_settings
    from streams.app import create_streams, faust_worker

    settings = get_settings()
    streams = create_streams(settings)
    try:
        # Before the broker: a worker whose runbooks need a service it has no settings for
        # stops here with one message, rather than failing every step at run time.
        streams.check_startup()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    ensure_worker_topics(streams, settings)
    faust_worker(streams, loglevel).execute_from_commandline()
