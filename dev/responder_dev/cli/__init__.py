"""The development commands the runtime ``responder`` CLI registers when this package is
installed (``responder/cli/devtools.py``)."""

from responder_dev.cli.demo import demo
from responder_dev.cli.stack import stack

__all__ = ["demo", "stack"]
