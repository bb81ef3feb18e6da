"""``responder worker`` creates every topic and table changelog before its group subscribes.

Without that, a topic first written by a send is auto-created with the broker's default
partition count, a subscribed topic that is missing is ignored for minutes, and a table
written before its changelog exists fails with PartitionsMismatch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from e2e_support import PARTITIONS, WorkerProcess

from responder.kafka_admin import all_topic_names
from responder.settings import Settings


async def _describe(settings: Settings, deadline: float) -> dict[str, int]:
    """Partitions per topic of this test's prefix or app id, once the worker made them all."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap)
    await admin.start()
    try:
        loop = asyncio.get_running_loop()
        expected = set(all_topic_names(settings.kafka))
        while True:
            names = [
                t
                for t in await admin.list_topics()
                if t.startswith((settings.kafka.topic_prefix, settings.worker.app_id))
            ]
            described = await admin.describe_topics(names)
            found = {t["topic"]: len(t["partitions"]) for t in described}
            changelogs = [t for t in found if t.endswith("-changelog")]
            if (expected <= found.keys() and changelogs) or loop.time() > deadline:
                return found
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


async def _cleanup_policy(settings: Settings, topic: str) -> str:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, {"cleanup.policy": None})]
        )
    finally:
        await admin.close()
    # resources: (error_code, error_message, resource_type, name, [(config, value, ...)])
    [(_, _, _, _, entries)] = response.resources
    return str(next(value for name, value, *_ in entries if name == "cleanup.policy"))


async def test_topics_and_changelogs_exist_with_their_partitions(
    settings: Settings, start_worker: Callable[[Settings], WorkerProcess]
) -> None:
    start_worker(settings)
    found = await _describe(settings, asyncio.get_running_loop().time() + 90)
    assert set(all_topic_names(settings.kafka)) <= found.keys(), found
    changelogs = sorted(t for t in found if t.endswith("-changelog"))
    assert f"{settings.worker.app_id}-incidents-changelog" in changelogs
    ours = [*all_topic_names(settings.kafka), *changelogs]  # not Faust's 1-partition leader topic
    assert {topic: found[topic] for topic in ours} == dict.fromkeys(ours, PARTITIONS)
    for changelog in changelogs:
        assert await _cleanup_policy(settings, changelog) == "compact"
