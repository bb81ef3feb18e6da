"""Requests as Slack sends them to the responder: a Block Kit button press, signed.

Slack signs with v0: ``v0=`` + hex HMAC-SHA256(signing secret, ``v0:{timestamp}:{body}``),
computed here by slack-sdk's own ``SignatureVerifier``; the press is a form-encoded
``payload`` holding a ``block_actions`` interaction as Slack's reference shows it. The tests
and the demo (its "Acknowledge" press) send them to ingest's ``/v1/slack/interactions``.
"""

from __future__ import annotations

import json
import time
import urllib.parse

from slack_sdk.signature import SignatureVerifier


def signed_headers(body: bytes, secret: str, *, timestamp: int | None = None) -> dict[str, str]:
    """The headers Slack sends with ``body``, signed with ``secret`` at ``timestamp`` (now)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    assert signature is not None  # None only for a missing secret or timestamp
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
    }


def block_actions_body(
    action_id: str, value: str, *, user_id: str, trigger_id: str, response_url: str, ts: str
) -> bytes:
    payload = {
        "type": "block_actions",
        "team": {"id": "T9TK3CUKW", "domain": "example"},
        "user": {"id": user_id, "username": "alice", "name": "alice", "team_id": "T9TK3CUKW"},
        "api_app_id": "AABA1ABCD",
        "token": "9s8d9as89d8as9d8as989",
        "container": {
            "type": "message",
            "message_ts": ts,
            "channel_id": "C0INCIDENT",
            "is_ephemeral": False,
        },
        "trigger_id": trigger_id,
        "channel": {"id": "C0INCIDENT", "name": "incidents"},
        "message": {"type": "message", "ts": ts, "text": "incident"},
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": "responder_actions",
                "text": {"type": "plain_text", "text": "Approve", "emoji": True},
                "value": value,
                "style": "primary",
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
