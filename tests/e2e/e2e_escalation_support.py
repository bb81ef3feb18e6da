"""Helpers of the escalation end-to-end test: secrets, runbooks, settings, signed requests.

Requests are signed exactly as Slack (v0 HMAC over ``v0:timestamp:body``) and PagerDuty
(webhooks v3 ``v1=`` HMAC over the body) sign them, with payloads shaped as their
documentation shows.
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from responder.integrations.pagerduty.webhooks import sign
from responder.settings import (
    ChatOpsAllowList,
    IngestSettings,
    NotifySettings,
    PagerDutySettings,
    Settings,
    SlackSettings,
)
from responder_dev.fakes.slack_requests import signed_headers

BOT_TOKEN = "xoxb-1111111111-2222222222-E2eBoTtOkEn"
SIGNING_SECRET = "e2e-slack-signing-secret-0123456789abcdef"
WEBHOOK_SECRET = "e2e-pagerduty-webhook-secret-0123456789"
DEFAULT_KEY = "E2EDEFAULTR0UT1NGKEYE2EDEFAULT32"
ONCALL_KEY = "E2E0NCALLR0UT1NGKEYE2E0NCALLK032"
ALICE = "U0ALICE"
MALLORY = "U0MALLORY"
TOKEN = "e2e-escalation-token"
THIRD_LEVEL_WAIT_S = 6.0
"""The #ops level of the failing runbook fires this long after the page, unless acked."""

RUNBOOKS = {
    "failing": """
apiVersion: responder/v1
id: failing
match: {alertname: E7Failing}
target: {namespace: "{{ labels.namespace }}", name: "{{ labels.service }}"}
auto_recovery: true
cooldown: 0s
max_actions: {count: 20, per: 1h}
steps:
  - action: cache.clear
    with: {pattern: "gen:*"}
    timeout: 20s
    verify: {alert_resolved: true, within: 30s}
  - action: model.reload
    with: {path: /admin/reload, port: 8080}
    timeout: 20s
    verify: {alert_resolved: true, within: 30s}
escalation:
  after: 120s
  chain:
    - {notify: slack, channel: "#incidents"}
    - {notify: pagerduty, routing_key_ref: oncall, wait: 1s}
    - {notify: slack, channel: "#ops", wait: 6s}
""",
    "gated": """
apiVersion: responder/v1
id: gated
match: {alertname: E7Gated}
target: {namespace: "{{ labels.namespace }}", name: "{{ labels.service }}"}
auto_recovery: false
cooldown: 0s
max_actions: {count: 20, per: 1h}
steps:
  - action: deployment.restart
    with: {}
    timeout: 20s
    verify: {alert_resolved: true, within: 60s}
    approval: required
escalation:
  after: 0s
  chain:
    - {notify: slack, channel: "#incidents"}
    - {notify: pagerduty, routing_key_ref: oncall, wait: 0s}
""",
}


def write_runbooks(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for rid, text in RUNBOOKS.items():
        (directory / f"{rid}.yaml").write_text(text)


def labels(rid: str) -> dict[str, str]:
    return {
        "alertname": f"E7{rid.capitalize()}",
        "namespace": "musearoo",
        "service": f"{rid}-engine",
        "severity": "critical",
    }


def slack_settings(slack_url: str) -> SlackSettings:
    return SlackSettings(
        enabled=True,
        bot_token=SecretStr(BOT_TOKEN),
        signing_secret=SecretStr(SIGNING_SECRET),
        base_url=slack_url + "/api/",
        timeout_s=5.0,
        allow=ChatOpsAllowList(users=frozenset({ALICE})),
        response_url_hosts=frozenset({"127.0.0.1"}),
        response_url_require_https=False,
    )


def pagerduty_settings(events_url: str, ca_file: Path) -> PagerDutySettings:
    return PagerDutySettings(
        enabled=True,
        events_url=events_url,
        ca_file=str(ca_file),
        trust_env=False,
        routing_keys={"default": SecretStr(DEFAULT_KEY), "oncall": SecretStr(ONCALL_KEY)},
        webhook_secrets=(SecretStr(WEBHOOK_SECRET),),
        timeout_s=5.0,
        max_attempts=3,
        backoff_base_s=0.2,
        backoff_cap_s=2.0,
    )


def with_integrations(base: Settings, slack_url: str, pd_url: str, ca_file: Path) -> Settings:
    return base.model_copy(
        update={
            "ingest": IngestSettings(bearer_token=SecretStr(TOKEN)),
            "slack": slack_settings(slack_url),
            "pagerduty": pagerduty_settings(pd_url, ca_file),
            "notify": NotifySettings(retry_budget_s=20.0, retry_max_delay_s=2.0),
        }
    )


# --- Slack, signed as Slack signs ----------------------------------------------------------


def slack_headers(
    body: bytes, *, timestamp: int | None = None, secret: str = SIGNING_SECRET
) -> dict[str, str]:
    return signed_headers(body, secret, timestamp=timestamp)


def slash_body(text: str, *, user_id: str, trigger_id: str, response_url: str = "") -> bytes:
    return urllib.parse.urlencode(
        {
            "token": "gIkuvaNzQIHg97ATvDxqgjtO",
            "team_id": "T0001",
            "team_domain": "example",
            "channel_id": "C0INCIDENT",
            "channel_name": "incidents",
            "user_id": user_id,
            "user_name": "alice",
            "command": "/responder",
            "text": text,
            "response_url": response_url,
            "trigger_id": trigger_id,
            "api_app_id": "A123456",
        }
    ).encode()


def find_button(blocks: list[dict[str, Any]], action_id: str) -> dict[str, Any] | None:
    for block in blocks:
        for element in block.get("elements", []):
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return element
    return None


# --- PagerDuty webhooks v3, signed as PagerDuty signs ---------------------------------------


def pagerduty_webhook(event_type: str, incident_id: str, *, event_id: str) -> bytes:
    return json.dumps(
        {
            "event": {
                "id": event_id,
                "event_type": event_type,
                "resource_type": "incident",
                "occurred_at": "2026-11-30T03:40:22.169Z",
                "agent": {
                    "html_url": "https://acme.pagerduty.com/users/PLH1HKV",
                    "id": "PLH1HKV",
                    "self": "https://api.pagerduty.com/users/PLH1HKV",
                    "summary": "Tenex Engineer",
                    "type": "user_reference",
                },
                "client": {"name": "PagerDuty"},
                "data": {
                    "id": "PGR0VU2",
                    "type": "incident",
                    "self": "https://api.pagerduty.com/incidents/PGR0VU2",
                    "html_url": "https://acme.pagerduty.com/incidents/PGR0VU2",
                    "number": 2,
                    "status": "acknowledged",
                    "incident_key": incident_id,
                    "created_at": "2026-11-30T03:16:27Z",
                    "title": "failing on musearoo/failing-engine",
                },
            }
        }
    ).encode()


def pagerduty_headers(
    body: bytes, *, webhook_id: str, secret: str = WEBHOOK_SECRET
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-PagerDuty-Signature": sign(body, secret),
        "X-Webhook-Id": webhook_id,
    }
