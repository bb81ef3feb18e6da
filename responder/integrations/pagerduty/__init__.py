"""PagerDuty: Events API v2 out (trigger, acknowledge, resolve), webhooks v3 in."""

from responder.integrations.pagerduty.events import (
    EventsClient,
    InMemoryPagerDutyStore,
    PagedIncident,
    PagerDutyNotifier,
    PagerDutyStore,
)
from responder.integrations.pagerduty.webhooks import parse_webhook, verify_signature

__all__ = [
    "EventsClient",
    "InMemoryPagerDutyStore",
    "PagedIncident",
    "PagerDutyNotifier",
    "PagerDutyStore",
    "parse_webhook",
    "verify_signature",
]
