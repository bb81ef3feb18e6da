"""Slack out, through slack_sdk's AsyncWebClient against the local Slack."""

from __future__ import annotations

import pytest
from integrations_support import INCIDENT_ID, notification, slack_settings

from responder.errors import PermanentError, TemporaryError
from responder.integrations.base import DeliveryOutcome
from responder.integrations.slack.blocks import (
    ACTION_ACK,
    ACTION_APPROVE,
    ACTION_ESCALATE,
    ACTION_REJECT,
    ACTION_RESOLVE,
)
from responder.integrations.slack.notifier import InMemorySlackMessageStore, SlackNotifier
from responder.models.notifications import IncidentPhase
from responder_dev.fakes.slack_api import FakeSlack


def button_ids(blocks: list[dict[str, object]]) -> list[str]:
    ids: list[str] = []
    for block in blocks:
        if block["type"] == "actions":
            ids += [e["action_id"] for e in block["elements"]]  # type: ignore[attr-defined,index]
    return ids


async def test_one_message_per_incident_updated_in_place_with_a_thread(
    fake_slack: FakeSlack,
) -> None:
    store = InMemorySlackMessageStore()
    notifier = SlackNotifier(slack_settings(fake_slack.url), store)

    first = await notifier.notify(notification(IncidentPhase.REMEDIATING, 1))
    await notifier.notify(notification(IncidentPhase.AWAITING_APPROVAL, 2))
    await notifier.notify(notification(IncidentPhase.ESCALATED, 3))
    await notifier.notify(notification(IncidentPhase.ACKNOWLEDGED, 4, actor="alice"))
    await notifier.notify(notification(IncidentPhase.RESOLVED, 5, actor="alice"))

    assert first.outcome is DeliveryOutcome.DELIVERED
    [message] = fake_slack.top_level()
    assert message.channel == "C0INCIDENT"  # "#incidents" resolved; chat.update got the id
    assert message.edits == 4
    assert len(fake_slack.thread(message.ts)) == 5  # one reply per transition
    assert store.refs[INCIDENT_ID].ts == message.ts
    assert "RESOLVED" in message.text
    assert button_ids(message.blocks) == []  # resolved: nothing left to press
    # every call carried the bot token the way Slack wants it
    assert all(c.headers["Authorization"].startswith("Bearer xoxb-") for c in fake_slack.calls)


async def test_buttons_follow_the_phase(fake_slack: FakeSlack) -> None:
    notifier = SlackNotifier(slack_settings(fake_slack.url), InMemorySlackMessageStore())
    await notifier.notify(notification(IncidentPhase.AWAITING_APPROVAL, 1))
    [message] = fake_slack.top_level()
    assert button_ids(message.blocks) == [
        ACTION_APPROVE,
        ACTION_REJECT,
        ACTION_ACK,
        ACTION_ESCALATE,
        ACTION_RESOLVE,
    ]
    approve = next(e for b in message.blocks if b["type"] == "actions" for e in b["elements"])
    assert (
        approve["value"] == f"{INCIDENT_ID}@3"
    )  # the gated step, so a stale button cannot approve another
    await notifier.notify(notification(IncidentPhase.ESCALATED, 2))
    assert button_ids(message.blocks) == [ACTION_ACK, ACTION_RESOLVE]


async def test_same_transition_is_never_posted_twice_and_old_ones_do_not_overwrite(
    fake_slack: FakeSlack,
) -> None:
    notifier = SlackNotifier(slack_settings(fake_slack.url), InMemorySlackMessageStore())
    escalated = notification(IncidentPhase.ESCALATED, 3)
    await notifier.notify(escalated)
    duplicate = await notifier.notify(escalated)
    stale = await notifier.notify(notification(IncidentPhase.REMEDIATING, 2))

    assert duplicate.outcome is DeliveryOutcome.DUPLICATE
    assert stale.outcome is DeliveryOutcome.STALE
    assert len(fake_slack.calls_to("chat.postMessage")) == 2  # the message + one thread reply
    assert fake_slack.calls_to("chat.update") == []


