"""Fixtures for the ingest service: settings with credentials, the docs payload, clients."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from responder.errors import TemporaryError
from responder.ingest.app import create_app
from responder.settings import IngestSettings

TOKEN = "t0ken-for-tests"
BASIC = ("alertmanager", "pa55word")


@pytest.fixture
def ingest_settings() -> IngestSettings:
    return IngestSettings(
        bearer_token=SecretStr(TOKEN),
        basic_username=BASIC[0],
        basic_password=SecretStr(BASIC[1]),
        max_body_bytes=64 * 1024,
        retry_after_s=7,
    )


@pytest.fixture
def docs_payload() -> dict[str, Any]:
    """The v4 payload shaped as Alertmanager's docs describe it (shared with tests/models)."""
    path = Path(__file__).parents[1] / "models" / "alertmanager_v4.json"
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


class RecordingPublisher:
    """The publisher Protocol in memory: records what it was given, or fails as a broker would.

    Used only where the broker's answer is not what is under test (auth, schema, limits);
    the broker-facing behaviour is tested against the real Kafka in test_webhook_kafka.py.
    """

    def __init__(self) -> None:
        self.messages: list[tuple[bytes, bytes]] = []
        self.unavailable = False

    async def publish(self, messages: Sequence[tuple[bytes, bytes]]) -> None:
        if self.unavailable:
            raise TemporaryError("broker down (test)", delay=7)
        self.messages += messages

    async def ready(self) -> bool:
        return not self.unavailable


@pytest.fixture
def recording() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
async def client(
    ingest_settings: IngestSettings, recording: RecordingPublisher
) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(create_app(ingest_settings, recording))) as test_client:
        yield test_client
