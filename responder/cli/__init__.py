"""The ``responder`` command: one group, its subcommands listed explicitly below."""

from __future__ import annotations

import click


@click.group()
@click.option("--log-format", type=click.Choice(["json", "console"]), default="json")
@click.option("--log-level", default="INFO", show_default=True)
def main(log_format: str, log_level: str) -> None:
    """MuseAroo Responder: incident response on Kafka and Faust."""
    from responder.logging import configure

    configure(json=log_format == "json", level=log_level)


# Subcommands are registered here, one line each, so `responder --help` and this
# file agree on what exists.
from responder.cli.actions import actions  # noqa: E402
from responder.cli.alerts import alerts  # noqa: E402
from responder.cli.devtools import dev_commands  # noqa: E402
from responder.cli.incidents import incidents  # noqa: E402
from responder.cli.probe import probe  # noqa: E402
from responder.cli.runbooks import runbooks  # noqa: E402
from responder.cli.serve import serve  # noqa: E402
from responder.cli.worker import worker  # noqa: E402

main.add_command(serve)
main.add_command(worker)
main.add_command(runbooks)
main.add_command(alerts)
main.add_command(actions)
main.add_command(incidents)
main.add_command(probe)
for command in dev_commands():  # stack, demo: development tools (dev/)
    main.add_command(command)