async def test_429_is_retried_after_retry_after(fake_slack: FakeSlack) -> None:
    notifier = SlackNotifier(slack_settings(fake_slack.url), InMemorySlackMessageStore())
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=1)
    result = await notifier.notify(notification(IncidentPhase.OPEN, 1))
    assert result.outcome is DeliveryOutcome.DELIVERED
    limited, accepted = fake_slack.calls_to("chat.postMessage")[:2]
    assert accepted.at - limited.at >= 1.0  # waited at least the Retry-After Slack gave
    assert len(fake_slack.top_level()) == 1


async def test_429_beyond_the_retries_is_temporary_with_slacks_delay(fake_slack: FakeSlack) -> None:
    notifier = SlackNotifier(
        slack_settings(fake_slack.url, rate_limit_retries=0), InMemorySlackMessageStore()
    )
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=7)
    with pytest.raises(TemporaryError) as caught:
        await notifier.notify(notification(IncidentPhase.OPEN, 1))
    assert caught.value.delay == 7.0
    assert fake_slack.top_level() == []


async def test_slack_errors_are_classified(fake_slack: FakeSlack) -> None:
    notifier = SlackNotifier(slack_settings(fake_slack.url), InMemorySlackMessageStore())
    with pytest.raises(PermanentError, match="channel_not_found"):
        await notifier.notify(notification(IncidentPhase.OPEN, 1, slack_channel="#nowhere"))
    fake_slack.fail_next("chat.postMessage", error="internal_error")
    with pytest.raises(TemporaryError):
        await notifier.notify(notification(IncidentPhase.OPEN, 1))
    bad_token = SlackNotifier(
        slack_settings(fake_slack.url, bot_token="xoxb-wrong"), InMemorySlackMessageStore()
    )
    with pytest.raises(PermanentError, match="invalid_auth"):
        await bad_token.notify(notification(IncidentPhase.OPEN, 1))


async def test_deleted_message_is_posted_again(fake_slack: FakeSlack) -> None:
    store = InMemorySlackMessageStore()
    notifier = SlackNotifier(slack_settings(fake_slack.url), store)
    await notifier.notify(notification(IncidentPhase.OPEN, 1))
    old_ts = store.refs[INCIDENT_ID].ts
    del fake_slack.messages[old_ts]
    await notifier.notify(notification(IncidentPhase.ESCALATED, 2))
    assert store.refs[INCIDENT_ID].ts != old_ts
    assert len(fake_slack.top_level()) == 1


async def test_untrusted_text_cannot_ping_channels_or_forge_links(fake_slack: FakeSlack) -> None:
    notifier = SlackNotifier(slack_settings(fake_slack.url), InMemorySlackMessageStore())
    await notifier.notify(
        notification(
            IncidentPhase.OPEN,
            1,
            target={"namespace": "prod", "deployment": "<!channel> <https://evil.example|click>"},
            event="<!here> & more",
            links=(
                {"href": "javascript:alert(1)", "text": "x"},
                {"href": "https://ok.example/a", "text": "ok"},
            ),
        )
    )
    [message] = fake_slack.top_level()
    rendered = str(message.blocks) + "".join(m.text for m in fake_slack.thread(message.ts))
    assert "<!channel>" not in rendered
    assert "<!here>" not in rendered
    assert "&lt;!channel&gt;" in rendered
    assert "javascript:" not in rendered
    assert "<https://ok.example/a|ok>" in rendered


async def test_concurrent_transitions_of_a_new_incident_post_one_message(
    fake_slack: FakeSlack,
) -> None:
    import asyncio

    notifier = SlackNotifier(slack_settings(fake_slack.url), InMemorySlackMessageStore())
    results = await asyncio.gather(
        *(notifier.notify(notification(IncidentPhase.REMEDIATING, seq)) for seq in range(1, 6))
    )
    assert len(fake_slack.top_level()) == 1
    assert sum(r.outcome is DeliveryOutcome.DELIVERED for r in results) >= 1


async def test_server_errors_are_retried_then_temporary(fake_slack: FakeSlack) -> None:
    notifier = SlackNotifier(
        slack_settings(fake_slack.url, server_error_retries=1), InMemorySlackMessageStore()
    )
    fake_slack.fail_next("chat.postMessage", status=503)
    assert (
        await notifier.notify(notification(IncidentPhase.OPEN, 1))
    ).outcome is DeliveryOutcome.DELIVERED
    for _ in range(2):
        fake_slack.fail_next("chat.update", status=503)
    with pytest.raises(TemporaryError):
        await notifier.notify(notification(IncidentPhase.ESCALATED, 2))
