"""``responder incidents list|show|export|approve|reject|ack|resolve|escalate``: the operator's console.

``list``, ``show`` and ``export`` read the audit topic (``responder.cli.history``): every
incident's whole story, however many have ended since (the remediation table remembers
only the last few per target). The CLI needs nothing but the broker. Commands go onto
``responder.commands`` exactly as Slack and PagerDuty commands do, with an idempotency key
of their own, so the engine obeys them through the same path and audits them the same way.
Whoever can write to the commands topic can command incidents: restrict that with Kafka
ACLs in production.
"""

from __future__ import annotations

import asyncio
import getpass
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from responder.models.commands import Actor, Command, CommandKind, CommandSource, IncidentId
from responder.models.topics import COMMANDS, topic_name
from responder.settings import Settings, get_settings

if TYPE_CHECKING:
    from responder.cli.history import IncidentHistory

# aiokafka and the history are imported where a command reads incidents, not at the top,
# so other `responder` commands start faster.


async def send_command(settings: Settings, command: Command) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap,
        enable_idempotence=True,
        request_timeout_ms=int(settings.kafka.request_timeout_s * 1000),
    )
    await producer.start()
    try:
        assert command.incident_id is not None
        await producer.send_and_wait(
            topic_name(settings.kafka.topic_prefix, COMMANDS),
            key=command.incident_id.encode(),
            value=command.model_dump_json().encode(),
        )
    finally:
        await producer.stop()


def build_command(
    kind: CommandKind, incident_id: str, *, step: int | None, reason: str, actor: str
) -> Command:
    return Command(
        kind=kind,
        idempotency_key=f"cli:{uuid.uuid4()}",
        actor=Actor(id=f"cli:{actor}"[:64], name=actor[:128]),
        source=CommandSource.CLI,
        issued_at=datetime.now(UTC),
        incident_id=incident_id,
        step=step,
        reason=reason,
    )


@click.group()
def incidents() -> None:
    """List, inspect and command incidents."""


def _since(value: str | None) -> datetime | None:
    """``--since``: an ISO time, or a duration back from now (``90s``, ``30m``, ``6h``, ``2d``)."""
    if value is None:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if value[-1:] in units and value[:-1].isdigit():
        return datetime.now(UTC) - timedelta(seconds=int(value[:-1]) * units[value[-1]])
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r}: an ISO time (2026-12-08T10:00) or a duration (30m, 6h, 2d)",
            param_hint="--since",
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _history(incident_id: str) -> IncidentHistory:
    from responder.cli.history import histories, read_audit

    found = histories(asyncio.run(read_audit(get_settings()))).get(_validated(incident_id))
    if found is None:
        raise click.ClickException(f"no incident {incident_id} on the audit topic")
    return found


@incidents.command("list")
@click.option(
    "--state",
    type=click.Choice(["open", "resolved", "all"]),
    default="open",
    show_default=True,
    help="Which incidents.",
)
@click.option("--all", "include_ended", is_flag=True, help="Same as --state all.")
@click.option("--runbook", default=None, help="Only incidents of this runbook id.")
@click.option("--since", default=None, help="Opened since: ISO time or 30m, 6h, 2d.")
def list_incidents(state: str, include_ended: bool, runbook: str | None, since: str | None) -> None:
    """Incidents from the audit trail, one line each, oldest first."""
    from responder.cli.history import histories, read_audit

    after = _since(since)
    wanted = "all" if include_ended else state
    shown = 0
    for h in histories(asyncio.run(read_audit(get_settings()))).values():
        if wanted != "all" and h.state != wanted:
            continue
        if runbook is not None and h.runbook != runbook:
            continue
        if after is not None and (h.opened_at is None or h.opened_at < after):
            continue
        opened = h.opened_at.isoformat(timespec="seconds") if h.opened_at else "?"
        outcome = f" ({h.outcome})" if h.outcome else ""
        click.echo(
            f"{h.id}  {h.state + outcome:<28} {h.runbook or '-':<28} {h.target or '-':<40} "
            f"opened={opened} actions={len(h.actions)}"
        )
        shown += 1
    if not shown:
        click.echo("no incidents")


@incidents.command("show")
@click.argument("incident_id")
def show_incident(incident_id: str) -> None:
    """One incident's whole timeline, from the audit trail."""
    from responder.cli.history import render_show

    click.echo(render_show(_history(incident_id)))


@incidents.command("export")
@click.argument("incident_id")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["markdown", "json"]),
    default="markdown",
    show_default=True,
)
def export_incident(incident_id: str, fmt: str) -> None:
    """A post-mortem skeleton: timeline, actions, verifications, people, paging context."""
    from responder.cli.history import export_json, export_markdown

    h = _history(incident_id)
    click.echo(export_markdown(h) if fmt == "markdown" else export_json(h))


def _validated(incident_id: str) -> str:
    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(IncidentId).validate_python(incident_id)
    except ValidationError as exc:
        raise click.BadParameter("not an incident id") from exc


def _command(kind: CommandKind, help_text: str) -> Any:
    @click.command(kind.value, help=help_text)
    @click.argument("incident_id")
    @click.option("--step", type=int, default=None, help="Only if this (0-based) step is waiting.")
    @click.option("--reason", default="", help="Why (kept in the audit log).")
    @click.option("--actor", default=None, help="Who (default: the local user).")
    def run(incident_id: str, step: int | None, reason: str, actor: str | None) -> None:
        settings = get_settings()
        command = build_command(
            kind,
            _validated(incident_id),
            step=step,
            reason=reason,
            actor=actor or getpass.getuser(),
        )
        asyncio.run(send_command(settings, command))
        click.echo(f"{kind.value} sent for {incident_id} ({command.idempotency_key})")

    return run


for _kind, _help in (
    (CommandKind.APPROVE, "Approve the step waiting for approval."),
    (CommandKind.REJECT, "Reject the step waiting for approval (the next step follows)."),
    (CommandKind.ACK, "Acknowledge: stop the escalation chain."),
    (CommandKind.RESOLVE, "Resolve: end the incident and its remediation."),
    (CommandKind.ESCALATE, "Escalate to the next level now."),
):
    incidents.add_command(_command(_kind, _help))
