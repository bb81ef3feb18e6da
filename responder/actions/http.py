"""``http.request``, and the one HTTP client every HTTP-speaking action shares.

Outbound HTTP is where a remediation tool becomes an SSRF tool, so the URL is
never taken from a runbook or a label: a runbook names an allow-listed base
(``actions.http_base_urls``) and a path checked at load and again here; header
values come from named secrets in the settings and are never logged or
returned. Each call has a timeout; 429/5xx/transport errors are retried with
jittered backoff, other unexpected statuses are permanent. The request carries
``Idempotency-Key: <incident>/<step>/<attempt>`` so a service that honours it
can drop a repeat; the responder cannot see that, so ``reconcile`` says "unknown".
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from responder.actions.base import ActionContext, ActionResult, dry_run_result
from responder.actions.guards import Guards
from responder.actions.params import HTTPRequestParams
from responder.actions.retry import Operation, RetryPolicy, classify_status, with_retries
from responder.errors import PermanentError
from responder.models.target import Target
from responder.settings import ActionsSettings

BODY_KEPT = 500  # characters of a response body kept in the result


class HttpClient:
    """One ``aiohttp`` session (opened on first use), one request with a timeout and a classification."""

    def __init__(self, settings: ActionsSettings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # trust_env=False: no proxy from the environment may reroute an action's request.
            self._session = aiohttp.ClientSession(trust_env=False, raise_for_status=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(
        self,
        ctx: ActionContext,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        json_body: Any = None,
        expect: frozenset[int] = frozenset({200}),
        what: str,
    ) -> tuple[int, str]:
        """Send once; raise the classified error unless the status is expected. Returns (status, body head)."""
        timeout = ctx.remaining(self._settings.call_timeout_s)
        async with self._open().request(
            method,
            url,
            headers=headers,
            json=json_body,
            timeout=aiohttp.ClientTimeout(total=timeout),
            allow_redirects=False,
        ) as response:
            text = (await response.text(errors="replace"))[:BODY_KEPT]
            if response.status in expect:
                return response.status, text
            raise classify_status(
                response.status,
                op=Operation(method, what),
                message=text[:200],
                retry_after=response.headers.get("Retry-After"),
            )


class HttpRequest:
    """A request to an allow-listed base URL, with secret headers and an expected status."""

    name = "http.request"

    def __init__(
        self, http: HttpClient, settings: ActionsSettings, guards: Guards, policy: RetryPolicy
    ) -> None:
        self._http = http
        self._settings = settings
        self._guards = guards
        self._policy = policy

    def _headers(self, ctx: ActionContext, params: HTTPRequestParams) -> dict[str, str]:
        headers = {"Idempotency-Key": ctx.key}
        for header, ref in params.headers.items():
            secret = self._settings.http_secrets.get(ref.secret)
            if secret is None:
                raise PermanentError(
                    f"http.request: no secret named {ref.secret!r} in actions.http_secrets"
                )
            headers[header] = secret.get_secret_value()
        return headers

    async def run(
        self, ctx: ActionContext, target: Target, params: HTTPRequestParams
    ) -> ActionResult:
        started = ctx.clock.monotonic()
        self._guards.check_target(target)
        url = self._guards.url_for(params.base, params.path)
        headers = self._headers(ctx, params)
        shown_headers = {h: ("<secret>" if h in params.headers else v) for h, v in headers.items()}
        request: dict[str, Any] = {
            "method": params.method,
            "url": url,
            "headers": shown_headers,
            "body": params.body,
        }
        if ctx.dry_run:
            return dry_run_result(
                self.name,
                target,
                ctx,
                started,
                detail=f"would send {params.method} {url}",
                data={"request": request},
            )
        tries = 0

        async def once() -> tuple[int, str]:
            nonlocal tries
            tries += 1
            return await self._http.send(
                ctx,
                params.method,
                url,
                headers=headers,
                json_body=params.body,
                expect=frozenset(params.expect_status),
                what=url,
            )

        status, body = await with_retries(ctx, once, policy=self._policy, what=f"{self.name} {url}")
        ctx.logger.info(
            "action.done", action=self.name, target=str(target), status=status, tries=tries
        )
        return ActionResult(
            action=self.name,
            target=str(target),
            key=ctx.key,
            changed=True,
            after={"status": status},
            detail=f"{params.method} {url} answered {status} after {tries} tries",
            data={"request": request, "status": status, "body": body, "tries": tries},
            duration_s=ctx.clock.monotonic() - started,
        )

    async def reconcile(self, ctx: ActionContext, target: Target, key: str) -> bool | None:
        return None


async def gather_limited(limit: int, calls: list[Any]) -> list[Any]:
    """Await coroutines with at most ``limit`` in flight; exceptions are returned, not raised."""
    gate = asyncio.Semaphore(limit)

    async def one(call: Any) -> Any:
        async with gate:
            return await call

    return await asyncio.gather(*(one(c) for c in calls), return_exceptions=True)
