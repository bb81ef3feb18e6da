"""Creating the responder's topics before anything reads or writes them.

A topic first touched by a send is auto-created with the broker's default partition
count, and a consumer group subscribed to a missing topic ignores it until its next
metadata refresh (minutes). So each process creates what it needs, with the configured
partitions, before it starts: the worker all of them (``responder.models.topics.TOPICS``
and its tables' changelogs, compacted), ingest the ones it writes.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from responder.models.topics import TOPICS, topic_name
from responder.settings import KafkaSettings

TOPIC_ALREADY_EXISTS = 36
"""Kafka's error code for a create of a topic that is there: success, for us."""


def all_topic_names(settings: KafkaSettings) -> list[str]:
    """The full names of every topic of this deployment (``responder.alerts``, ...)."""
    return [topic_name(settings.topic_prefix, name) for name in TOPICS]


async def ensure_topics(
    settings: KafkaSettings, topics: Iterable[str], *, compacted: Iterable[str] = ()
) -> None:
    """Create the topics (full names) with the configured partitions unless they exist;
    ``compacted`` ones (table changelogs) with ``cleanup.policy=compact``."""
    compact = set(compacted)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap,
        request_timeout_ms=int(settings.request_timeout_s * 1000),
    )
    await admin.start()
    try:
        response = await admin.create_topics(
            [
                NewTopic(
                    topic,
                    num_partitions=settings.partitions,
                    replication_factor=settings.replication_factor,
                    topic_configs={"cleanup.policy": "compact"} if topic in compact else {},
                )
                for topic in [*topics, *sorted(compact)]
            ]
        )
    finally:
        await admin.close()
    for topic, code, *_ in response.topic_errors:
        if code not in (0, TOPIC_ALREADY_EXISTS):
            raise KafkaError(f"creating topic {topic} failed with error code {code}")
