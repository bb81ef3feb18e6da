"""cache.clear against the real Redis server of the test session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from responder.actions.base import ActionContext
from responder.actions.cache import LEDGER_PREFIX, CacheClear
from responder.actions.guards import Guards
from responder.actions.params import CacheClearParams
from responder.actions.retry import RetryPolicy
from responder.errors import PermanentError, TemporaryError
from responder.models.target import Target
from responder.settings import ActionsSettings
from responder_dev.stack.process import free_port

TARGET = Target(namespace="payments", name="generation-engine")
DB = 9  # a database of our own on the shared session server


@pytest.fixture
def redis_url(redis_server: Any) -> str:
    return f"{str(redis_server.url).rsplit('/', 1)[0]}/{DB}"


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    redis = aioredis.Redis.from_url(redis_url)
    await redis.flushdb()
    yield redis
    await redis.flushdb()
    await redis.aclose()


@pytest.fixture
async def action(
    redis_url: str, make_settings: Callable[..., ActionsSettings], policy: RetryPolicy
) -> AsyncIterator[CacheClear]:
    settings = make_settings(redis_urls={"default": redis_url})
    cache = CacheClear(settings, Guards.from_settings(settings), policy)
    yield cache
    await cache.close()


async def seed(client: aioredis.Redis, prefix: str, count: int) -> None:
    async with client.pipeline(transaction=False) as pipe:
        for i in range(count):
            pipe.set(f"{prefix}{i}", "x")
        await pipe.execute()


async def test_deletes_matching_keys_only_with_scan_and_unlink(
    action: CacheClear, client: aioredis.Redis, make_ctx: Callable[..., ActionContext]
) -> None:
    await seed(client, "generation:", 5000)
    await seed(client, "session:", 100)
    await client.config_resetstat()
    result = await action.run(
        make_ctx(), TARGET, CacheClearParams(pattern="generation:*", batch=250)
    )
    assert result.changed
    assert result.before == {"matching": 5000}
    assert "deleted 5000 keys" in result.detail
    stats = await client.info("commandstats")
    assert "cmdstat_scan" in stats
    assert "cmdstat_unlink" in stats
    assert "cmdstat_keys" not in stats  # never KEYS, which blocks the server
    assert "cmdstat_flushdb" not in stats
    assert await client.keys("generation:*") == []  # the test may use KEYS; the action may not
    assert len(await client.keys("session:*")) == 100


async def test_dry_run_lists_keys_and_deletes_nothing(
    action: CacheClear, client: aioredis.Redis, make_ctx: Callable[..., ActionContext]
) -> None:
    await seed(client, "generation:", 300)
    ctx = make_ctx(dry_run=True)
    result = await action.run(ctx, TARGET, CacheClearParams(pattern="generation:*"))
    assert result.dry_run
    assert not result.changed
    assert result.before == {"matching": 300}
    assert len(result.data["keys"]) == 100
    assert all(k.startswith("generation:") for k in result.data["keys"])
    assert await client.dbsize() == 300
    assert await action.reconcile(ctx, TARGET, ctx.key) is False


async def test_repeat_with_same_key_is_a_no_op_reporting_the_first_result(
    action: CacheClear, client: aioredis.Redis, make_ctx: Callable[..., ActionContext]
) -> None:
    await seed(client, "generation:", 50)
    ctx = make_ctx()
    first = await action.run(ctx, TARGET, CacheClearParams(pattern="generation:*"))
    assert await action.reconcile(ctx, TARGET, ctx.key) is True
    assert await client.exists(LEDGER_PREFIX + ctx.key)
    await seed(client, "generation:", 7)  # written after the clear: a repeat must not touch them
    again = await action.run(ctx, TARGET, CacheClearParams(pattern="generation:*"))
    assert not again.changed
    assert again.repeat_of is not None
    assert again.repeat_of.detail == first.detail
    assert len(await client.keys("generation:*")) == 7
    next_attempt = make_ctx(incident_id=ctx.incident_id, attempt=2)
    assert await action.reconcile(next_attempt, TARGET, next_attempt.key) is False
    third = await action.run(next_attempt, TARGET, CacheClearParams(pattern="generation:*"))
    assert third.before == {"matching": 7}


async def test_flushdb_only_with_all_true(
    action: CacheClear, client: aioredis.Redis, make_ctx: Callable[..., ActionContext]
) -> None:
    await seed(client, "anything:", 20)
    for pattern in ["*", "**", "?*"]:
        with pytest.raises(PermanentError, match="all: true"):
            await action.run(make_ctx(), TARGET, CacheClearParams(pattern=pattern))
    assert await client.dbsize() == 20
    dry = await action.run(make_ctx(dry_run=True), TARGET, CacheClearParams(all=True))
    assert dry.detail == "would flush the whole database (20 keys)"
    assert await client.dbsize() == 20
    result = await action.run(make_ctx(), TARGET, CacheClearParams(all=True))
    assert result.before == {"keys": 20}
    # FLUSHDB ASYNC: the keyspace is empty at once (memory is freed in the background),
    # and only the ledger entry of this run is left.
    assert await client.keys("anything:*") == []


async def test_disallowed_namespace_touches_nothing(
    action: CacheClear, client: aioredis.Redis, make_ctx: Callable[..., ActionContext]
) -> None:
    await seed(client, "generation:", 5)
    with pytest.raises(PermanentError, match="allowed_namespaces"):
        await action.run(
            make_ctx(),
            Target(namespace="kube-system", name="x"),
            CacheClearParams(pattern="generation:*"),
        )
    assert await client.dbsize() == 5


async def test_redis_down_is_temporary(
    make_settings: Callable[..., ActionsSettings],
    policy: RetryPolicy,
    make_ctx: Callable[..., ActionContext],
) -> None:
    settings = make_settings(
        redis_urls={"default": f"redis://127.0.0.1:{free_port()}/0"}, call_timeout_s=1.0
    )
    cache = CacheClear(settings, Guards.from_settings(settings), policy)
    try:
        with pytest.raises(TemporaryError, match="gave up after 4 tries"):
            await cache.run(make_ctx(), TARGET, CacheClearParams(pattern="generation:*"))
    finally:
        await cache.close()
