"""``responder demo``: the responder heals a simulated MuseAroo engine on the local stack.

The play itself is ``responder_dev.demo.play``; this is its command line.
"""

from __future__ import annotations

import logging

import click

from responder_dev.settings import get_dev_settings


@click.command()
@click.option("--timeout", "timeout_s", default=120.0, show_default=True, help="Seconds per wait.")
@click.option("--json", "json_out", is_flag=True, help="One JSON object per line, for machines.")
@click.option(
    "--ci", is_flag=True, help="Unattended: check every scenario's outcome; exit 1 if off."
)
@click.option("--down", is_flag=True, help="Stop the stack afterwards (default: it keeps running).")
def demo(timeout_s: float, json_out: bool, ci: bool, down: bool) -> None:
    """Break a simulated engine three ways and watch the responder heal it, or page a human."""
    from responder_dev.demo.play import run_demo

    # The audit reader's transient leader-election retries are noise here, not news.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    run_demo(get_dev_settings(), timeout_s=timeout_s, json_out=json_out, ci=ci, down=down)
