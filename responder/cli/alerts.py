"""``responder alerts validate``: the alert definition check a reviewer's CI runs.

It loads a folder exactly as the worker would (exit 0, or every error as
``file:line:col key.path: message`` and exit 1), with the output formats of
``responder runbooks validate``.
"""

from __future__ import annotations

from pathlib import Path

import click

from responder.cli.runbooks import FORMAT_OPTION, folder_argument, report_load

__all__ = ["alerts"]


@click.group()
def alerts() -> None:
    """Check the alert definitions the worker evaluates itself."""


@alerts.command()
@folder_argument("alerts")
@FORMAT_OPTION
def validate(directory: Path, output: str) -> None:
    """Load every alert definition of DIRECTORY (default: alerts) as the worker would."""
    from responder.alerting.loader import load_definitions

    result = load_definitions(directory)
    names = [] if result.definitions is None else sorted(result.definitions.by_name)
    report_load(directory, output, "definitions", names, result.errors)
