"""The shared retry rule, and that both families apply it the same way."""

from __future__ import annotations

import random

import pytest

from responder.actions.retry import Operation, RetryPolicy, classify_status
from responder.errors import TemporaryError
from responder.integrations.pagerduty import events as pagerduty_events
from responder.retry import full_jitter_delay, is_retryable_status, retry_after_seconds


def test_retry_after_delta_seconds_or_default() -> None:
    assert retry_after_seconds("7", 1.0) == 7.0
    assert retry_after_seconds("-3", 1.0) == 0.0
    assert retry_after_seconds(None, 1.0) == 1.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", 2.5) == 2.5


@pytest.mark.parametrize("status", range(400, 600))
def test_actions_retry_whatever_the_shared_rule_retries(status: int) -> None:
    error = classify_status(status, op=Operation("get", "pods", "ns", "p"))
    if is_retryable_status(status):
        assert isinstance(error, TemporaryError)


def test_integrations_use_the_shared_rule() -> None:
    assert pagerduty_events.is_retryable_status is is_retryable_status
    assert pagerduty_events.full_jitter_delay is full_jitter_delay


def test_action_backoff_is_the_shared_full_jitter() -> None:
    policy = RetryPolicy(attempts=5, base_s=0.5, cap_s=4.0)
    for attempt in range(1, 8):
        ours, shared = random.Random(attempt), random.Random(attempt)
        assert policy.backoff(attempt, ours) == full_jitter_delay(
            attempt - 1, base_s=0.5, cap_s=4.0, rand=shared.random
        )
