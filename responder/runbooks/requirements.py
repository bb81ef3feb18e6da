"""What a runbook set needs from the world, checked before the set is used.

A runbook that restarts deployments on a worker with no cluster credentials, or clears a
cache with no Redis configured, would fail every step at run time, be retried, and only
move on when the step times out. So the services a set's steps and verifications need
are checked when the set is loaded: at start-up a shortfall stops the worker with one
message naming each runbook, action and setting; on a hot reload it rejects the new set
(``RunbookStore`` keeps the old one).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from responder.errors import ConfigError
from responder.runbooks.catalog import RunbookSet
from responder.runbooks.schema import Runbook
from responder.settings import Settings

__all__ = ["ActionServices", "RunbookRequirements", "UnmetRequirements", "unmet"]


class ActionServices(Protocol):
    """What the action table says about a step (``responder.actions.catalogue.ActionCatalogue``)."""

    def missing(self, action: str, params: object = None) -> str | None:
        """None when the step can run; else "needs …: set …"."""
        ...

    def missing_kubernetes(self) -> str | None:
        """None when pods can be read from the cluster; else "needs Kubernetes: …"."""
        ...


class UnmetRequirements(ConfigError):
    """The runbooks need a service whose settings are missing or unusable."""


def unmet(
    runbooks: Iterable[Runbook], settings: Settings, actions: ActionServices | None
) -> list[str]:
    """One line per step that cannot run here: runbook, step, action, what to set.

    ``actions`` None: the action table was injected (tests), only verifications are checked.
    """
    problems: list[str] = []
    http_bases = settings.actions.http_base_urls
    for runbook in runbooks:
        for index, step in enumerate(runbook.steps):
            where = f"runbook {runbook.id!r} step {index + 1} ({step.action})"
            missing = None if actions is None else actions.missing(step.action, step.params)
            if missing is not None:
                problems.append(f"{where} {missing}")
            verify = step.verify
            if verify is None:
                continue
            base = verify.http.base if verify.http is not None else None
            if verify.probe is not None:
                base = verify.probe.base
                pods = None if actions is None or base is not None else actions.missing_kubernetes()
                if pods is not None:
                    problems.append(f"{where} probe of the target's pods {pods}")
            if base is not None and base not in http_bases:
                problems.append(
                    f"{where} verification needs the HTTP base {base!r}: set "
                    f"RESPONDER_ACTIONS__HTTP_BASE_URLS with a {base!r} entry"
                )
            if verify.promql is not None and not settings.remediation.prometheus_url:
                problems.append(
                    f"{where} verification needs Prometheus: set RESPONDER_REMEDIATION__PROMETHEUS_URL"
                )
    return problems


class RunbookRequirements:
    """The admission check of a runbook set (``RunbookStore(admit=…)``): raises if unmet."""

    def __init__(self, settings: Settings, actions: ActionServices | None) -> None:
        self.settings = settings
        self.actions = actions

    def __call__(self, runbooks: RunbookSet) -> None:
        problems = unmet(runbooks.runbooks, self.settings, self.actions)
        if problems:
            raise UnmetRequirements(
                "the runbooks need services that are not configured:\n"
                + "\n".join(f"  {line}" for line in problems)
            )
