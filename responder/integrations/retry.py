"""Retry-or-give-up and backoff for the hosted APIs the integrations call.

The rule itself is shared with the actions and lives in ``responder/retry.py``;
this module is where integration code imports it from, so SDK-specific error
shapes (PagerDuty's ``HttpError``, Slack's ``SlackApiError``) can sit beside it.
"""

from __future__ import annotations

from responder.retry import full_jitter_delay, is_retryable_status

__all__ = ["full_jitter_delay", "is_retryable_status"]
