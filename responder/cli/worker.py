"""``responder worker``: the Faust worker running the triage agent (and, later, the others)."""

from __future__ import annotations

import asyncio

import click


@click.command()
@click.option("--loglevel", default="info", show_default=True, help="Faust's own log level.")
def worker(loglevel: str) -> None:
    """Run the Faust worker: consume alerts, keep the incidents table, publish transitions."""
    import faust

    from responder.kafka_admin import all_topic_names, ensure_topics
    from responder.settings import get_settings
    from streams.app import create_streams

    settings = get_settings()
    streams = create_streams(settings)
    # Every topic exists, with its partitions, before the group subscribes: a missing
    # subscribed topic is ignored until the consumer's next metadata refresh (minutes), and
    # a table written before its changelog's metadata is known fails with PartitionsMismatch.
    changelogs = [table.changelog_topic.get_topic_name() for table in streams.app.tables.values()]
    asyncio.run(
        ensure_topics(settings.kafka, all_topic_names(settings.kafka), compacted=changelogs)
    )
    faust.Worker(streams.app, loglevel=loglevel, redirect_stdouts=False).execute_from_commandline()
