"""The Slack and PagerDuty settings groups read from the environment as documented."""

from __future__ import annotations

import pytest
from integrations_support import ROUTING_KEY, SECRETS

from responder.settings import Settings


def test_environment_fills_the_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "RESPONDER_SLACK__ENABLED": "true",
        "RESPONDER_SLACK__BOT_TOKEN": SECRETS[0],
        "RESPONDER_SLACK__SIGNING_SECRET": SECRETS[1],
        "RESPONDER_SLACK__ALLOW": '{"users": ["U1"], "user_groups": ["S1"]}',
        "RESPONDER_SLACK__RUNBOOK_ALLOW": '{"database_performance": {"users": ["U2"]}}',
        "RESPONDER_PAGERDUTY__ENABLED": "true",
        "RESPONDER_PAGERDUTY__ROUTING_KEYS": f'{{"default": "{ROUTING_KEY}"}}',
        "RESPONDER_PAGERDUTY__WEBHOOK_SECRETS": f'["{SECRETS[4]}", "{SECRETS[5]}"]',
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.slack.allow.users == {"U1"}
    assert settings.slack.runbook_allow["database_performance"].users == {"U2"}
    assert settings.pagerduty.routing_keys["default"].get_secret_value() == ROUTING_KEY
    assert len(settings.pagerduty.webhook_secrets) == 2
    assert settings.pagerduty.events_per_minute == 120
    assert all(secret not in repr(settings) for secret in SECRETS)


def test_enabled_without_secrets_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESPONDER_SLACK__ENABLED", "true")
    with pytest.raises(ValueError, match=r"bot_token and slack\.signing_secret"):
        Settings()
    monkeypatch.delenv("RESPONDER_SLACK__ENABLED")
    monkeypatch.setenv("RESPONDER_PAGERDUTY__ENABLED", "true")
    with pytest.raises(ValueError, match="default_service 'default' has no routing key"):
        Settings()
