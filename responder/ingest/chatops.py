"""The ChatOps edge: Slack's slash command and buttons, PagerDuty's webhooks, onto commands.

Three routes, each verifying its caller before reading a word of the body:
``POST /v1/slack/commands``, ``POST /v1/slack/interactions`` (Slack v0 signatures,
5-minute window, replays refused, Slack's retries treated as duplicates) and
``POST /v1/pagerduty`` (v3 ``X-PagerDuty-Signature``, ``X-Webhook-Id`` deduplicated).
Slack wants an answer within 3 s and PagerDuty within 5 s, so the work is not done
here: a validated, authorized ``Command`` goes to the ``CommandSink`` (the
``responder.commands`` producer once wired) and the person hears back on
``response_url``. Read-only ``list``/``show`` answer inline from the
``IncidentReader`` when it is quick, on ``response_url`` when it is not. Every
refusal is answered and recorded on the ``AuditSink``.

Wiring (ingest app)::

    chatops = ChatOps(sink=producer_sink, reader=incident_reader, audit=audit_sink,
                      slack=settings.slack, pagerduty=settings.pagerduty,
                      slack_client=build_web_client(settings.slack),  # for user-group lookups
                      known_actions=ACTIONS.keys())
    app.add_routes(chatops.routes())          # only the routes whose secrets are configured
    app.on_cleanup.append(lambda _: chatops.close())
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Collection, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from aiohttp import web
from pydantic import ValidationError
from slack_sdk.web.async_client import AsyncWebClient

from responder.clock import Clock, SystemClock
from responder.errors import PermanentError, TemporaryError
from responder.integrations.base import AuditOutcome, AuditSink, InboundAudit
from responder.integrations.pagerduty.webhooks import (
    SIGNATURE_HEADER,
    WEBHOOK_ID_HEADER,
    WebhookDisposition,
    parse_webhook,
    verify_signature,
)
from responder.integrations.seen import SeenCache
from responder.integrations.slack.authz import (
    Authorizer,
    Decision,
    SlackUserGroupDirectory,
    UserGroupDirectory,
)
from responder.integrations.slack.blocks import summary_detail, summary_line
from responder.integrations.slack.inbound import (
    USAGE,
    CommandDraft,
    ParseFailure,
    ReadRequest,
    ReadVerb,
    SlackRequestVerifier,
    SlashCommandForm,
    Verdict,
    button_draft,
    parse_command_text,
    parse_form,
    parse_interaction,
)
from responder.integrations.slack.reply import ResponseUrlReplier
from responder.models.commands import Actor, Command, CommandKind, CommandSource
from responder.models.notifications import IncidentSummary
from responder.settings import PagerDutySettings, SlackSettings

log = structlog.get_logger(__name__)

SLACK_MAX_BODY = 64 * 1024
"""Slash commands and button payloads are a few KB; anything bigger is not from Slack."""
PAGERDUTY_MAX_BODY = 1024 * 1024
LIST_LIMIT = 20


class CommandSink(Protocol):
    """Where accepted commands go: the ``responder.commands`` producer (acks=all) once wired."""

    async def publish(self, command: Command) -> None:
        """Return once the command is durably queued; raise if it is not."""
        ...


class IncidentReader(Protocol):
    """Read-only view of the incidents, for ``list``/``show`` and for per-runbook authorization."""

    async def list_open(self, limit: int) -> Sequence[IncidentSummary]: ...

    async def get(self, incident_id: str) -> IncidentSummary | None: ...


def _ephemeral(text: str) -> web.Response:
    return web.json_response({"response_type": "ephemeral", "text": text})


class ChatOps:
    """The three inbound routes and the background replies they start."""

    def __init__(
        self,
        *,
        sink: CommandSink,
        reader: IncidentReader,
        audit: AuditSink,
        slack: SlackSettings,
        pagerduty: PagerDutySettings,
        clock: Clock | None = None,
        slack_client: AsyncWebClient | None = None,
        directory: UserGroupDirectory | None = None,
        known_actions: Collection[str] | None = None,
    ) -> None:
        self._sink = sink
        self._known_actions = frozenset(known_actions) if known_actions is not None else None
        self._reader = reader
        self._audit = audit
        self._slack = slack
        self._pagerduty = pagerduty
        self._clock = clock or SystemClock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._verifier: SlackRequestVerifier | None = None
        if slack.signing_secret is not None:
            self._verifier = SlackRequestVerifier(
                slack.signing_secret,
                clock=self._clock,
                replay_window_s=slack.replay_window_s,
                replay_cache_max=slack.replay_cache_max,
            )
        if directory is None and slack_client is not None:
            directory = SlackUserGroupDirectory(
                slack_client, ttl_s=slack.group_cache_ttl_s, clock=self._clock
            )
        self._authorizer = Authorizer(slack, directory)
        self._replier = ResponseUrlReplier(slack)
        self._webhook_ids = SeenCache(
            ttl_s=pagerduty.webhook_dedup_ttl_s,
            max_entries=pagerduty.webhook_dedup_max,
            clock=self._clock,
        )

    def routes(self) -> list[web.RouteDef]:
        """Routes for the configured integrations (Slack needs a signing secret, PagerDuty a webhook secret)."""
        routes: list[web.RouteDef] = []
        if self._verifier is not None:
            routes.append(web.post("/v1/slack/commands", self.slack_command))
            routes.append(web.post("/v1/slack/interactions", self.slack_interaction))
        if self._pagerduty.webhook_secrets:
            routes.append(web.post("/v1/pagerduty", self.pagerduty_webhook))
        return routes

    async def close(self) -> None:
        """Let in-flight response_url replies finish (bounded), then cancel the rest."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=self._slack.timeout_s)
        for task in pending:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*pending, return_exceptions=True)

    # ---- shared helpers -------------------------------------------------------------

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    async def _record(
        self,
        request: web.Request,
        channel: str,
        outcome: AuditOutcome,
        reason: str,
        **fields: Any,
    ) -> None:
        record = InboundAudit(
            at=self._now(),
            channel=channel,
            outcome=outcome,
            reason=reason[:500],
            remote=(request.remote or "")[:64] or None,
            **fields,
        )
        log.info("chatops.audit", **record.model_dump(mode="json", exclude={"at"}))
        try:
            await self._audit.emit(record)
        except Exception as exc:  # noqa: BLE001 - the answer must not depend on the audit sink
            log.error("chatops.audit_failed", error=type(exc).__name__)

    async def _read_body(self, request: web.Request, limit: int) -> bytes | None:
        if request.content_length is not None and request.content_length > limit:
            return None
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reply_later(self, url: str, text: str) -> None:
        try:
            await self._replier.reply(url, text)
        except (TemporaryError, PermanentError) as exc:
            log.warning("chatops.reply_failed", error=str(exc))

    def _reply_url(self, url: str) -> str | None:
        if url and self._replier.is_allowed(url):
            return url
        if url:
            log.warning("chatops.response_url_refused")
        return None

    @staticmethod
    def _deadline(seconds: float) -> float:
        return asyncio.get_running_loop().time() + seconds

    @staticmethod
    async def _within(awaitable: Awaitable[Any], deadline: float) -> Any:
        """Await until ``deadline`` (loop time): the steps of one request share one budget."""
        remaining = deadline - asyncio.get_running_loop().time()
        return await asyncio.wait_for(awaitable, timeout=max(remaining, 0.01))

    async def _verify_slack(
        self, request: web.Request, channel: str
    ) -> tuple[bytes | None, web.Response | None]:
        assert self._verifier is not None
        body = await self._read_body(request, SLACK_MAX_BODY)
        if body is None:
            await self._record(request, channel, AuditOutcome.INVALID, "body too large")
            return None, web.Response(status=413, text="request body too large")
        verdict = self._verifier.check(body, request.headers)
        if verdict is Verdict.RETRY:
            await self._record(request, channel, AuditOutcome.DUPLICATE, "slack retry")
            return None, web.Response(status=200)
        if verdict is not Verdict.VALID:
            await self._record(
                request, channel, AuditOutcome.REFUSED_SIGNATURE, f"signature {verdict.value}"
            )
            return None, web.Response(status=401, text="invalid request signature")
        return body, None

    async def _authorize(
        self, user_id: str, draft: CommandDraft, deadline: float
    ) -> tuple[Decision, IncidentSummary | None]:
        incident: IncidentSummary | None = None
        if draft.incident_id is not None:
            try:
                incident = await self._within(self._reader.get(draft.incident_id), deadline)
            except Exception as exc:  # noqa: BLE001 - fail closed with an answer, never a 500
                log.warning("chatops.reader_unavailable", error=type(exc).__name__)
                return Decision(
                    allowed=False, reason="incident store is unavailable; try again"
                ), None
            if incident is None:
                return Decision(allowed=False, reason=f"no incident {draft.incident_id}"), None
        runbook = incident.runbook_id if incident is not None else None
        try:
            decision: Decision = await self._within(
                self._authorizer.may_mutate(user_id, runbook), deadline
            )
        except TimeoutError:
            decision = Decision(allowed=False, reason="authorization check timed out; try again")
        return decision, incident

    async def _publish(self, command: Command, deadline: float) -> str | None:
        """None on success, else a sentence for the person."""
        try:
            await self._within(self._sink.publish(command), deadline)
        except TimeoutError:
            log.error("chatops.publish_timeout", incident_id=command.incident_id)
            return "the command queue did not confirm in time; check with `show` before retrying"
        except Exception as exc:  # noqa: BLE001 - any sink failure becomes an answer, not a 500
            log.error(
                "chatops.publish_failed", incident_id=command.incident_id, error=type(exc).__name__
            )
            return "the command could not be queued; try again"
        return None

    # ---- Slack slash command --------------------------------------------------------

    async def slack_command(self, request: web.Request) -> web.StreamResponse:
        channel = "slack_command"
        body, refusal = await self._verify_slack(request, channel)
        if refusal is not None:
            return refusal
        assert body is not None
        try:
            fields = parse_form(body)
            if fields.get("ssl_check") == "1":
                return web.Response(status=200)  # Slack checking our certificate: nothing to do
            form = SlashCommandForm.model_validate(fields)
        except (ValueError, ValidationError):
            await self._record(request, channel, AuditOutcome.INVALID, "not a slash command form")
            return web.Response(status=400, text="not a slash command")
        parsed = parse_command_text(form.text, known_actions=self._known_actions)
        typed = form.text[:300]
        if isinstance(parsed, ParseFailure):
            await self._record(
                request,
                channel,
                AuditOutcome.INVALID,
                parsed.message,
                actor_id=form.user_id,
                command=typed,
            )
            return _ephemeral(f":warning: {parsed.message}\n{USAGE}")
        budget = self._slack.inline_reply_budget_s
        if isinstance(parsed, ReadRequest):
            return await self._read(parsed, form, budget)
        # Authorization may take half the budget; queueing gets what is left of the whole.
        decision, _ = await self._authorize(form.user_id, parsed, self._deadline(budget / 2))
        publish_by = self._deadline(budget / 2)
        if not decision.allowed:
            await self._record(
                request,
                channel,
                AuditOutcome.REFUSED_AUTHORIZATION,
                decision.reason,
                actor_id=form.user_id,
                command=typed,
                incident_id=parsed.incident_id,
            )
            return _ephemeral(f":no_entry: Refused: {decision.reason}.")
        command = parsed.to_command(
            actor=Actor(id=form.user_id, name=form.user_name),
            source=CommandSource.SLACK_COMMAND,
            idempotency_key=f"slack:{form.team_id}:{form.trigger_id or request.headers.get('X-Slack-Signature', '')}"[
                :200
            ],
            issued_at=self._now(),
            reply_to=self._reply_url(form.response_url),
        )
        problem = await self._publish(command, publish_by)
        if problem is not None:
            return _ephemeral(f":warning: {problem}.")
        await self._record(
            request,
            channel,
            AuditOutcome.ACCEPTED,
            command.kind.value,
            actor_id=form.user_id,
            command=typed,
            incident_id=command.incident_id,
        )
        mode = " (dry run)" if command.kind is CommandKind.RUN and not command.apply else ""
        return _ephemeral(f":inbox_tray: `{command.kind.value}` accepted{mode}; I'll report here.")

    async def _read(
        self, request: ReadRequest, form: SlashCommandForm, budget: float
    ) -> web.Response:
        if request.verb is ReadVerb.HELP:
            return _ephemeral(USAGE)
        lookup = asyncio.ensure_future(self._read_text(request))
        try:
            return _ephemeral(await asyncio.wait_for(asyncio.shield(lookup), timeout=budget))
        except TimeoutError:
            url = self._reply_url(form.response_url)
            if url is None:
                lookup.cancel()
                return _ephemeral(":hourglass: The incident store is slow; try again.")

            async def later() -> None:
                try:
                    text = await asyncio.wait_for(lookup, timeout=self._slack.timeout_s)
                except TimeoutError:
                    text = ":hourglass: The incident store did not answer; try again."
                await self._reply_later(url, text)

            self._spawn(later())
            return _ephemeral(":hourglass: Looking it up; the answer will appear here.")

    async def _read_text(self, request: ReadRequest) -> str:
        try:
            return await self._read_text_unguarded(request)
        except Exception as exc:  # noqa: BLE001 - the person gets a sentence, the log the type
            log.warning("chatops.reader_failed", error=type(exc).__name__)
            return ":warning: Could not read the incidents just now; try again."

    async def _read_text_unguarded(self, request: ReadRequest) -> str:
        if request.verb is ReadVerb.LIST:
            incidents = await self._reader.list_open(LIST_LIMIT)
            if not incidents:
                return ":sunny: No open incidents."
            return "\n".join(summary_line(s) for s in incidents)
        assert request.incident_id is not None
        incident = await self._reader.get(request.incident_id)
        if incident is None:
            return f"No incident `{request.incident_id}`."
        return summary_detail(incident)

    # ---- Slack buttons ----------------------------------------------------------------

    async def slack_interaction(self, request: web.Request) -> web.StreamResponse:
        channel = "slack_interaction"
        body, refusal = await self._verify_slack(request, channel)
        if refusal is not None:
            return refusal
        assert body is not None
        try:
            payload = parse_interaction(parse_form(body))
        except ValueError:
            payload = ParseFailure(message="not a form body")
        if isinstance(payload, ParseFailure):
            await self._record(request, channel, AuditOutcome.INVALID, payload.message)
            return web.Response(status=400, text="not a block_actions interaction")
        user = payload.user
        url = self._reply_url(payload.response_url)
        action = payload.actions[0]
        draft = button_draft(action)
        if isinstance(draft, ParseFailure):
            await self._record(
                request,
                channel,
                AuditOutcome.INVALID,
                draft.message,
                actor_id=user.id,
                command=action.action_id,
            )
            return web.Response(status=200)
        budget = self._slack.inline_reply_budget_s
        decision, _ = await self._authorize(user.id, draft, self._deadline(budget / 2))
        publish_by = self._deadline(budget / 2)
        if not decision.allowed:
            await self._record(
                request,
                channel,
                AuditOutcome.REFUSED_AUTHORIZATION,
                decision.reason,
                actor_id=user.id,
                command=action.action_id,
                incident_id=draft.incident_id,
            )
            if url is not None:
                self._spawn(self._reply_later(url, f":no_entry: Refused: {decision.reason}."))
            return web.Response(status=200)
        command = draft.to_command(
            actor=Actor(id=user.id, name=user.name or user.username),
            source=CommandSource.SLACK_BUTTON,
            idempotency_key=f"slack:{payload.trigger_id or action.action_ts or request.headers.get('X-Slack-Signature', '')}"[
                :200
            ],
            issued_at=self._now(),
            reply_to=url,
        )
        problem = await self._publish(command, publish_by)
        if problem is not None:
            if url is not None:
                self._spawn(self._reply_later(url, f":warning: {problem}."))
            return web.Response(status=200)
        await self._record(
            request,
            channel,
            AuditOutcome.ACCEPTED,
            command.kind.value,
            actor_id=user.id,
            command=action.action_id,
            incident_id=command.incident_id,
        )
        return web.Response(status=200)

    # ---- PagerDuty webhooks v3 --------------------------------------------------------

    async def pagerduty_webhook(self, request: web.Request) -> web.StreamResponse:
        channel = "pagerduty"
        body = await self._read_body(request, PAGERDUTY_MAX_BODY)
        if body is None:
            await self._record(request, channel, AuditOutcome.INVALID, "body too large")
            return web.Response(status=413, text="request body too large")
        if not verify_signature(
            body, request.headers.get(SIGNATURE_HEADER), self._pagerduty.webhook_secrets
        ):
            reason = "unsigned" if SIGNATURE_HEADER not in request.headers else "bad signature"
            await self._record(request, channel, AuditOutcome.REFUSED_SIGNATURE, reason)
            return web.Response(status=401, text="invalid signature")
        # X-Webhook-Id names one delivery; PagerDuty keeps it across its retries.
        webhook_id = request.headers.get(WEBHOOK_ID_HEADER, "")[:128]
        if webhook_id and webhook_id in self._webhook_ids:
            await self._record(request, channel, AuditOutcome.DUPLICATE, f"webhook {webhook_id}")
            return web.Response(status=200)
        result = parse_webhook(
            body, accepted_agent_types=self._pagerduty.webhook_agent_types, now=self._now()
        )
        if result.disposition is WebhookDisposition.INVALID:
            await self._record(request, channel, AuditOutcome.INVALID, result.reason)
            return web.Response(status=400, text="not a v3 webhook")
        command = result.command
        publish_by = self._deadline(self._pagerduty.publish_timeout_s)
        if result.disposition is WebhookDisposition.COMMAND and command is not None:
            lookup_by = self._deadline(self._pagerduty.publish_timeout_s / 3)
            try:
                ours = await self._within(self._reader.get(result.incident_id or ""), lookup_by)
            except Exception as exc:  # noqa: BLE001 - cannot tell: the engine ignores unknown incidents
                log.warning("chatops.reader_unavailable", error=type(exc).__name__)
                ours = True
            if ours is None:
                command = None
                result = result.model_copy(update={"reason": "not one of our incidents"})
        if command is None:
            if webhook_id:
                self._webhook_ids.add(webhook_id)
            await self._record(
                request,
                channel,
                AuditOutcome.IGNORED,
                result.reason,
                incident_id=result.incident_id,
            )
            return web.Response(status=200)
        problem = await self._publish(command, publish_by)
        if problem is not None:
            # Not remembered as seen: PagerDuty retries on 5xx, and the retry gets another go.
            return web.Response(status=503, headers={"Retry-After": "5"}, text="try again")
        if webhook_id:
            self._webhook_ids.add(webhook_id)
        await self._record(
            request,
            channel,
            AuditOutcome.ACCEPTED,
            command.kind.value,
            actor_id=command.actor.id,
            incident_id=command.incident_id,
        )
        return web.Response(status=200)
