"""The runbook set a worker uses: a fixed set (tests), or the hot-reloaded set of a folder."""

from __future__ import annotations

import asyncio

import structlog

from responder.errors import ConfigError
from responder.runbooks.catalog import RunbookSet
from responder.runbooks.reload import Admit, RunbookStore
from responder.runbooks.requirements import UnmetRequirements
from responder.runbooks.schema import Runbook

__all__ = ["RunbookSource"]

log = structlog.get_logger(__name__)


class RunbookSource:
    """The runbook set in use: a fixed set (tests), or the hot-reloaded set of a directory.

    Hot reload is ``responder.runbooks.reload.RunbookStore``: the whole directory is loaded
    again on a file change or SIGHUP and swapped in only if all of it is valid. An incident
    keeps its runbook *id*; each decision looks the runbook up in the current set, so a
    reloaded runbook applies from the incident's next step (a removed one ends it, audited).
    """

    def __init__(
        self,
        runbooks: RunbookSet,
        store: RunbookStore | None = None,
        refused: UnmetRequirements | None = None,
    ) -> None:
        self._static = runbooks
        self.store = store
        self.refused = refused
        """The initial set, valid but needing services this worker lacks: never used."""

    @property
    def current(self) -> RunbookSet:
        if self.store is not None:
            try:
                return self.store.current
            except ConfigError:
                pass  # never loaded successfully yet: the fallback (empty) set
        return self._static

    def lookup(self, runbook_id: str) -> Runbook | None:
        return self.current.by_id.get(runbook_id)

    def check_startup(self) -> None:
        """Raise the reason the initial set was refused: such a worker must not start."""
        if self.refused is not None:
            raise self.refused

    @classmethod
    def from_directory(cls, directory: str, admit: Admit | None = None) -> RunbookSource:
        """The directory's set, hot-reloaded; ``admit`` refuses sets needing missing services."""
        store = RunbookStore(directory, admit=admit)
        refused = None
        try:
            loaded = store.load_initial()
        except UnmetRequirements as exc:
            refused = exc  # the worker refuses to start (check_startup); never acted on
            log.error("remediation.runbooks_refused", directory=directory, error=str(exc)[:4000])
        except ConfigError as exc:
            # A worker without valid runbooks still triages; remediation waits for a valid set
            # (the watcher picks it up as soon as the files are fixed).
            log.error("remediation.runbooks_invalid", directory=directory, error=str(exc)[:4000])
        else:
            log.info("remediation.runbooks_loaded", directory=directory, count=len(loaded))
        return cls(RunbookSet.of(()), store, refused)

    async def watch(self) -> None:
        """Reload on file changes and on SIGHUP until cancelled (the worker stops)."""
        if self.store is None or not self.store.directory.is_dir():
            return
        remove = self.store.install_sighup(asyncio.get_running_loop())
        try:
            await self.store.watch()
        finally:
            remove()
