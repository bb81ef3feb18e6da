"""``responder stack up|down|status``: the local stack of real servers for development and the demo.

Everything lives under ``settings.stack.root_dir`` (``.stack/``, git-ignored); the
Kafka jars are cached outside git. The servers keep running after ``up`` returns.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from responder.errors import ResponderError
from responder_dev.settings import get_dev_settings
from responder_dev.stack.service import State
from responder_dev.stack.stack import SERVICES, Stack

_NAMES = [spec.name for spec in SERVICES]


@contextmanager
def _errors_as_click() -> Iterator[None]:
    try:
        yield
    except ResponderError as exc:
        raise click.ClickException(str(exc)) from exc


def _progress(message: str) -> None:
    click.echo(message, err=True)


@click.group()
def stack() -> None:
    """Start, stop and inspect the local servers: Kafka, Redis, Alertmanager, Prometheus, Kubernetes."""


@stack.command()
@click.option(
    "--without",
    "without",
    multiple=True,
    type=click.Choice(_NAMES),
    help="Do not start this service (repeatable).",
)
@click.option("--no-kube", is_flag=True, help="Do not start the local Kubernetes control plane.")
def up(without: tuple[str, ...], no_kube: bool) -> None:
    """Start every server (reusing running ones) and wait until each answers."""
    settings = get_dev_settings()
    skip = set(without)
    if no_kube and "kube" in _NAMES:
        skip.add("kube")
    _remember_requested(Path(settings.stack.root_dir), [n for n in _NAMES if n not in skip])
    began = time.monotonic()
    with _errors_as_click():
        the_stack = Stack.from_settings(settings, skip=skip)
        the_stack.up(_progress)
    _progress(f"stack ready in {time.monotonic() - began:.1f} s")
    kafka_address = f"127.0.0.1:{settings.stack.kafka_port}"
    if "kafka" not in skip and kafka_address not in settings.kafka.bootstrap.split(","):
        _progress(
            f"note: RESPONDER_KAFKA__BOOTSTRAP={settings.kafka.bootstrap} does not name the "
            f"stack's broker {kafka_address}"
        )
    _print_status(the_stack, as_json=False)


@stack.command()
def down() -> None:
    """Stop every server (SIGTERM, then SIGKILL after the stop timeout); data stays."""
    with _errors_as_click():
        Stack.from_settings(get_dev_settings()).down(_progress)


@stack.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per service.")
def status(as_json: bool) -> None:
    """Show the state of each server the last ``up`` asked for; exit 1 unless all are ready."""
    with _errors_as_click():
        settings = get_dev_settings()
        requested = _requested(Path(settings.stack.root_dir))
        the_stack = Stack.from_settings(settings, skip=set(_NAMES) - requested)
        if not _print_status(the_stack, as_json=as_json):
            raise SystemExit(1)


# What the last `up` was asked to start (after --without/--no-kube), so `status` answers for
# that stack rather than calling a deliberately skipped server "stopped". `down` stops all.
_REQUESTED_FILE = "requested"


def _remember_requested(root: Path, names: list[str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / _REQUESTED_FILE).write_text("".join(f"{name}\n" for name in names))


def _requested(root: Path) -> set[str]:
    try:
        names = set((root / _REQUESTED_FILE).read_text().split())
    except FileNotFoundError:
        return set(_NAMES)  # never started here: report every server
    return names & set(_NAMES)


def _print_status(the_stack: Stack, *, as_json: bool) -> bool:
    statuses = the_stack.status()
    for entry in statuses:
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "name": entry.name,
                        "state": entry.state.value,
                        "pid": entry.pid,
                        "endpoint": entry.endpoint,
                        "log": str(entry.log_file),
                    }
                )
            )
        else:
            pid = str(entry.pid) if entry.pid is not None else "-"
            click.echo(f"{entry.name:<13} {entry.state.value:<8} {pid:>8}  {entry.endpoint}")
    return all(entry.state is State.READY for entry in statuses)
