"""Hot reload: swap in a new runbook set only when all of it is valid.

Runbooks change while the daemon runs (a merged pull request, a ConfigMap
update). A half-valid directory must never become the active set: a typo in one
file would silently drop that runbook's remediation. So a reload loads the whole
directory; if there is any error, the old set stays, the errors are logged and
counted; otherwise the new set replaces the old one in one assignment, so a
reader sees either the old set or the new one, never a mixture.

A set that parses can still be unusable here: a step needing Kubernetes on a worker
without cluster credentials, a cache step without Redis. The store's ``admit`` check
(``responder.runbooks.requirements``) decides that; an initial set it refuses is fatal,
a reloaded one is rejected like an invalid one, with the same message.

Reloads are triggered by SIGHUP and by file changes (watchfiles, whose watcher
runs in a thread, so the event loop is never blocked); the parsing itself runs in
a worker thread too.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from responder.errors import ConfigError
from responder.runbooks.catalog import RunbookSet
from responder.runbooks.loader import SUFFIXES, RunbookError, load_directory
from responder.runbooks.schema import Runbook

__all__ = ["ReloadMetrics", "ReloadOutcome", "RunbookStore"]

log = structlog.get_logger(__name__)


class ReloadMetrics:
    """The reload counters; one instance per registry (tests pass their own)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        self.reloads = Counter(
            "responder_runbook_reloads",
            "Runbook reloads by outcome (applied, unchanged, rejected).",
            ["outcome"],
            registry=registry,
        )
        self.errors = Counter(
            "responder_runbook_load_errors",
            "Errors found in rejected runbook reloads (each error of each rejected load).",
            registry=registry,
        )
        self.loaded = Gauge(
            "responder_runbooks_loaded", "Runbooks in the active set.", registry=registry
        )
        self.last_success = Gauge(
            "responder_runbook_last_reload_success_timestamp_seconds",
            "When the active set was last (re)loaded successfully, Unix time.",
            registry=registry,
        )


_default_metrics: ReloadMetrics | None = None


def _metrics_for(registry: CollectorRegistry | None) -> ReloadMetrics:
    global _default_metrics
    if registry is not None:
        return ReloadMetrics(registry)
    if _default_metrics is None:
        _default_metrics = ReloadMetrics()
    return _default_metrics


@dataclass(frozen=True, slots=True)
class ReloadOutcome:
    """What a reload did: ``applied``, ``unchanged`` (same bytes) or ``rejected`` (with errors)."""

    status: str
    errors: tuple[RunbookError, ...] = ()
    refused: str | None = None
    """Rejected although valid: why the ``admit`` check refused the set."""


Admit = Callable[[RunbookSet], None]
"""Raises ``ConfigError`` when a valid set cannot be used here (a service it needs is missing)."""


class RunbookStore:
    """Holds the active runbook set of one directory and replaces it atomically."""

    def __init__(
        self,
        directory: Path | str,
        *,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.time,
        admit: Admit | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.metrics = _metrics_for(registry)
        self._clock = clock
        self._admit = admit
        self._current: RunbookSet | None = None
        self._lock = asyncio.Lock()

    @property
    def current(self) -> RunbookSet:
        """The active set. Read it once per alert: it may be replaced between two reads."""
        if self._current is None:
            raise ConfigError(f"runbooks in {self.directory} were never loaded")
        return self._current

    def lookup(self, runbook_id: str) -> Runbook | None:
        """The active set's runbook with this id (what the engine resolves incidents against)."""
        return self.current.by_id.get(runbook_id)

    def load_initial(self) -> RunbookSet:
        """First load at start-up: any error is fatal (ConfigError listing all of them), and so is
        a valid set the ``admit`` check refuses (its own ConfigError)."""
        result = load_directory(self.directory)
        if result.runbooks is None:
            self.metrics.errors.inc(len(result.errors))
            raise ConfigError(
                "invalid runbooks:\n" + "\n".join(str(error) for error in result.errors)
            )
        if self._admit is not None:
            self._admit(result.runbooks)
        self._apply(result.runbooks)
        return result.runbooks

    def reload(self) -> ReloadOutcome:
        """Load the directory again; swap only if every file is valid. Synchronous."""
        result = load_directory(self.directory)
        if result.runbooks is None:
            self.metrics.reloads.labels(outcome="rejected").inc()
            self.metrics.errors.inc(len(result.errors))
            log.error(
                "runbook_reload_rejected",
                directory=str(self.directory),
                errors=[str(error) for error in result.errors],
                kept=None if self._current is None else self._current.digest,
            )
            return ReloadOutcome("rejected", result.errors)
        if self._current is not None and result.runbooks.digest == self._current.digest:
            self.metrics.reloads.labels(outcome="unchanged").inc()
            return ReloadOutcome("unchanged")
        if self._admit is not None:
            try:
                self._admit(result.runbooks)
            except ConfigError as exc:
                self.metrics.reloads.labels(outcome="rejected").inc()
                log.error(
                    "runbook_reload_rejected",
                    directory=str(self.directory),
                    errors=[str(exc)],
                    kept=None if self._current is None else self._current.digest,
                )
                return ReloadOutcome("rejected", refused=str(exc))
        self._apply(result.runbooks)
        self.metrics.reloads.labels(outcome="applied").inc()
        log.info(
            "runbook_reload_applied",
            directory=str(self.directory),
            runbooks=len(result.runbooks),
            digest=result.runbooks.digest,
        )
        return ReloadOutcome("applied")

    async def areload(self) -> ReloadOutcome:
        """``reload`` in a worker thread, one at a time, so the loop keeps serving alerts."""
        async with self._lock:
            return await asyncio.to_thread(self.reload)

    def _apply(self, runbooks: RunbookSet) -> None:
        self._current = runbooks  # one assignment: readers see the old or the new set
        self.metrics.loaded.set(len(runbooks))
        self.metrics.last_success.set(self._clock())

    def install_sighup(self, loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
        """Reload on SIGHUP; returns a function that removes the handler."""
        tasks: set[asyncio.Task[ReloadOutcome]] = set()

        def on_hup() -> None:
            task = loop.create_task(self.areload())
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        loop.add_signal_handler(signal.SIGHUP, on_hup)

        def remove() -> None:
            loop.remove_signal_handler(signal.SIGHUP)

        return remove

    async def watch(
        self,
        stop: asyncio.Event | None = None,
        *,
        debounce_ms: int = 200,
        on_reload: Callable[[ReloadOutcome], None] | None = None,
    ) -> None:
        """Reload whenever a runbook file in the directory changes, until ``stop`` is set."""
        from watchfiles import awatch

        def relevant(_change: object, path: str) -> bool:
            # A Kubernetes ConfigMap volume swaps a ``..data`` symlink instead of writing
            # the files, so its ``..*`` entries count as changes too.
            name = Path(path).name
            return Path(path).suffix in SUFFIXES or name.startswith("..")

        async for _changes in awatch(
            self.directory,
            watch_filter=relevant,
            stop_event=stop,
            debounce=debounce_ms,
            recursive=False,
        ):
            outcome = await self.areload()
            if on_reload is not None:
                on_reload(outcome)
