"""Keying alerts by runbook + target at the edge, so one partition owns one incident.

Ingest loads the same runbook directory as the worker and reloads it the same way (file
change, SIGHUP; swapped only when all of it is valid). An alert a runbook matches is keyed
``<runbook>:<namespace>/<name>``; one no runbook matches keeps the label key of
``responder.models.alerts.incident_key``. During a reload the two processes may briefly
disagree; an alert keyed under the old set then opens its incident under the old key,
which the remediation router still routes by the incident's labels.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import structlog

from responder.errors import ConfigError
from responder.models.alerts import IncidentKeyer
from responder.runbooks.reload import RunbookStore
from responder.runbooks.resolve import runbook_keyer as keyer_for

log = structlog.get_logger(__name__)


def runbook_keyer(store: RunbookStore) -> IncidentKeyer:
    """The incident key of an alert under the store's current runbook set."""
    return keyer_for(lambda: store.current)


def load_store(directory: str) -> RunbookStore:
    """A store with the directory loaded if it is valid; logged and empty otherwise."""
    store = RunbookStore(directory)
    try:
        loaded = store.load_initial()
    except ConfigError as exc:
        log.error("ingest.runbooks_invalid", directory=directory, error=str(exc)[:4000])
    else:
        log.info("ingest.runbooks_loaded", directory=directory, count=len(loaded))
    return store


async def watching(store: RunbookStore, _app: Any) -> AsyncIterator[None]:
    """aiohttp cleanup context: reload on file change and SIGHUP while the app runs."""
    if not store.directory.is_dir():
        yield
        return
    remove = store.install_sighup(asyncio.get_running_loop())
    task = asyncio.create_task(store.watch(), name="ingest-runbook-watch")
    try:
        yield
    finally:
        remove()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
