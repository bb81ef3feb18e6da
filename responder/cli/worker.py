"""``responder worker``: the Faust worker running the triage agent (and, later, the others)."""

from __future__ import annotations

import click


@click.command()
@click.option("--loglevel", default="info", show_default=True, help="Faust's own log level.")
def worker(loglevel: str) -> None:
    """Run the Faust worker: consume alerts, keep the incidents table, publish transitions."""
    import faust

    from responder.settings import get_settings
    from streams.app import create_streams

    streams = create_streams(get_settings())
    faust.Worker(streams.app, loglevel=loglevel, redirect_stdouts=False).execute_from_commandline()
