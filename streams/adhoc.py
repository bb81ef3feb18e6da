"""The ``adhoc-commands`` agent: ``/responder run`` and ``/responder silence`` carried out.

Ingest parses, verifies and authorizes these commands and publishes them on
``responder.commands``; the remediation command router ignores them (they name no
incident). This agent does their work and tells the person what came of it:

- ``run ACTION NAMESPACE/NAME [key=value…] [--apply]``: the action name is checked against
  the worker's catalogue (the same ``ActionProvider`` the remediation engine runs its
  steps with), the parameters against the action's own model (``ACTION_PARAMS``), the
  target as RFC 1123 names (the actions' guards then enforce the namespace allow-list).
  It runs dry unless ``--apply`` was given, with a timeout, under an idempotency key
  derived from the command's: a redelivered command reaches the action's own ledger
  (the Kubernetes annotation, the Redis ledger key) and changes nothing twice.
- ``silence MATCHERS DURATION``: an Alertmanager silence through API v2; the silence's
  comment carries a reference derived from the command's key, so a redelivered command
  finds the silence it made instead of making another.

Each outcome is audited on ``responder.audit`` and answered on the command's
``response_url`` through ``responder.command-replies`` (the engine's ``ReplyToCommand``,
posted by the notify worker's ``command-replies`` agent). Concurrency 1: commands of a
partition run in order, and faust-streaming issue 606 makes higher concurrency unsafe.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog
from pydantic import ValidationError

from responder.actions.base import ActionResult
from responder.actions.params import ACTION_PARAMS
from responder.actions.runner import ActionProvider, ActionRequest, ActionRun, ActionRunner
from responder.actions.runner import Outcome as RunOutcome
from responder.engine.records import ReplyToCommand
from responder.errors import PermanentError, ResponderError, TemporaryError
from responder.integrations.alertmanager.silences import (
    AlertmanagerSilences,
    MatcherError,
    SilenceRequest,
    check_matchers,
    silence_ref,
)
from responder.models.commands import Command, CommandKind
from responder.models.incidents import AuditEvent
from responder.models.topics import COMMANDS, REPLIES
from responder.settings import AdhocSettings, Settings
from streams.context import ResponderStreams

log = structlog.get_logger(__name__)

KEYS_SHOWN = 20
"""Keys listed in a reply; the count says how many more there were."""


class Silences(Protocol):
    async def find(self, ref: str) -> str | None: ...

    async def create(self, request: SilenceRequest) -> str: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """What came of one command: the audit record's kind and data, and the person's answer."""

    ok: bool
    kind: str
    reply: str
    data: dict[str, Any] = field(default_factory=dict)


def adhoc_id(idempotency_key: str) -> str:
    """The incident-like id an ad-hoc run acts under; its action key is ``<id>/0/1``."""
    return "adhoc-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:20]


def slack_text(text: str, limit: int = 200) -> str:
    """Untrusted text (Redis keys, error messages) made safe to show inside backticks."""
    cleaned = "".join(c if c.isprintable() else "?" for c in text[:limit]).replace("`", "'")
    return cleaned.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def describe_run(result: ActionResult, *, apply: bool) -> str:
    """What changed (or would change), in a few lines for Slack."""
    where = f"`{result.action}` on `{slack_text(result.target)}`"
    if result.repeat_of is not None:
        head = f":information_source: Already done: {where}"
    elif apply:
        head = f":white_check_mark: Done: {where}"
    else:
        head = f":mag: Dry run of {where}"
    lines = [f"{head}: {slack_text(result.detail, 500)}"]
    keys = result.data.get("keys")
    if isinstance(keys, list) and keys:
        shown = ", ".join(f"`{slack_text(str(k), 120)}`" for k in keys[:KEYS_SHOWN])
        more = result.before.get("matching") if isinstance(result.before, dict) else None
        extra = (more if isinstance(more, int) else len(keys)) - min(len(keys), KEYS_SHOWN)
        lines.append(f"Keys: {shown}" + (f" …and {extra} more" if extra > 0 else ""))
    for name in ("patch", "body"):
        if name in result.data:
            text = json.dumps(result.data[name], separators=(",", ":"), default=str)
            lines.append(f"{name.capitalize()}: `{slack_text(text, 1500)}`")
    if result.before is not None or result.after is not None:
        before = json.dumps(result.before, default=str)
        after = json.dumps(result.after, default=str)
        lines.append(f"Before: `{slack_text(before, 300)}` after: `{slack_text(after, 300)}`")
    if not apply:
        lines.append("Nothing was changed; add `--apply` to do it.")
    return "\n".join(lines)


def _errors(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'params'}: {e['msg']}" for e in exc.errors()
    )


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass
class AdhocExecutor:
    """Carries out ``run`` and ``silence`` commands; never raises for a command's own faults."""

    actions: ActionProvider
    silences: Silences
    settings: AdhocSettings
    now: Callable[[], datetime]
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    attempts: int = 3

    async def handle(self, command: Command) -> Outcome | None:
        """The outcome of a run or silence command; None for every other kind."""
        if command.kind is CommandKind.RUN:
            return await self.run(command)
        if command.kind is CommandKind.SILENCE:
            return await self.silence(command)
        return None

    # --- run ---------------------------------------------------------------------------------

    async def run(self, command: Command) -> Outcome:
        assert command.action is not None  # the model checks both
        assert command.target is not None
        name, apply = command.action, command.apply
        data: dict[str, Any] = {
            "action": name,
            "target": command.target,
            "params": dict(command.params),
            "apply": apply,
            "actor": command.actor.id,
            "idempotency_key": command.idempotency_key,
        }
        namespace, _, object_name = command.target.partition("/")
        request = ActionRequest(
            action=name,
            params=dict(command.params),
            namespace=namespace,
            name=object_name,
            incident_id=adhoc_id(command.idempotency_key),
            dry_run=not apply,
            timeout_s=self.settings.run_timeout_s,
        )
        run = await ActionRunner(self.actions, logger=log).run(request)
        if run.refused:
            return await self._refused(run, name, data)
        return self._outcome(command, run, data | {"key": run.key, "dry_run": not apply})

    async def _refused(self, run: ActionRun, name: str, data: dict[str, Any]) -> Outcome:
        if run.outcome is RunOutcome.UNKNOWN_ACTION:
            table = await self.actions()
            known = ", ".join(f"`{n}`" for n in sorted(set(table) & set(ACTION_PARAMS)))
            return Outcome(
                False,
                "adhoc.run_refused",
                f":x: Unknown action `{slack_text(name, 64)}`. Known actions: {known}.",
                data | {"reason": "unknown action"},
            )
        assert isinstance(run.error, ValidationError)
        if run.outcome is RunOutcome.INVALID_PARAMS:
            problems = slack_text(_errors(run.error), 800)
            reply = f":x: Bad parameters for `{name}`: {problems}"
        else:
            problems = slack_text(_errors(run.error), 500)
            reply = f":x: Bad target: {problems}"
        return Outcome(False, "adhoc.run_refused", reply, data | {"reason": problems})

    def _outcome(self, command: Command, run: ActionRun, data: dict[str, Any]) -> Outcome:
        what = f"`{command.action}` on `{run.target}`"
        if run.outcome is RunOutcome.TIMED_OUT:
            reply = (
                f":hourglass: {what} timed out after {run.timeout_s:.0f}s; it may have partly run."
            )
            return Outcome(False, "adhoc.run_failed", reply, data | {"error": "timeout"})
        if run.outcome is RunOutcome.FAILED:
            reply = f":x: {what} failed: {slack_text(str(run.error), 800)}"
            return Outcome(False, "adhoc.run_failed", reply, data | {"error": run.detail[:1000]})
        if (
            run.result is None
        ):  # crashed: an action bug must not stop the agent; the person hears it
            reply = f":x: {what} failed unexpectedly ({type(run.error).__name__})."
            error = repr(run.error)[:1000]
            return Outcome(False, "adhoc.run_failed", reply, data | {"error": error})
        result = run.result
        log.info("adhoc.run_done", action=command.action, key=run.key, changed=result.changed)
        return Outcome(
            True,
            "adhoc.run",
            describe_run(result, apply=command.apply),
            data | {"result": result.model_dump(mode="json", exclude={"data"})},
        )

    # --- silence ---------------------------------------------------------------------------

    async def silence(self, command: Command) -> Outcome:
        assert command.duration_s is not None  # the model checks it
        who = (
            command.actor.id
            if not command.actor.name
            else f"{command.actor.name} ({command.actor.id})"
        )
        data: dict[str, Any] = {
            "matchers": [str(m) for m in command.matchers],
            "duration_s": command.duration_s,
            "actor": command.actor.id,
            "idempotency_key": command.idempotency_key,
        }
        try:
            matchers = list(command.matchers)
            check_matchers(matchers)  # the command model checked them; a replayed old record too
        except (ValidationError, MatcherError) as exc:
            reason = _errors(exc) if isinstance(exc, ValidationError) else str(exc)
            return Outcome(
                False,
                "adhoc.silence_refused",
                f":x: Bad matcher: {slack_text(reason, 500)}",
                data | {"reason": reason[:500]},
            )
        shown = ",".join(str(m) for m in matchers)
        ref = silence_ref(command.idempotency_key)
        start = self.now()
        request = SilenceRequest(
            matchers=matchers,
            starts_at=start,
            ends_at=start + timedelta(seconds=command.duration_s),
            created_by=who[:200],
            comment=(
                f"Silenced from Slack with /responder silence by {who} through MuseAroo "
                f"Responder [{ref}]" + (f": {command.reason}" if command.reason else "")
            )[:1000],
        )
        try:
            silence_id, repeated = await self._create_once(ref, request)
        except ResponderError as exc:
            reply = f":x: Could not silence `{slack_text(shown, 300)}`: {slack_text(str(exc), 500)}"
            return Outcome(False, "adhoc.silence_failed", reply, data | {"error": str(exc)[:500]})
        until = request.ends_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        verb = "Already silenced" if repeated else "Silenced"
        reply = (
            f":mute: {verb} `{slack_text(shown, 300)}` for {_duration(command.duration_s)} "
            f"(until {until}); silence id `{silence_id}`."
        )
        return Outcome(
            True,
            "adhoc.silence",
            reply,
            data
            | {
                "silence_id": silence_id,
                "repeat": repeated,
                "starts_at": request.starts_at.isoformat(),
                "ends_at": request.ends_at.isoformat(),
            },
        )

    async def _create_once(self, ref: str, request: SilenceRequest) -> tuple[str, bool]:
        """The silence for ``ref``: the existing one (a redelivery), or a new one."""
        for attempt in range(1, self.attempts + 1):
            try:
                existing = await self.silences.find(ref)
                if existing is not None:
                    return existing, True
                return await self.silences.create(request), False
            except TemporaryError as exc:
                if attempt == self.attempts:
                    raise
                log.warning("adhoc.silence_retry", attempt=attempt, error=str(exc))
                await self.sleep(min(2.0 * attempt, 10.0))
        raise PermanentError("unreachable")  # pragma: no cover - the loop returns or raises


