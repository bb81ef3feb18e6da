"""``/responder run`` and ``/responder silence`` end to end: signed Slack command to the answer.

The real ingest (Slack signature, authorization, publish on ``responder.commands``), a real
``responder worker`` subprocess with the production action catalogue (``cache.clear``
against the session's real Redis; the Kubernetes client is configured but never called),
the session's real Alertmanager for silences, and the local Slack of ``responder_dev.fakes`` whose
``response_url`` receives the answers. A redelivered command is published straight on the
topic, as Kafka would deliver it again.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from adhoc_support import Harness, start_harness
from e2e_escalation_support import ALICE

from responder.integrations.alertmanager.silences import silence_ref
from responder.models.commands import Actor, Command, CommandKind, CommandSource
from responder.models.matchers import Matcher
from responder_dev.fakes.slack_api import FakeSlack

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

NAMESPACE = "musearoo"
REDIS_DB = 12


@pytest.fixture
async def cache(redis_server: Any) -> AsyncIterator[tuple[aioredis.Redis, str]]:
    url = f"{str(redis_server.url).rsplit('/', 1)[0]}/{REDIS_DB}"
    client = aioredis.Redis.from_url(url)
    await client.flushdb()
    yield client, url
    await client.flushdb()
    await client.aclose()


@pytest.fixture
async def harness(
    kafka: Any,
    alertmanager: Any,
    cache: tuple[aioredis.Redis, str],
    fake_slack: FakeSlack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Harness]:
    async with start_harness(
        bootstrap=kafka.bootstrap,
        alertmanager_url=str(alertmanager.url),
        redis_url=cache[1],
        slack=fake_slack,
        tmp_path=tmp_path,
        monkeypatch=monkeypatch,
        namespace=NAMESPACE,
    ) as made:
        yield made


async def test_run_cache_clear_dry_run_then_apply(
    harness: Harness, cache: tuple[aioredis.Redis, str]
) -> None:
    redis = cache[0]
    keys = [f"adhoc:gen:{i}" for i in range(5)]
    await redis.mset(dict.fromkeys(keys, "v") | {"keep:1": "v"})

    answer, rid = await harness.slash(f"run cache.clear {NAMESPACE}/api pattern=adhoc:gen:*")
    assert "accepted (dry run)" in answer
    text = await harness.reply(rid)
    assert text.startswith(":mag: Dry run of `cache.clear`"), text
    assert "would delete 5 keys" in text
    assert all(f"`{key}`" in text for key in keys), text
    assert "add `--apply`" in text
    assert await redis.exists(*keys) == 5  # nothing deleted

    answer, rid = await harness.slash(
        f"run cache.clear {NAMESPACE}/api pattern=adhoc:gen:* --apply"
    )
    assert "accepted" in answer
    assert "dry run" not in answer
    text = await harness.reply(rid)
    assert text.startswith(":white_check_mark: Done: `cache.clear`"), text
    assert "deleted 5 keys" in text
    assert await redis.exists(*keys) == 0
    assert await redis.exists("keep:1") == 1

    # Both runs are audited. Not by order: the two commands' audit records sit on different
    # partitions, and a command redelivered after a rebalance is audited again (a dry run has
    # no effect to make idempotent; the apply's effect is, as asserted above).
    events = await harness.audits(
        lambda es: {e.data["dry_run"] for e in es if e.kind == "adhoc.run"} == {True, False}
    )
    runs = [e for e in events if e.kind == "adhoc.run"]
    assert {e.data["dry_run"] for e in runs} == {True, False}
    assert {e.data["actor"] for e in runs} == {ALICE}


async def test_redelivered_apply_runs_once(
    harness: Harness, cache: tuple[aioredis.Redis, str]
) -> None:
    redis = cache[0]
    command = Command(
        kind=CommandKind.RUN,
        idempotency_key=f"slack:T0001:{uuid.uuid4().hex}",
        actor=Actor(id=ALICE, name="alice"),
        source=CommandSource.SLACK_COMMAND,
        issued_at=datetime.now(UTC),
        action="cache.clear",
        target=f"{NAMESPACE}/api",
        params={"pattern": "redeliver:*"},
        apply=True,
        reply_to=harness.slack.response_url(),
    )
    await redis.mset({"redeliver:1": "v", "redeliver:2": "v"})
    await harness.publish(command)
    events = await harness.audits(lambda es: any(e.kind == "adhoc.run" for e in es))
    assert next(e for e in events if e.kind == "adhoc.run").data["result"]["changed"] is True
    await redis.set("redeliver:3", "v")  # would be deleted if the command ran again
    await harness.publish(command)

    events = await harness.audits(lambda es: sum(e.kind == "adhoc.run" for e in es) >= 2)
    second = [e for e in events if e.kind == "adhoc.run"][1]
    assert second.data["result"]["repeat_of"] is not None
    assert second.data["result"]["changed"] is False
    assert await redis.exists("redeliver:3") == 1
    rid = str(command.reply_to).rsplit("/", 1)[1]
    assert "deleted 2 keys" in await harness.reply(rid)


async def test_run_refusals_are_answered(harness: Harness) -> None:
    # Ingest knows the catalogue: an unknown action is refused at once, nothing published.
    answer, _ = await harness.slash(f"run cache.nuke {NAMESPACE}/api")
    assert "unknown action `cache.nuke`" in answer

    # Parameters are checked by the worker against the action's own model.
    answer, rid = await harness.slash(f"run cache.clear {NAMESPACE}/api pattern=x:* bogus=1")
    assert "accepted" in answer
    text = await harness.reply(rid)
    assert text.startswith(":x: Bad parameters for `cache.clear`"), text
    assert "bogus" in text

    # The actions' guards enforce the namespace allow-list.
    answer, rid = await harness.slash("run cache.clear kube-system/api pattern=x:*")
    text = await harness.reply(rid)
    assert text.startswith(":x: `cache.clear` on `deployment/kube-system/api` failed"), text
    assert "kube-system" in text

    # A well-formed action name the worker's catalogue lacks (an older ingest, say).
    command = Command(
        kind=CommandKind.RUN,
        idempotency_key=f"cli:{uuid.uuid4().hex}",
        actor=Actor(id=ALICE),
        source=CommandSource.CLI,
        issued_at=datetime.now(UTC),
        action="cache.nuke",
        target=f"{NAMESPACE}/api",
        reply_to=harness.slack.response_url(),
    )
    await harness.publish(command)
    text = await harness.reply(str(command.reply_to).rsplit("/", 1)[1])
    assert text.startswith(":x: Unknown action `cache.nuke`. Known actions:"), text
    assert "`cache.clear`" in text


async def silences(alertmanager: Any) -> list[dict[str, Any]]:
    async with (
        aiohttp.ClientSession(trust_env=False) as http,
        http.get(f"{alertmanager.url}/api/v2/silences") as response,
    ):
        assert response.status == 200
        body: list[dict[str, Any]] = await response.json()
        return body


async def test_silence_created_in_alertmanager(harness: Harness, alertmanager: Any) -> None:
    alertname = f"Adhoc{uuid.uuid4().hex[:8]}"
    before = datetime.now(UTC)
    answer, rid = await harness.slash(f"silence alertname={alertname},namespace={NAMESPACE} 30m")
    assert "`silence` accepted" in answer
    text = await harness.reply(rid)
    assert text.startswith(":mute: Silenced"), text
    silence_id = text.rsplit("silence id `", 1)[1].split("`", 1)[0]

    found = [s for s in await silences(alertmanager) if s["id"] == silence_id]
    assert len(found) == 1, found
    silence = found[0]
    assert silence["status"]["state"] == "active"
    assert sorted(silence["matchers"], key=lambda m: m["name"]) == [
        {"name": "alertname", "value": alertname, "isRegex": False, "isEqual": True},
        {"name": "namespace", "value": NAMESPACE, "isRegex": False, "isEqual": True},
    ]
    starts = datetime.fromisoformat(silence["startsAt"].replace("Z", "+00:00"))
    ends = datetime.fromisoformat(silence["endsAt"].replace("Z", "+00:00"))
    assert before.replace(microsecond=0) <= starts.replace(microsecond=0)
    assert abs((ends - starts).total_seconds() - 1800) < 2
    assert ALICE in silence["createdBy"]
    assert "MuseAroo Responder" in silence["comment"]

    # Delivered again (same idempotency key): the same silence, not a second one.
    audits = await harness.audits(lambda es: any(e.kind == "adhoc.silence" for e in es))
    key = next(e for e in audits if e.kind == "adhoc.silence").data["idempotency_key"]
    command = Command(
        kind=CommandKind.SILENCE,
        idempotency_key=key,
        actor=Actor(id=ALICE, name="alice"),
        source=CommandSource.SLACK_COMMAND,
        issued_at=datetime.now(UTC),
        matchers=[
            Matcher(name="alertname", value=alertname),
            Matcher(name="namespace", value=NAMESPACE),
        ],
        duration_s=1800,
    )
    await harness.publish(command)
    audits = await harness.audits(lambda es: sum(e.kind == "adhoc.silence" for e in es) >= 2)
    again = [e for e in audits if e.kind == "adhoc.silence"][1]
    assert again.data["repeat"] is True
    assert again.data["silence_id"] == silence_id
    ref = silence_ref(key)
    assert [s["id"] for s in await silences(alertmanager) if ref in s["comment"]] == [silence_id]


async def test_silence_with_negative_and_regex_matchers(
    harness: Harness, alertmanager: Any
) -> None:
    alertname = f"Adhoc{uuid.uuid4().hex[:8]}"
    answer, rid = await harness.slash(
        f'silence alertname={alertname},pod=~"api-.*",env!=staging 1h'
    )
    assert "`silence` accepted" in answer, answer
    text = await harness.reply(rid)
    assert text.startswith(":mute: Silenced"), text
    silence_id = text.rsplit("silence id `", 1)[1].split("`", 1)[0]
    [silence] = [s for s in await silences(alertmanager) if s["id"] == silence_id]
    assert sorted(silence["matchers"], key=lambda m: m["name"]) == [
        {"name": "alertname", "value": alertname, "isRegex": False, "isEqual": True},
        {"name": "env", "value": "staging", "isRegex": False, "isEqual": False},
        {"name": "pod", "value": "api-.*", "isRegex": True, "isEqual": True},
    ]


async def test_bad_matcher_is_refused(harness: Harness) -> None:
    for text in ("alertname!=Foo 30m", "alertname=~.* 30m", "alert-name=Foo 30m"):
        answer, rid = await harness.slash(f"silence {text}")
        assert answer.startswith(":warning:") or "not a valid" in answer, answer
        assert "accepted" not in answer
        assert not harness.slack.replies[rid]
    answer, _ = await harness.slash("silence alertname=Foo forever")
    assert "is not a duration" in answer
