"""The active alert definitions of a folder, hot-reloaded like the runbooks.

The runbooks' ``FolderStore``: the whole folder loaded again on a file change or SIGHUP,
swapped in only when all of it is valid (a bad file keeps the old set, logged as
``alert_definition_reload_rejected`` and counted in
``responder_alert_definition_reloads_total{outcome="rejected"}``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry

from responder.alerting.loader import DefinitionSet, load_for_store
from responder.runbooks.reload import FolderStore

__all__ = ["DefinitionStore"]


class DefinitionStore(FolderStore[DefinitionSet]):
    """Holds the active definition set of one folder and replaces it atomically."""

    def __init__(
        self,
        directory: Path | str,
        *,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            directory,
            kind="alert_definition",
            load=load_for_store,
            registry=registry,
            clock=clock,
        )