@dataclass
class AdhocStreams:
    commands: Any
    replies: Any
    executor: AdhocExecutor


def register_adhoc(
    streams: ResponderStreams, settings: Settings, actions: ActionProvider
) -> AdhocStreams:
    """Attach the ``adhoc-commands`` agent to ``responder.commands``."""
    app, conf = streams.app, settings.adhoc
    commands, replies = streams.topic(COMMANDS), streams.topic(REPLIES)
    silences = AlertmanagerSilences(conf.alertmanager_url, timeout_s=conf.alertmanager_timeout_s)
    executor = AdhocExecutor(actions=actions, silences=silences, settings=conf, now=streams.clock)

    async def publish(command: Command, outcome: Outcome) -> None:
        """Audit and reply, both keyed by the command's ad-hoc id; return once the broker has both."""
        about = adhoc_id(command.idempotency_key)
        audit = AuditEvent(
            kind=outcome.kind,
            incident_id=about,
            incident_key="",
            at=streams.clock(),
            data=outcome.data | {"ok": outcome.ok, "reply": outcome.reply[:2000]},
        )
        pending = [await streams.send_audit(audit)]
        if command.reply_to:
            reply = ReplyToCommand(
                incident_id=about,
                url=command.reply_to,
                text=outcome.reply,
                idempotency_key=command.idempotency_key,
            )
            value = reply.model_dump_json().encode()
            pending.append(await replies.send(key=about.encode(), value=value))
        await asyncio.gather(*pending)

    async def handle(stream: Any) -> None:
        async for event in stream.events():
            try:
                command = Command.model_validate_json(event.value)
            except ValidationError:
                continue  # logged by the remediation command router, which reads it too
            if command.kind not in (CommandKind.RUN, CommandKind.SILENCE):
                continue
            log.info(
                "adhoc.command",
                kind=command.kind.value,
                actor=command.actor.id,
                key=command.idempotency_key,
            )
            outcome = await executor.handle(command)
            if outcome is not None:
                await publish(command, outcome)

    app.agent(commands, name="adhoc-commands", concurrency=1)(handle)

    async def _close(*_: Any, **__: Any) -> None:
        await silences.close()

    app.on_before_shutdown.connect(_close)
    return AdhocStreams(commands=commands, replies=replies, executor=executor)
