"""``responder stack`` and ``responder demo``, which live in the development package.

The local stack and the demo are development tools (``dev/``, distribution
``musearoo-responder-dev``), not part of the wheel production installs. Where that
package is installed its commands are registered; where it is not, a stand-in of the
same name says how to get it and exits 2, instead of the command being unknown. This is
the one module of the runtime allowed to import ``responder_dev`` (an import-linter
contract in pyproject.toml holds the rest to it).
"""

from __future__ import annotations

import click

GUIDANCE = (
    "`responder {name}` is a development tool: install the development package "
    "(`pip install -e ./dev` in a checkout; `make setup` does it)"
)


def dev_commands() -> list[click.Command]:
    """``stack`` and ``demo`` from the development package, or stand-ins where it is missing."""
    try:
        from responder_dev.cli import demo, stack
    except ModuleNotFoundError as exc:
        if exc.name != "responder_dev":
            raise  # installed but broken: show the real error
        return [_stand_in("stack"), _stand_in("demo")]
    return [stack, demo]


def _stand_in(name: str) -> click.Command:
    def explain() -> None:
        click.echo(GUIDANCE.format(name=name), err=True)
        raise SystemExit(2)

    return click.Command(
        name,
        callback=explain,
        help="Development tool, not installed here (`pip install -e ./dev`).",
        # Whatever follows (`up --no-kube`, `--help`) gets the same answer.
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        add_help_option=False,
    )
