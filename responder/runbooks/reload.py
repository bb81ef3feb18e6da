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

The store itself (``FolderStore``) knows nothing of runbooks: alert definitions
(``responder.alerting``) are a folder of the same conventions and reload the same way.

Reloads are triggered by SIGHUP and by file changes (watchfiles, whose watcher
runs in a thread, so the event loop is never blocked); the parsing itself runs in
a worker thread too.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

import structlog
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from responder.errors import ConfigError
from responder.runbooks.catalog import RunbookSet
from responder.runbooks.loader import SUFFIXES, RunbookError, load_directory
from responder.runbooks.schema import Runbook

__all__ = ["FolderStore", "ReloadMetrics", "ReloadOutcome", "RunbookStore"]

log = structlog.get_logger(__name__)


class ReloadMetrics:
    """The reload counters of one kind of folder; one instance per registry and kind (tests
    pass their own registry). ``kind`` names the metrics: ``responder_<kind>_reloads``."""

    def __init__(
        self, registry: CollectorRegistry = REGISTRY, *, kind: str = "runbook", noun: str = ""
    ) -> None:
        noun = noun or kind.replace("_", " ")
        self.registry = registry
        self.reloads = Counter(
            f"responder_{kind}_reloads",
            f"{noun.capitalize()} reloads by outcome (applied, unchanged, rejected).",
            ["outcome"],
            registry=registry,
        )
        self.errors = Counter(
            f"responder_{kind}_load_errors",
            f"Errors found in rejected {noun} reloads (each error of each rejected load).",
            registry=registry,
        )
        self.loaded = Gauge(
            f"responder_{kind}s_loaded",
            f"{noun.capitalize()}s in the active set.",
            registry=registry,
        )
        self.last_success = Gauge(
            f"responder_{kind}_last_reload_success_timestamp_seconds",
            "When the active set was last (re)loaded successfully, Unix time.",
            registry=registry,
        )


_default_metrics: dict[str, ReloadMetrics] = {}


def _metrics_for(registry: CollectorRegistry | None, kind: str) -> ReloadMetrics:
    if registry is not None:
        return ReloadMetrics(registry, kind=kind)
    if kind not in _default_metrics:
        _default_metrics[kind] = ReloadMetrics(kind=kind)
    return _default_metrics[kind]


@dataclass(frozen=True, slots=True)
class ReloadOutcome:
    """What a reload did: ``applied``, ``unchanged`` (same bytes) or ``rejected`` (with errors)."""

    status: str
    errors: tuple[RunbookError, ...] = ()
    refused: str | None = None
    """Rejected although valid: why the ``admit`` check refused the set."""


class LoadedSet(Sized, Protocol):
    """What a folder loads into: a sized, immutable set with a digest of the files' bytes."""

    @property
    def digest(self) -> str: ...


S = TypeVar("S", bound=LoadedSet)

Load = Callable[[Path], tuple[S | None, tuple[RunbookError, ...]]]
"""Load a whole folder: (the valid set, no errors) or (None, every error)."""


class FolderStore(Generic[S]):
    """Holds the active set of one folder of declarative files and replaces it atomically.

    ``kind`` names its metrics and log events (``runbook``: ``runbook_reload_rejected``,
    ``responder_runbook_reloads_total``); ``load`` loads the whole folder; ``admit``
    refuses a valid set that cannot be used here (raises ``ConfigError``).
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        kind: str,
        load: Load[S],
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.time,
        admit: Callable[[S], None] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.kind = kind
        self.metrics = _metrics_for(registry, kind)
        self._load = load
        self._clock = clock
        self._admit = admit
        self._current: S | None = None
        self._lock = asyncio.Lock()

    @property
    def current(self) -> S:
        """The active set. Read it once per use: it may be replaced between two reads."""
        if self._current is None:
            raise ConfigError(
                f"{self.kind.replace('_', ' ')}s in {self.directory} were never loaded"
            )
        return self._current

    def load_initial(self) -> S:
        """First load at start-up: any error is fatal (ConfigError listing all of them), and so is
        a valid set the ``admit`` check refuses (its own ConfigError)."""
        loaded, errors = self._load(self.directory)
        if loaded is None:
            self.metrics.errors.inc(len(errors))
            noun = self.kind.replace("_", " ")
            raise ConfigError(f"invalid {noun}s:\n" + "\n".join(str(error) for error in errors))
        if self._admit is not None:
            self._admit(loaded)
        self._apply(loaded)
        return loaded

    def reload(self) -> ReloadOutcome:
        """Load the directory again; swap only if every file is valid. Synchronous."""
        loaded, errors = self._load(self.directory)
        if loaded is None:
            self.metrics.reloads.labels(outcome="rejected").inc()
            self.metrics.errors.inc(len(errors))
            log.error(
                f"{self.kind}_reload_rejected",
                directory=str(self.directory),
                errors=[str(error) for error in errors],
                kept=None if self._current is None else self._current.digest,
            )
            return ReloadOutcome("rejected", errors)
        if self._current is not None and loaded.digest == self._current.digest:
            self.metrics.reloads.labels(outcome="unchanged").inc()
            return ReloadOutcome("unchanged")
        if self._admit is not None:
            try:
                self._admit(loaded)
            except ConfigError as exc:
                self.metrics.reloads.labels(outcome="rejected").inc()
                log.error(
                    f"{self.kind}_reload_rejected",
                    directory=str(self.directory),
                    errors=[str(exc)],
                    kept=None if self._current is None else self._current.digest,
                )
                return ReloadOutcome("rejected", refused=str(exc))
        self._apply(loaded)
        self.metrics.reloads.labels(outcome="applied").inc()
        log.info(
            f"{self.kind}_reload_applied",
            directory=str(self.directory),
            count=len(loaded),
            digest=loaded.digest,
        )
        return ReloadOutcome("applied")

    async def areload(self) -> ReloadOutcome:
        """``reload`` in a worker thread, one at a time, so the loop keeps serving alerts."""
        async with self._lock:
            return await asyncio.to_thread(self.reload)

    def _apply(self, loaded: S) -> None:
        self._current = loaded  # one assignment: readers see the old or the new set
        self.metrics.loaded.set(len(loaded))
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


Admit = Callable[[RunbookSet], None]
"""Raises ``ConfigError`` when a valid set cannot be used here (a service it needs is missing)."""


def _load_runbooks(directory: Path) -> tuple[RunbookSet | None, tuple[RunbookError, ...]]:
    result = load_directory(directory)
    return result.runbooks, result.errors


class RunbookStore(FolderStore[RunbookSet]):
    """Holds the active runbook set of one directory and replaces it atomically."""

    def __init__(
        self,
        directory: Path | str,
        *,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.time,
        admit: Admit | None = None,
    ) -> None:
        super().__init__(
            directory,
            kind="runbook",
            load=_load_runbooks,
            registry=registry,
            clock=clock,
            admit=admit,
        )

    def lookup(self, runbook_id: str) -> Runbook | None:
        """The active set's runbook with this id (what the engine resolves incidents against)."""
        return self.current.by_id.get(runbook_id)
