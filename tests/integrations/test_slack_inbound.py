"""Slack in: /responder and buttons through the ChatOps routes, signed exactly as Slack signs."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from integrations_support import (
    ALLOWED_USER,
    GROUP_MEMBER,
    INCIDENT_ID,
    STRANGER,
    FakeClock,
    MemoryAudit,
    MemoryReader,
    MemorySink,
    block_actions_body,
    slack_headers,
    slack_sign,
    slash_body,
)

from responder.ingest.chatops import ChatOps
from responder.integrations.base import AuditOutcome
from responder.integrations.slack.inbound import (
    CommandDraft,
    ParseFailure,
    ReadRequest,
    ReadVerb,
    parse_command_text,
)
from responder.models.commands import CommandKind, CommandSource
from responder.models.matchers import Matcher
from responder_dev.fakes.slack_api import FakeSlack

Client = TestClient[Any, Any]


async def poll(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.01)


async def post_command(client: Client, clock: FakeClock, text: str, **kw: Any) -> Any:
    body = slash_body(text, **kw)
    return await client.post(
        "/v1/slack/commands", data=body, headers=slack_headers(body, int(clock.now()))
    )


async def test_signed_command_is_answered_fast_and_queued(
    chatops: tuple[ChatOps, Client],
    clock: FakeClock,
    sink: MemorySink,
    audit: MemoryAudit,
    fake_slack: FakeSlack,
) -> None:
    _, client = chatops
    started = time.monotonic()
    response = await post_command(
        client, clock, f"ack {INCIDENT_ID}", response_url=fake_slack.response_url()
    )
    elapsed = time.monotonic() - started
    assert response.status == 200
    assert elapsed < 3.0
    answer = await response.json()
    assert answer["response_type"] == "ephemeral"
    assert "accepted" in answer["text"]
    [command] = sink.commands
    assert command.kind is CommandKind.ACK
    assert command.incident_id == INCIDENT_ID
    assert command.actor.id == ALLOWED_USER
    assert command.source is CommandSource.SLACK_COMMAND
    assert command.reply_to is not None
    assert command.reply_to.startswith(fake_slack.url)
    assert command.idempotency_key.startswith("slack:T0001:")
    assert audit.records[-1].outcome is AuditOutcome.ACCEPTED


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("forged", "forged"),
        ("stale", "stale"),
        ("unsigned", "unsigned"),
        ("future", "stale"),
        ("garbage_ts", "forged"),
    ],
)
async def test_bad_signatures_are_refused_and_audited(
    chatops: tuple[ChatOps, Client],
    clock: FakeClock,
    sink: MemorySink,
    audit: MemoryAudit,
    case: str,
    expected: str,
) -> None:
    _, client = chatops
    body = slash_body(f"resolve {INCIDENT_ID}")
    now = int(clock.now())
    headers = slack_headers(body, now)
    if case == "forged":
        headers["X-Slack-Signature"] = slack_sign(body, now, secret="not-the-secret")
    elif case == "stale":
        headers = slack_headers(body, now - 301)
    elif case == "future":
        headers = slack_headers(body, now + 301)
    elif case == "unsigned":
        del headers["X-Slack-Signature"]
    elif case == "garbage_ts":
        headers["X-Slack-Request-Timestamp"] = "12e3"
    response = await client.post("/v1/slack/commands", data=body, headers=headers)
    assert response.status == 401
    assert sink.commands == []
    [record] = audit.records
    assert record.outcome is AuditOutcome.REFUSED_SIGNATURE
    assert record.reason == f"signature {expected}"


async def test_tampered_body_is_refused(
    chatops: tuple[ChatOps, Client], clock: FakeClock, sink: MemorySink
) -> None:
    _, client = chatops
    body = slash_body(f"ack {INCIDENT_ID}")
    headers = slack_headers(body, int(clock.now()))
    tampered = body.replace(ALLOWED_USER.encode(), STRANGER.encode())
    response = await client.post("/v1/slack/commands", data=tampered, headers=headers)
    assert response.status == 401
    assert sink.commands == []


async def test_replay_is_refused_and_slack_retry_is_a_duplicate(
    chatops: tuple[ChatOps, Client], clock: FakeClock, sink: MemorySink, audit: MemoryAudit
) -> None:
    _, client = chatops
    body = slash_body(f"ack {INCIDENT_ID}")
    headers = slack_headers(body, int(clock.now()))
    assert (await client.post("/v1/slack/commands", data=body, headers=headers)).status == 200
    clock.advance(60)  # still inside the 5-minute window
    replay = await client.post("/v1/slack/commands", data=body, headers=headers)
    assert replay.status == 401
    retry = await client.post(
        "/v1/slack/commands",
        data=body,
        headers={**headers, "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
    )
    assert retry.status == 200
    assert len(sink.commands) == 1
    assert [r.outcome for r in audit.records] == [
        AuditOutcome.ACCEPTED,
        AuditOutcome.REFUSED_SIGNATURE,
        AuditOutcome.DUPLICATE,
    ]
    assert audit.records[1].reason == "signature replayed"


async def test_mutating_command_from_a_stranger_is_refused_and_audited(
    chatops: tuple[ChatOps, Client], clock: FakeClock, sink: MemorySink, audit: MemoryAudit
) -> None:
    _, client = chatops
    response = await post_command(client, clock, f"resolve {INCIDENT_ID}", user_id=STRANGER)
    assert response.status == 200
    assert "Refused" in (await response.json())["text"]
    assert sink.commands == []
    [record] = audit.records
    assert record.outcome is AuditOutcome.REFUSED_AUTHORIZATION
    assert record.actor_id == STRANGER
    assert record.incident_id == INCIDENT_ID


async def test_user_group_member_may_mutate(
    chatops: tuple[ChatOps, Client], clock: FakeClock, sink: MemorySink, fake_slack: FakeSlack
) -> None:
    _, client = chatops
    response = await post_command(
        client, clock, "run deployment.restart prod/musicgen-engine", user_id=GROUP_MEMBER
    )
    assert "accepted (dry run)" in (await response.json())["text"]
    [command] = sink.commands
    assert command.kind is CommandKind.RUN
    assert command.apply is False
    assert command.target == "prod/musicgen-engine"
    assert len(fake_slack.calls_to("usergroups.users.list")) == 1


async def test_read_only_commands_are_open_to_everyone(
    chatops: tuple[ChatOps, Client], clock: FakeClock, sink: MemorySink
) -> None:
    _, client = chatops
    listed = await (await post_command(client, clock, "list", user_id=STRANGER)).json()
    assert INCIDENT_ID in listed["text"]
    shown = await (
        await post_command(client, clock, f"show {INCIDENT_ID}", user_id=STRANGER)
    ).json()
    assert "cache.clear" in shown["text"]
    helped = await (await post_command(client, clock, "", user_id=STRANGER)).json()
    assert "Usage" in helped["text"]
    assert sink.commands == []


async def test_slow_reads_are_answered_on_response_url(
    chatops: tuple[ChatOps, Client], clock: FakeClock, reader: MemoryReader, fake_slack: FakeSlack
) -> None:
    ops, client = chatops
    reader.delay_s = 2.5  # past the inline budget of 2 s
    url = fake_slack.response_url()
    started = time.monotonic()
    answer = await (await post_command(client, clock, "list", response_url=url)).json()
    assert time.monotonic() - started < 3.0
    assert "Looking it up" in answer["text"]
    rid = url.rsplit("/", 1)[1]
    await poll(lambda: len(fake_slack.replies[rid]) == 1)
    reply = fake_slack.replies[rid][0].body
    assert INCIDENT_ID in reply["text"]
    assert reply["response_type"] == "ephemeral"
    await ops.close()


async def test_bad_text_gets_usage_and_nothing_is_queued(
    chatops: tuple[ChatOps, Client], clock: FakeClock, sink: MemorySink, audit: MemoryAudit
) -> None:
    _, client = chatops
    answer = await (await post_command(client, clock, "ack ../../etc/passwd")).json()
    assert "not an incident id" in answer["text"]
    assert sink.commands == []
    assert audit.records[-1].outcome is AuditOutcome.INVALID


async def test_response_url_off_the_allow_list_is_dropped(
    chatops: tuple[ChatOps, Client], clock: FakeClock, sink: MemorySink
) -> None:
    _, client = chatops
    await post_command(
        client, clock, f"ack {INCIDENT_ID}", response_url="https://attacker.example/hook"
    )
    [command] = sink.commands
    assert command.reply_to is None


async def test_broker_failure_is_answered_not_crashed(
    chatops: tuple[ChatOps, Client], clock: FakeClock, sink: MemorySink
) -> None:
    _, client = chatops
    sink.fail = True
    response = await post_command(client, clock, f"ack {INCIDENT_ID}")
    assert response.status == 200
    assert "could not be queued" in (await response.json())["text"]


async def test_approve_button_queues_approval_of_the_drawn_step(
    chatops: tuple[ChatOps, Client], clock: FakeClock, sink: MemorySink
) -> None:
    _, client = chatops
    body = block_actions_body("responder_approve", f"{INCIDENT_ID}@3")
    response = await client.post(
        "/v1/slack/interactions", data=body, headers=slack_headers(body, int(clock.now()))
    )
    assert response.status == 200
    [command] = sink.commands
    assert command.kind is CommandKind.APPROVE
    assert command.step == 3
    assert command.source is CommandSource.SLACK_BUTTON
    assert command.idempotency_key == "slack:12466734323.1395872398"


async def test_button_from_a_stranger_is_refused_on_response_url(
    chatops: tuple[ChatOps, Client],
    clock: FakeClock,
    sink: MemorySink,
    audit: MemoryAudit,
    fake_slack: FakeSlack,
) -> None:
    ops, client = chatops
    url = fake_slack.response_url()
    body = block_actions_body("responder_resolve", INCIDENT_ID, user_id=STRANGER, response_url=url)
    response = await client.post(
        "/v1/slack/interactions", data=body, headers=slack_headers(body, int(clock.now()))
    )
    assert response.status == 200
    assert sink.commands == []
    assert audit.records[-1].outcome is AuditOutcome.REFUSED_AUTHORIZATION
    rid = url.rsplit("/", 1)[1]
    await poll(lambda: len(fake_slack.replies[rid]) == 1)
    assert "Refused" in fake_slack.replies[rid][0].body["text"]
    await ops.close()


async def test_unsigned_interaction_is_refused(
    chatops: tuple[ChatOps, Client], sink: MemorySink, audit: MemoryAudit
) -> None:
    _, client = chatops
    body = block_actions_body("responder_ack", INCIDENT_ID)
    response = await client.post(
        "/v1/slack/interactions",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status == 401
    assert sink.commands == []
    assert audit.records[-1].outcome is AuditOutcome.REFUSED_SIGNATURE


@pytest.mark.parametrize(
    "text",
    [
        "ack x; rm -rf /",
        "ack $(reboot)",
        "show ../../etc/passwd",
        "run deployment.restart prod/api`id`",
        "run deployment.restart ../etc",
        "run os.system prod/api cmd=rm",
        "run deployment.scale prod/api factor=$(id)",
        "run deployment.scale prod/api path=../../x",
        "run deployment.scale prod/API",
        "run deployment.scale prod/\u0430\u0440\u0456",  # Cyrillic look-alikes
        "run deployment.scale prod/api --force",
        "silence alertname=Foo 10y",
        "silence alertname=Foo;bar=1 1h",
        "silence alertname=Foo 9999d",
        "silence alertname!=Foo 1h",  # matches the empty label: would silence everything
        'silence pod=~"(" 1h',  # not a regular expression
        "silence alertname==Foo 1h",
        "silence alertname=Foo, 1h",
        "ack " + "a" * 300,
        "frobnicate all",
    ],
)
def test_hostile_text_never_becomes_a_command(text: str) -> None:
    known = {"deployment.restart", "deployment.scale"}
    assert isinstance(parse_command_text(text, known_actions=known), ParseFailure)


def test_command_grammar() -> None:
    assert parse_command_text("help") == ReadRequest(verb=ReadVerb.HELP)
    assert parse_command_text("LIST") == ReadRequest(verb=ReadVerb.LIST)
    run = parse_command_text("run deployment.scale prod/musicgen-engine factor=2 max=20 --apply")
    assert isinstance(run, CommandDraft)
    assert run.fields == {
        "action": "deployment.scale",
        "target": "prod/musicgen-engine",
        "params": {"factor": "2", "max": "20"},
        "apply": True,
    }
    silence = parse_command_text("silence alertname=HighGenerationLatency,namespace=prod 2h")
    assert isinstance(silence, CommandDraft)
    assert silence.fields == {
        "matchers": [
            Matcher(name="alertname", value="HighGenerationLatency"),
            Matcher(name="namespace", value="prod"),
        ],
        "duration_s": 7200,
    }
    strict = parse_command_text('silence alertname=Foo,pod=~"api-.*",env!=staging 30m')
    assert isinstance(strict, CommandDraft)
    assert [str(m) for m in strict.fields["matchers"]] == [
        'alertname="Foo"',
        'pod=~"api-.*"',
        'env!="staging"',
    ]
    approve = parse_command_text(f"approve {INCIDENT_ID}")
    assert isinstance(approve, CommandDraft)
    assert approve.kind is CommandKind.APPROVE


class BrokenReader(MemoryReader):
    async def get(self, incident_id: str) -> Any:
        raise RuntimeError("table not ready")

    async def list_open(self, limit: int) -> Any:
        raise RuntimeError("table not ready")


async def test_a_broken_incident_store_is_answered_and_fails_closed(
    chatops: tuple[ChatOps, Client], clock: FakeClock, sink: MemorySink
) -> None:
    ops, client = chatops
    ops._reader = BrokenReader()
    listed = await (await post_command(client, clock, "list", user_id=STRANGER)).json()
    assert "Could not read" in listed["text"]
    acked = await (await post_command(client, clock, f"ack {INCIDENT_ID}", trigger_id="t-2")).json()
    assert "unavailable" in acked["text"]
    assert sink.commands == []


async def test_ssl_check_is_answered(
    chatops: tuple[ChatOps, Client], clock: FakeClock, audit: MemoryAudit
) -> None:
    _, client = chatops
    body = b"ssl_check=1&token=gIkuvaNzQIHg97ATvDxqgjtO"
    response = await client.post(
        "/v1/slack/commands", data=body, headers=slack_headers(body, int(clock.now()))
    )
    assert response.status == 200
    assert audit.records == []


async def test_binary_body_and_odd_timestamps_are_refused_not_crashed(
    chatops: tuple[ChatOps, Client], clock: FakeClock, sink: MemorySink
) -> None:
    _, client = chatops
    now = int(clock.now())
    binary = b"\xff\xfe\x00command=/responder"
    response = await client.post(
        "/v1/slack/commands", data=binary, headers=slack_headers(binary, now)
    )
    assert response.status == 401
    body = slash_body(f"ack {INCIDENT_ID}")
    arabic_digits = "".join(chr(0x0660 + int(d)) for d in str(now))
    headers = {**slack_headers(body, now), "X-Slack-Request-Timestamp": arabic_digits}
    response = await client.post("/v1/slack/commands", data=body, headers=headers)
    assert response.status in (400, 401)  # aiohttp may refuse the non-ASCII header itself
    assert sink.commands == []


async def test_a_slow_broker_still_gets_an_answer_within_three_seconds(
    chatops: tuple[ChatOps, Client], clock: FakeClock, sink: MemorySink
) -> None:
    _, client = chatops
    sink.delay_s = 5.0
    started = time.monotonic()
    response = await post_command(client, clock, f"ack {INCIDENT_ID}")
    assert time.monotonic() - started < 3.0
    assert "did not confirm in time" in (await response.json())["text"]
