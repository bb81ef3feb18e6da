"""Answers on a Slack ``response_url``: the result of a command, after the 3-second ack.

A ``response_url`` arrives inside a signed request, but it is still a URL we are
told to POST to: only hosts in ``SlackSettings.response_url_hosts`` (and https,
unless turned off for the local test server) are ever contacted.
"""

from __future__ import annotations

import urllib.parse

import aiohttp
import structlog
from slack_sdk.webhook.async_client import AsyncWebhookClient

from responder.errors import PermanentError, TemporaryError
from responder.settings import SlackSettings

log = structlog.get_logger(__name__)


class ResponseUrlReplier:
    """Posts ephemeral answers to response URLs on allowed hosts."""

    def __init__(self, settings: SlackSettings) -> None:
        self._hosts = settings.response_url_hosts
        self._https = settings.response_url_require_https
        self._timeout_s = max(1, round(settings.timeout_s))

    def is_allowed(self, url: str) -> bool:
        try:
            parts = urllib.parse.urlsplit(url)
        except ValueError:
            return False
        schemes = {"https"} if self._https else {"https", "http"}
        return (
            parts.scheme in schemes
            and parts.hostname is not None
            and parts.hostname in self._hosts
            and parts.username is None
            and parts.password is None
        )

    async def reply(self, url: str, text: str, *, replace_original: bool = False) -> None:
        """Post ``text`` visible only to the person who asked."""
        if not self.is_allowed(url):
            raise PermanentError("response_url is not on an allowed host")
        client = AsyncWebhookClient(url, timeout=self._timeout_s)
        try:
            response = await client.send(
                text=text, response_type="ephemeral", replace_original=replace_original
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TemporaryError(f"response_url: {type(exc).__name__}", delay=2.0) from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise TemporaryError(f"response_url: HTTP {response.status_code}", delay=2.0)
        if response.status_code != 200:
            # 404 expired_url / used_url: the 30 minutes or the 5 uses are gone; nothing to retry.
            log.warning(
                "slack.response_url_refused", status=response.status_code, body=response.body[:100]
            )
            raise PermanentError(f"response_url: HTTP {response.status_code}")
