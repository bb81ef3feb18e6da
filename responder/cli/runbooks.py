"""``responder runbooks validate|explain``: the runbook checks a reviewer's CI runs.

Both commands only read files: ``validate`` loads a directory exactly as the
daemon would (exit 0, or every error as ``file:line:col key.path: message`` and
exit 1); ``explain`` shows what the responder would do with an alert, without
calling anything.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from responder.runbooks.loader import RunbookError

# The runbook loader, explainer and rule checker are imported inside the commands that use
# them, so other `responder` commands do not pay for them at start-up.

__all__ = ["FORMAT_OPTION", "folder_argument", "report_load", "runbooks"]


def _github(error: RunbookError) -> str:
    """A GitHub Actions annotation: the error shows on the pull request's diff line."""
    message = f"{error.path or '(document)'}: {error.message}".replace("%", "%25")
    message = message.replace("\r", "%0D").replace("\n", "%0A")
    return f"::error file={error.file},line={error.line},col={error.column}::{message}"


F = TypeVar("F", bound=Callable[..., Any])

FORMAT_OPTION: Callable[[F], F] = click.option(
    "--format",
    "output",
    type=click.Choice(["text", "github", "json"]),
    default="text",
    show_default=True,
    help="github: workflow annotations on the changed lines; json: for other tools.",
)
"""How ``validate`` reports (``report_load``), for every folder of declarative files."""


def folder_argument(default: str) -> Callable[[F], F]:
    """The DIRECTORY argument of a ``validate`` command."""
    return click.argument(
        "directory", default=default, type=click.Path(file_okay=False, path_type=Path)
    )


@click.group()
def runbooks() -> None:
    """Check runbooks and see what they would do."""


@runbooks.command()
@folder_argument("runbooks")
@FORMAT_OPTION
@click.option(
    "--rules",
    "rules_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also check that every runbook's alertname is fired by a rule in this directory.",
)
@click.option(
    "--alerts",
    "alerts_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="With --rules: alerts of the definitions in this directory count as fired too.",
)
def validate(directory: Path, output: str, rules_dir: Path | None, alerts_dir: Path | None) -> None:
    """Load every runbook of DIRECTORY (default: runbooks) as the daemon would."""
    from responder.alerting.loader import load_definitions
    from responder.runbooks.loader import LoadResult, load_directory
    from responder.runbooks.rules import check_against_rules

    result = load_directory(directory)
    definitions: list[str] | None = None
    if alerts_dir is not None:
        loaded = load_definitions(alerts_dir)
        if loaded.definitions is None:
            report_load(alerts_dir, output, "definitions", [], loaded.errors)
        else:
            definitions = sorted(loaded.definitions.by_name)
    if result.runbooks is not None and rules_dir is not None:
        rule_errors = check_against_rules(result.runbooks, rules_dir, definitions=definitions)
        if rule_errors:
            result = LoadResult(None, tuple(rule_errors))
    names = [] if result.runbooks is None else sorted(result.runbooks.by_id)
    report_load(directory, output, "runbooks", names, result.errors)


def report_load(
    directory: Path, output: str, noun: str, names: list[str], errors: tuple[RunbookError, ...]
) -> None:
    """Print what a folder load found (text, github or json) and exit 1 on any error.

    Shared by ``responder runbooks validate`` and ``responder alerts validate``.
    """
    if output == "json":
        click.echo(
            json.dumps(
                {
                    "ok": not errors,
                    noun: names,
                    "errors": [
                        {
                            "file": e.file,
                            "line": e.line,
                            "column": e.column,
                            "path": e.path,
                            "message": e.message,
                        }
                        for e in errors
                    ],
                },
                indent=2,
            )
        )
    elif not errors:
        click.echo(f"{directory}: {len(names)} {noun} valid ({', '.join(names)})")
    else:
        for error in errors:
            click.echo(_github(error) if output == "github" else str(error))
        click.echo(f"{directory}: {len(errors)} errors", err=True)
    if errors:
        raise SystemExit(1)


@runbooks.command()
@click.argument("alert_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--dir",
    "directory",
    default="runbooks",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Runbook directory.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--now",
    type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"]),
    default=None,
    help="Opening time for deadlines when the alert has no startsAt (default: now).",
)
def explain(alert_file: Path, directory: Path, as_json: bool, now: datetime | None) -> None:
    """Which runbook ALERT_FILE (Alertmanager payload or one alert, JSON) gets, and the plan."""
    from responder.errors import ConfigError
    from responder.runbooks.explain import explain_alert, parse_alerts, render_text
    from responder.runbooks.loader import load_directory

    result = load_directory(directory)
    if result.runbooks is None:
        for error in result.errors:
            click.echo(str(error), err=True)
        raise click.ClickException(f"{directory}: {len(result.errors)} errors; fix them first")
    try:
        document: Any = json.loads(alert_file.read_text(encoding="utf-8"))
        alerts = parse_alerts(document)
    except (OSError, ValueError, ConfigError) as err:
        raise click.ClickException(f"{alert_file}: {err}") from None
    reports = [explain_alert(alert, result.runbooks, now=now) for alert in alerts]
    if as_json:
        click.echo(json.dumps(reports if len(reports) > 1 else reports[0], indent=2))
    else:
        click.echo("\n\n".join(render_text(report) for report in reports))
