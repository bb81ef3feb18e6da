"""Slack: the incident message out (Block Kit, updated in place), slash command and buttons in."""

from responder.integrations.slack.authz import Authorizer, SlackUserGroupDirectory
from responder.integrations.slack.inbound import SlackRequestVerifier, Verdict
from responder.integrations.slack.notifier import (
    InMemorySlackMessageStore,
    SlackMessageRef,
    SlackMessageStore,
    SlackNotifier,
    build_web_client,
)
from responder.integrations.slack.reply import ResponseUrlReplier

__all__ = [
    "Authorizer",
    "InMemorySlackMessageStore",
    "ResponseUrlReplier",
    "SlackMessageRef",
    "SlackMessageStore",
    "SlackNotifier",
    "SlackRequestVerifier",
    "SlackUserGroupDirectory",
    "Verdict",
    "build_web_client",
]
