"""``responder incidents list|show|approve|reject|ack|resolve|escalate``: the operator's console.

Reads come from the ``remediation`` table's changelog (compacted; the last value per
target is the current state), so the CLI needs nothing but the broker. Commands go onto
``responder.commands`` exactly as Slack and PagerDuty commands do, with an idempotency key
of their own, so the engine obeys them through the same path and audits them the same way.
Whoever can write to the commands topic can command incidents: restrict that with Kafka
ACLs in production.
"""

from __future__ import annotations

import asyncio
import getpass
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from responder.models.commands import Actor, Command, CommandKind, CommandSource, IncidentId
from responder.models.topics import COMMANDS, REMEDIATION_TABLE, topic_name
from responder.settings import Settings, get_settings

if TYPE_CHECKING:
    from responder.engine.records import IncidentRun, TargetState

# The engine's models (and the runbook models behind them) are imported where a command
# reads incidents, not at the top, so other `responder` commands start faster.


def changelog_topic(settings: Settings) -> str:
    return REMEDIATION_TABLE.changelog(settings.worker.app_id)


async def read_states(settings: Settings, *, timeout_s: float = 10.0) -> dict[str, TargetState]:
    """Every target's current record, read from the changelog up to its end offsets."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from responder.engine.records import TargetState

    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap, enable_auto_commit=False
    )
    await consumer.start()
    states: dict[str, TargetState] = {}
    try:
        topic = changelog_topic(settings)
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        if not tps:
            return states
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            positions = {tp: await consumer.position(tp) for tp in ends}
            if all(positions[tp] >= end for tp, end in ends.items()):
                break
            for messages in (await consumer.getmany(timeout_ms=200)).values():
                for message in messages:
                    if message.value is None:
                        states.pop(message.key.decode(), None)
                    else:
                        states[message.key.decode()] = TargetState.model_validate_json(
                            message.value
                        )
    finally:
        await consumer.stop()
    return states


def incidents_of(states: dict[str, TargetState], *, include_ended: bool) -> list[IncidentRun]:
    runs = [run for state in states.values() for run in state.runs.values()]
    if include_ended:
        runs += [run for state in states.values() for run in state.history]
    return sorted(runs, key=lambda run: run.opened_at)


def _line(run: IncidentRun) -> str:
    from responder.engine.notifications import phase

    target = run.target.key if run.target else f"(invalid: {run.invalid_target})"
    return (
        f"{run.id}  {phase(run).value:<17} {run.runbook_id:<28} {target:<40} "
        f"step={run.step + 1} attempt={run.attempt} escalation={run.escalation_level} "
        f"opened={run.opened_at.isoformat(timespec='seconds')}"
    )


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


@incidents.command("list")
@click.option("--all", "include_ended", is_flag=True, help="Include recently ended incidents.")
def list_incidents(include_ended: bool) -> None:
    """Open incidents (one line each)."""
    states = asyncio.run(read_states(get_settings()))
    runs = incidents_of(states, include_ended=include_ended)
    if not runs:
        click.echo("no incidents")
    for run in runs:
        click.echo(_line(run))


@incidents.command("show")
@click.argument("incident_id")
def show_incident(incident_id: str) -> None:
    """One incident in full (JSON)."""
    states = asyncio.run(read_states(get_settings()))
    for run in incidents_of(states, include_ended=True):
        if run.id == incident_id:
            click.echo(run.model_dump_json(indent=2))
            return
    raise click.ClickException(f"no incident {incident_id} (ended long ago, or never seen)")


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
