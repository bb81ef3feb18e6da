"""The runbook language: models, loader with file:line errors, matcher, templates, hot reload.

Public entry points (the rest is internal to the package):

- ``load_directory(path) -> LoadResult``: a valid ``RunbookSet`` or every error, located.
- ``resolve(labels, annotations, runbooks) -> Matched | InvalidTarget | NoMatch``: the pure
  function triage calls to key an incident by runbook and validated target.
- ``RunbookStore``: the active set of a directory, replaced atomically on SIGHUP or file
  change, only when the whole directory is valid.
- ``explain_alert``: what ``responder runbooks explain`` prints, as data.
"""

from responder.runbooks.catalog import RunbookSet
from responder.runbooks.explain import explain_alert
from responder.runbooks.loader import LoadResult, RunbookError, load_directory
from responder.runbooks.reload import RunbookStore
from responder.runbooks.resolve import (
    InvalidTarget,
    Matched,
    NoMatch,
    Resolution,
    ResolvedTarget,
    render_verify_promql,
    resolve,
)
from responder.runbooks.schema import Runbook, Step

__all__ = [
    "InvalidTarget",
    "LoadResult",
    "Matched",
    "NoMatch",
    "Resolution",
    "ResolvedTarget",
    "Runbook",
    "RunbookError",
    "RunbookSet",
    "RunbookStore",
    "Step",
    "explain_alert",
    "load_directory",
    "render_verify_promql",
    "resolve",
]
