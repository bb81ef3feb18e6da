"""Who may change things from Slack: read-only for the workspace, mutating for the allow-list.

The allow-list names Slack user ids and user group ids, globally or per runbook
(``SlackSettings.allow`` / ``runbook_allow``). Group membership is read with
``usergroups.users.list`` and cached; if it cannot be read the answer is no
(fail closed), with a reason the person sees.
"""

from __future__ import annotations

from typing import Protocol

import aiohttp
import structlog
from pydantic import BaseModel, ConfigDict
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from responder.clock import Clock, SystemClock
from responder.errors import PermanentError, TemporaryError
from responder.integrations.slack.notifier import classify
from responder.settings import ChatOpsAllowList, SlackSettings

log = structlog.get_logger(__name__)


class Decision(BaseModel):
    model_config = ConfigDict(frozen=True)

    allowed: bool
    reason: str


class UserGroupDirectory(Protocol):
    async def members(self, group_id: str) -> frozenset[str]:
        """User ids in the group; raises ``TemporaryError`` when Slack cannot say."""
        ...


class SlackUserGroupDirectory:
    """``usergroups.users.list`` with a TTL cache (membership changes rarely; Slack rate-limits)."""

    def __init__(self, client: AsyncWebClient, *, ttl_s: float, clock: Clock | None = None) -> None:
        self._client = client
        self._ttl_s = ttl_s
        self._clock = clock or SystemClock()
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}

    async def members(self, group_id: str) -> frozenset[str]:
        now = self._clock.monotonic()
        cached = self._cache.get(group_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            response = await self._client.usergroups_users_list(usergroup=group_id)
        except (SlackApiError, SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            raise classify(exc, "usergroups.users.list") from exc
        users = response.get("users") or []
        members = frozenset(u for u in users if isinstance(u, str))
        self._cache[group_id] = (now + self._ttl_s, members)
        return members


class Authorizer:
    """Decides whether a Slack user may give a mutating command for a runbook's incident."""

    def __init__(self, settings: SlackSettings, directory: UserGroupDirectory | None) -> None:
        self._settings = settings
        self._directory = directory

    def allow_list(self, runbook_id: str | None) -> ChatOpsAllowList:
        if runbook_id is not None and runbook_id in self._settings.runbook_allow:
            return self._settings.runbook_allow[runbook_id]
        return self._settings.allow

    async def may_mutate(self, user_id: str, runbook_id: str | None) -> Decision:
        allow = self.allow_list(runbook_id)
        if user_id in allow.users:
            return Decision(allowed=True, reason="user is allow-listed")
        directory = self._directory
        if allow.user_groups and directory is None:
            return Decision(allowed=False, reason="user groups cannot be checked here")
        for group in sorted(allow.user_groups):
            assert directory is not None
            try:
                members = await directory.members(group)
            except (TemporaryError, PermanentError) as exc:
                log.warning("slack.group_lookup_failed", group=group, error=type(exc).__name__)
                return Decision(
                    allowed=False, reason="could not check your user groups; try again shortly"
                )
            if user_id in members:
                return Decision(allowed=True, reason=f"member of {group}")
        scope = (
            f"runbook {runbook_id}"
            if runbook_id in self._settings.runbook_allow
            else "this workspace"
        )
        return Decision(allowed=False, reason=f"you are not allowed to change incidents of {scope}")
