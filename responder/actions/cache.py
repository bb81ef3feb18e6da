"""``cache.clear``: delete keys matching a pattern from Redis without ever blocking it.

SCAN walks the keyspace a batch at a time and UNLINK frees each batch's memory
in a background thread, so Redis keeps answering other clients throughout;
KEYS (which blocks the server for the whole keyspace) is never used. FLUSHDB
(async) only runs when the runbook explicitly says ``all: true``.
Idempotency: the result of a finished clear is stored in Redis itself under
``responder:last-action:<key>``, so a repeat returns it and ``reconcile``
can tell whether it finished.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import redis.asyncio as aioredis

from responder.actions.base import ActionContext, ActionResult, repeat_result
from responder.actions.guards import Guards
from responder.actions.params import CacheClearParams
from responder.actions.retry import RetryPolicy, with_retries
from responder.errors import PermanentError
from responder.models.target import Target
from responder.settings import ActionsSettings

LEDGER_PREFIX = "responder:last-action:"
LEDGER_TTL_S = 7 * 24 * 3600  # a week: longer than any incident stays open
DRY_RUN_KEYS_SHOWN = 100


def _only_wildcards(pattern: str) -> bool:
    return pattern.strip("*?") == ""


class CacheClear:
    """Delete the keys matching ``pattern`` (or the whole DB with ``all: true``)."""

    name = "cache.clear"

    def __init__(self, settings: ActionsSettings, guards: Guards, policy: RetryPolicy) -> None:
        self._settings = settings
        self._guards = guards
        self._policy = policy
        self._clients: dict[str, aioredis.Redis] = {}

    def _client(self, instance: str) -> aioredis.Redis:
        url = self._settings.redis_urls.get(instance)
        if url is None:
            raise PermanentError(f"cache.clear: no Redis named {instance!r} in actions.redis_urls")
        client = self._clients.get(instance)
        if client is None:
            timeout = self._settings.call_timeout_s
            client = aioredis.Redis.from_url(
                url, socket_timeout=timeout, socket_connect_timeout=timeout
            )
            self._clients[instance] = client
        return client

    async def close(self) -> None:
        """Close the Redis connection pools."""
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    async def run(
        self, ctx: ActionContext, target: Target, params: CacheClearParams
    ) -> ActionResult:
        started = ctx.clock.monotonic()
        self._guards.check_target(target)
        if not params.all and (params.pattern is None or _only_wildcards(params.pattern)):
            raise PermanentError(
                "cache.clear: a pattern of only wildcards clears everything; say all: true for that"
            )
        client = self._client(target.name if target.kind == "redis" else "default")
        ledger_key = LEDGER_PREFIX + ctx.key
        if not ctx.dry_run:
            earlier = await self._call(ctx, lambda: client.get(ledger_key), "read ledger")
            if earlier is not None:
                return repeat_result(json.loads(earlier), ctx, started)
        if params.all:
            result = await self._flush(ctx, target, client)
        else:
            assert params.pattern is not None
            result = await self._scan_unlink(ctx, target, client, params.pattern, params.batch)
        result.duration_s = ctx.clock.monotonic() - started
        if not ctx.dry_run:
            summary = json.dumps(result.summary())
            await self._call(
                ctx, lambda: client.set(ledger_key, summary, ex=LEDGER_TTL_S), "write ledger"
            )
        ctx.logger.info("action.done", action=self.name, target=str(target), changed=result.changed)
        return result

    async def reconcile(self, ctx: ActionContext, target: Target, key: str) -> bool | None:
        client = self._client(target.name if target.kind == "redis" else "default")
        found = await self._call(ctx, lambda: client.exists(LEDGER_PREFIX + key), "reconcile")
        return bool(found)

    async def _call(self, ctx: ActionContext, call: Any, what: str) -> Any:
        async def once() -> Any:
            async with asyncio.timeout(ctx.remaining(self._settings.call_timeout_s)):
                return await call()

        return await with_retries(ctx, once, policy=self._policy, what=f"cache.clear {what}")

    async def _flush(
        self, ctx: ActionContext, target: Target, client: aioredis.Redis
    ) -> ActionResult:
        size = int(await self._call(ctx, client.dbsize, "DBSIZE"))
        if not ctx.dry_run:
            await self._call(ctx, lambda: client.flushdb(asynchronous=True), "FLUSHDB ASYNC")
        return ActionResult(
            action=self.name,
            target=str(target),
            key=ctx.key,
            changed=not ctx.dry_run and size > 0,
            dry_run=ctx.dry_run,
            before={"keys": size},
            after={"keys": size if ctx.dry_run else 0},
            detail=f"{'would flush' if ctx.dry_run else 'flushed'} the whole database ({size} keys)",
            data={"command": "FLUSHDB ASYNC"},
        )

    async def _scan_unlink(
        self, ctx: ActionContext, target: Target, client: aioredis.Redis, pattern: str, batch: int
    ) -> ActionResult:
        cursor = 0
        deleted = 0
        shown: list[str] = []
        while True:
            cursor, keys = await self._call(
                ctx,
                lambda c=cursor: client.scan(cursor=c, match=pattern, count=batch),
                "SCAN",
            )
            if keys:
                if ctx.dry_run:
                    deleted += len(keys)
                    room = DRY_RUN_KEYS_SHOWN - len(shown)
                    shown.extend(k.decode("utf-8", "backslashreplace") for k in keys[:room])
                else:
                    deleted += int(
                        await self._call(ctx, lambda k=keys: client.unlink(*k), "UNLINK")
                    )
            if cursor == 0:
                break
        verb = "would delete" if ctx.dry_run else "deleted"
        data: dict[str, Any] = {"pattern": pattern, "batch": batch}
        if ctx.dry_run:
            data["keys"] = shown
        return ActionResult(
            action=self.name,
            target=str(target),
            key=ctx.key,
            changed=not ctx.dry_run and deleted > 0,
            dry_run=ctx.dry_run,
            before={"matching": deleted},
            after={"matching": deleted if ctx.dry_run else 0},
            detail=f"{verb} {deleted} keys matching {pattern!r}",
            data=data,
        )
