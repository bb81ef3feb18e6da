"""PagerDuty Events API v2 out, through the real `pagerduty` SDK against the local fake."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from integrations_support import (
    INCIDENT_ID,
    OTHER_ROUTING_KEY,
    ROUTING_KEY,
    FakeClock,
    RecordingSleep,
    notification,
    pagerduty_settings,
)

from responder.errors import ConfigError, PermanentError, TemporaryError
from responder.integrations.base import DeliveryOutcome
from responder.integrations.pagerduty.events import (
    EventsClient,
    InMemoryPagerDutyStore,
    PagerDutyNotifier,
)
from responder.integrations.ratelimit import SlidingWindowLimiter
from responder.models.notifications import IncidentPhase
from responder_dev.fakes.pagerduty_events import FakePagerDuty


def make(
    fake_pd: FakePagerDuty, tls_cert: tuple[Path, Path], sleep: RecordingSleep, **overrides: object
) -> tuple[PagerDutyNotifier, EventsClient, InMemoryPagerDutyStore]:
    settings = pagerduty_settings(fake_pd.url, tls_cert[0], **overrides)
    client = EventsClient(settings, sleep=sleep, rand=lambda: 0.5)
    store = InMemoryPagerDutyStore()
    return PagerDutyNotifier(settings, client, store), client, store


async def test_trigger_ack_resolve_reach_pagerduty_with_one_routing_key(
    fake_pd: FakePagerDuty, tls_cert: tuple[Path, Path]
) -> None:
    notifier, _, _ = make(fake_pd, tls_cert, RecordingSleep())
    try:
        escalated = notification(IncidentPhase.ESCALATED, 5, pagerduty_service="platform")
        assert (await notifier.notify(escalated)).outcome is DeliveryOutcome.DELIVERED
        await notifier.notify(notification(IncidentPhase.ACKNOWLEDGED, 6, actor="alice"))
        await notifier.notify(notification(IncidentPhase.RESOLVED, 7))
    finally:
        await notifier.aclose()

    trigger, ack, resolve = (e.body for e in fake_pd.events)
    assert trigger["event_action"] == "trigger"
    assert trigger["routing_key"] == OTHER_ROUTING_KEY  # the runbook's service, by name
    assert trigger["dedup_key"] == INCIDENT_ID
    payload = trigger["payload"]
    assert payload["severity"] == "critical"
    assert payload["source"] == "prod/musicgen-engine"
    assert payload["component"] == "musicgen-engine"
    assert payload["group"] == "prod"
    assert payload["class"] == "high_generation_latency"
    assert payload["timestamp"] == "2026-11-30T03:05:00+00:00"
    assert "HighGenerationLatency" in payload["summary"]
    assert len(payload["summary"]) <= 1024
    tried = payload["custom_details"]["steps_tried"]
    assert [s["action"] for s in tried][:3] == ["cache.clear", "model.reload", "deployment.scale"]
    assert tried[0]["status"] == "failed"
    assert "1204 keys" in tried[0]["result"]
    assert {link["text"] for link in trigger["links"]} == {"Runbook", "Prometheus"}
    # acknowledge and resolve: same dedup key, same routing key as the trigger
    assert (ack["event_action"], ack["dedup_key"], ack["routing_key"]) == (
        "acknowledge",
        INCIDENT_ID,
        OTHER_ROUTING_KEY,
    )
    assert (resolve["event_action"], resolve["dedup_key"], resolve["routing_key"]) == (
        "resolve",
        INCIDENT_ID,
        OTHER_ROUTING_KEY,
    )
    assert fake_pd.alerts[(OTHER_ROUTING_KEY, INCIDENT_ID)] == "resolved"
    assert fake_pd.events[0].headers["Content-Type"] == "application/json"


async def test_same_transition_is_not_sent_twice_and_ack_without_page_is_not_sent(
    fake_pd: FakePagerDuty, tls_cert: tuple[Path, Path]
) -> None:
    notifier, _, store = make(fake_pd, tls_cert, RecordingSleep())
    try:
        ack_first = await notifier.notify(notification(IncidentPhase.ACKNOWLEDGED, 1))
        assert ack_first.outcome is DeliveryOutcome.NOT_APPLICABLE
        step = await notifier.notify(notification(IncidentPhase.REMEDIATING, 2))
        assert step.outcome is DeliveryOutcome.NOT_APPLICABLE
        escalated = notification(IncidentPhase.ESCALATED, 3)
        await notifier.notify(escalated)
        again = await notifier.notify(escalated)
        assert again.outcome is DeliveryOutcome.DUPLICATE
        level2 = await notifier.notify(notification(IncidentPhase.ESCALATED, 4, escalation_level=2))
        assert level2.outcome is DeliveryOutcome.DUPLICATE  # already paged: no second page
    finally:
        await notifier.aclose()
    assert fake_pd.by_action == {"trigger": 1}
    assert store.records[INCIDENT_ID].service == "default"
    assert fake_pd.alerts[(ROUTING_KEY, INCIDENT_ID)] == "triggered"


async def test_429_then_success_backs_off_and_sends_once(
    fake_pd: FakePagerDuty, tls_cert: tuple[Path, Path]
) -> None:
    sleep = RecordingSleep()
    notifier, _, _ = make(fake_pd, tls_cert, sleep)
    fake_pd.fail_next(429, retry_after=3)
    fake_pd.fail_next(503)
    try:
        result = await notifier.notify(notification(IncidentPhase.ESCALATED, 1))
    finally:
        await notifier.aclose()
    assert result.outcome is DeliveryOutcome.DELIVERED
    # one HTTP request per attempt: the SDK's own sleeping retries are off
    assert len(fake_pd.requests) == 3
    assert len(fake_pd.events) == 1
    # attempt 0: jitter 0.5 * 0.5 s, raised to the Retry-After of 3 s; attempt 1: 0.5 * 1.0 s
    assert sleep.delays == [3.0, 0.5]


async def test_5xx_until_attempts_run_out_is_temporary(
    fake_pd: FakePagerDuty, tls_cert: tuple[Path, Path]
) -> None:
    sleep = RecordingSleep()
    notifier, _, store = make(fake_pd, tls_cert, sleep, max_attempts=3)
    fake_pd.fail_next(500, times=3)
    try:
        with pytest.raises(TemporaryError):
            await notifier.notify(notification(IncidentPhase.ESCALATED, 1))
    finally:
        await notifier.aclose()
    assert len(fake_pd.requests) == 3
    assert len(sleep.delays) == 2
    assert store.records == {}  # not remembered: the agent retries the whole notification


async def test_400_is_permanent_and_logged_with_pagerdutys_message(
    fake_pd: FakePagerDuty, tls_cert: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    sleep = RecordingSleep()
    notifier, client, _ = make(fake_pd, tls_cert, sleep)
    fake_pd.routing_keys.discard(ROUTING_KEY)  # PagerDuty no longer knows the key
    caplog.set_level(logging.DEBUG)
    try:
        with pytest.raises(PermanentError, match="Invalid routing key"):
            await notifier.notify(notification(IncidentPhase.ESCALATED, 1))
        with pytest.raises(PermanentError, match="dedup_key"):
            await client.send("default", "resolve", "x" * 256)
    finally:
        await notifier.aclose()
    assert len(fake_pd.requests) == 1  # no retry of a 400; the too-long key never left
    assert sleep.delays == []


async def test_limiter_spaces_events_per_routing_key(
    fake_pd: FakePagerDuty, tls_cert: tuple[Path, Path]
) -> None:
    clock = FakeClock()
    sleep = RecordingSleep(clock)
    settings = pagerduty_settings(fake_pd.url, tls_cert[0], events_per_minute=2)
    limiter = SlidingWindowLimiter(2, 60.0, clock=clock, sleep=sleep)
    client = EventsClient(settings, limiter=limiter, sleep=sleep)
    try:
        for i in range(3):
            await client.send(
                "default",
                "trigger",
                f"inc-{i}",
                {"payload": {"summary": "s", "source": "x", "severity": "info"}},
            )
        await client.send(
            "platform",
            "trigger",
            "inc-p",
            {"payload": {"summary": "s", "source": "x", "severity": "info"}},
        )
    finally:
        client.close()
    assert sleep.delays == [60.0]  # the third event on "default" waited a full window
    assert len(fake_pd.events) == 4  # "platform" has its own budget


def test_sliding_window_limiter_with_a_fake_clock() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(120, 60.0, clock=clock)
    assert all(limiter.reserve("k") == 0.0 for _ in range(120))
    assert limiter.reserve("k") == pytest.approx(60.0)
    assert limiter.reserve("other") == 0.0
    clock.advance(30)
    assert limiter.reserve("k") == pytest.approx(30.0)
    clock.advance(30)
    assert limiter.reserve("k") == 0.0  # the first grant left the window


def test_settings_refuse_bad_routing_keys_and_http_urls(tls_cert: tuple[Path, Path]) -> None:
    from pydantic import SecretStr, ValidationError

    with pytest.raises(ValidationError, match="32 characters"):
        pagerduty_settings(
            "https://127.0.0.1:1", tls_cert[0], routing_keys={"default": SecretStr("short")}
        )
    with pytest.raises(ConfigError, match="https"):
        EventsClient(pagerduty_settings("http://127.0.0.1:1", tls_cert[0]))
