"""The explicit table of notifiers: one line per outside system, no package scanning.

``build_notifiers`` returns the enabled ones, keyed by the name runbooks use in their
escalation chains (``notify: slack``, ``notify: pagerduty``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from responder.integrations.base import Notifier, Sleep, default_sleep
from responder.integrations.pagerduty.events import (
    EventsClient,
    InMemoryPagerDutyStore,
    PagerDutyNotifier,
    PagerDutyStore,
)
from responder.integrations.slack.notifier import (
    InMemorySlackMessageStore,
    SlackMessageStore,
    SlackNotifier,
)
from responder.settings import Settings


@dataclass
class NotifierDeps:
    """What notifiers need besides settings; the worker passes table-backed stores."""

    slack_store: SlackMessageStore = field(default_factory=InMemorySlackMessageStore)
    pagerduty_store: PagerDutyStore = field(default_factory=InMemoryPagerDutyStore)
    sleep: Sleep = default_sleep


def _slack(settings: Settings, deps: NotifierDeps) -> Notifier | None:
    if not settings.slack.enabled:
        return None
    return SlackNotifier(settings.slack, deps.slack_store)


def _pagerduty(settings: Settings, deps: NotifierDeps) -> Notifier | None:
    if not settings.pagerduty.enabled:
        return None
    client = EventsClient(settings.pagerduty, sleep=deps.sleep)
    return PagerDutyNotifier(settings.pagerduty, client, deps.pagerduty_store)


NOTIFIERS: dict[str, Callable[[Settings, NotifierDeps], Notifier | None]] = {
    "slack": _slack,
    "pagerduty": _pagerduty,
}


def build_notifiers(settings: Settings, deps: NotifierDeps | None = None) -> dict[str, Notifier]:
    """The enabled notifiers by name."""
    deps = deps or NotifierDeps()
    built = {name: factory(settings, deps) for name, factory in NOTIFIERS.items()}
    return {name: notifier for name, notifier in built.items() if notifier is not None}
