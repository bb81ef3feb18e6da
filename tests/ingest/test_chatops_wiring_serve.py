"""``responder serve`` mounts ChatOps when its secrets are set: the real command, on loopback."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from responder.integrations.pagerduty.webhooks import sign
from responder_dev.stack.process import free_port

RESPONDER = Path(sys.executable).with_name("responder")
SIGNING_SECRET = "serve-test-signing-secret"
WEBHOOK_SECRET = "serve-test-webhook-secret"


@pytest.fixture
def serve(kafka: Any, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESPONDER_")} | {
        "RESPONDER_KAFKA__BOOTSTRAP": kafka.bootstrap,
        "RESPONDER_KAFKA__TOPIC_PREFIX": f"s{uuid.uuid4().hex[:8]}",
        "RESPONDER_INGEST__HOST": "127.0.0.1",
        "RESPONDER_INGEST__PORT": str(port),
        "RESPONDER_INGEST__BEARER_TOKEN": "serve-test-token",
        "RESPONDER_SLACK__SIGNING_SECRET": SIGNING_SECRET,
        "RESPONDER_PAGERDUTY__WEBHOOK_SECRETS": f'["{WEBHOOK_SECRET}"]',
    }
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [str(RESPONDER), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
        sys.stderr.write((tmp_path / "serve.log").read_text(errors="replace")[-4000:])


def slack_headers(body: bytes) -> dict[str, str]:
    ts = str(int(time.time()))
    digest = hmac.new(SIGNING_SECRET.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256)
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": "v0=" + digest.hexdigest(),
    }


async def test_serve_answers_slack_and_pagerduty_and_refuses_the_unsigned(serve: str) -> None:
    async with aiohttp.ClientSession() as http:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while True:  # until the process listens and its broker connection is up
            try:
                async with http.get(f"{serve}/readyz") as ready:
                    if ready.status == 200:
                        break
            except aiohttp.ClientConnectionError:
                pass
            assert loop.time() < deadline, "responder serve did not become ready"
            await asyncio.sleep(0.2)  # polling interval, bounded by the deadline

        body = urllib.parse.urlencode(
            {
                "team_id": "T1",
                "user_id": "U1",
                "user_name": "alice",
                "command": "/responder",
                "text": "list",
                "response_url": "",
                "trigger_id": "t1",
            }
        ).encode()
        async with http.post(
            f"{serve}/v1/slack/commands", data=body, headers=slack_headers(body)
        ) as response:
            assert response.status == 200
            assert (await response.json())["text"] == ":sunny: No open incidents."
        async with http.post(
            f"{serve}/v1/slack/commands",
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ) as response:
            assert response.status == 401

        webhook = b'{"event": {"id": "E1", "event_type": "incident.acknowledged"}}'
        async with http.post(
            f"{serve}/v1/pagerduty",
            data=webhook,
            headers={"X-PagerDuty-Signature": sign(webhook, "wrong-secret")},
        ) as response:
            assert response.status == 401
