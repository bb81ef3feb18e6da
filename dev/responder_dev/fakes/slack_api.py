"""A local Slack: the Web API methods we call, plus response_url endpoints.

Checks what Slack's reference documents for each method: the bot token as
``Authorization: Bearer xoxb-…`` (``not_authed`` / ``invalid_auth``), JSON or form
bodies, required arguments (``channel``, ``ts``, some text or blocks), channel ids
where Slack requires ids (chat.update), Block Kit limits (50 blocks, button text
75 characters, header text 150), and answers HTTP 200 with ``{"ok": false,
"error": …}`` on errors as Slack does. 429 with ``Retry-After`` can be scripted.
A ``response_url`` takes at most 5 posts, as Slack's does.
"""

from __future__ import annotations

import itertools
import json
import urllib.parse
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from responder_dev.fakes.http import LoopbackServer, Recorded


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    edits: int = 0


@dataclass
class Scripted:
    status: int = 200
    retry_after: int | None = None
    error: str | None = None


@dataclass
class FakeSlack:
    """Slack Web API + response_url stand-in. ``url`` is the base for ``base_url=url + '/api/'``."""

    token: str = "xoxb-0000000000-fake-bot-token"  # noqa: S105 - the fake's own test token
    channels: dict[str, str] = field(
        default_factory=lambda: {"#incidents": "C0INCIDENT", "#ops": "C0OPS"}
    )
    user_groups: dict[str, list[str]] = field(default_factory=dict)
    calls: list[Recorded] = field(default_factory=list)
    messages: dict[str, Message] = field(default_factory=dict)
    replies: dict[str, list[Recorded]] = field(default_factory=lambda: defaultdict(list))
    script: dict[str, list[Scripted]] = field(default_factory=lambda: defaultdict(list))

    def __post_init__(self) -> None:
        self._ts = itertools.count(1)
        self._reply_ids = itertools.count(1)
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_post("/response/{rid}", self._response_url)
        self._server = LoopbackServer(app)
        self.url = ""

    async def start(self) -> str:
        self.url = await self._server.start()
        return self.url

    async def stop(self) -> None:
        await self._server.stop()

    # -- test helpers ---------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        *,
        status: int = 200,
        retry_after: int | None = None,
        error: str | None = None,
    ) -> None:
        self.script[method].append(Scripted(status=status, retry_after=retry_after, error=error))

    def response_url(self) -> str:
        return f"{self.url}/response/{next(self._reply_ids)}"

    def calls_to(self, method: str) -> list[Recorded]:
        return [c for c in self.calls if c.path == method]

    def top_level(self) -> list[Message]:
        return [m for m in self.messages.values() if m.thread_ts is None]

    def thread(self, ts: str) -> list[Message]:
        return [m for m in self.messages.values() if m.thread_ts == ts]

    # -- the API --------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        raw = await request.read()
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip()
        if ctype == "application/json":
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                return self._err("invalid_json")
            if not isinstance(body, dict):
                return self._err("invalid_json")
        elif request.method == "GET" or ctype in ("application/x-www-form-urlencoded", ""):
            body = dict(urllib.parse.parse_qsl(raw.decode()))
            body.update(request.query)
        else:
            return self._err("invalid_form_data")
        self.calls.append(Recorded(path=method, headers=dict(request.headers), raw=raw, body=body))
        auth = request.headers.get("Authorization")
        if auth is None and "token" not in body:
            return self._err("not_authed")
        if auth != f"Bearer {self.token}" and body.get("token") != self.token:
            return self._err("invalid_auth")
        if self.script[method]:
            scripted = self.script[method].pop(0)
            if scripted.status == 429:
                headers = {"Retry-After": str(scripted.retry_after or 1)}
                return web.json_response(
                    {"ok": False, "error": "ratelimited"}, status=429, headers=headers
                )
            if scripted.status >= 500:
                return web.Response(status=scripted.status, text="upstream trouble")
            if scripted.error:
                return self._err(scripted.error)
        handler = {
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "usergroups.users.list": self._usergroup_users,
            "auth.test": self._auth_test,
        }.get(method)
        if handler is None:
            return self._err("unknown_method")
        return handler(body)

    @staticmethod
    def _err(error: str) -> web.Response:
        return web.json_response({"ok": False, "error": error})

    def _check_content(self, body: dict[str, Any]) -> str | None:
        text, blocks = body.get("text"), body.get("blocks")
        if isinstance(blocks, str):
            try:
                blocks = json.loads(blocks)
            except ValueError:
                return "invalid_blocks"
        if not text and not blocks and not body.get("attachments"):
            return "no_text"
        if text is not None and (not isinstance(text, str) or len(text) > 40_000):
            return "msg_too_long"
        if blocks is not None:
            if not isinstance(blocks, list) or len(blocks) > 50:
                return "invalid_blocks"
            for block in blocks:
                if not isinstance(block, dict) or "type" not in block:
                    return "invalid_blocks"
                if block["type"] == "header" and len(block["text"]["text"]) > 150:
                    return "invalid_blocks"
                if block["type"] == "section" and len(block.get("fields", [])) > 10:
                    return "invalid_blocks"
                for element in block.get("elements", []) if block["type"] == "actions" else []:
                    if element.get("type") == "button" and (
                        len(element["text"]["text"]) > 75 or len(element.get("value", "")) > 2000
                    ):
                        return "invalid_blocks"
        body["blocks"] = blocks or []
        return None

    def _resolve_channel(self, channel: Any) -> str | None:
        if not isinstance(channel, str) or not channel:
            return None
        if channel in self.channels.values():
            return channel
        return self.channels.get(channel)

    def _post_message(self, body: dict[str, Any]) -> web.Response:
        if "channel" not in body:
            return self._err("channel_not_found")
        channel = self._resolve_channel(body["channel"])
        if channel is None:
            return self._err("channel_not_found")
        problem = self._check_content(body)
        if problem:
            return self._err(problem)
        thread_ts = body.get("thread_ts")
        if thread_ts is not None and thread_ts not in self.messages:
            return self._err("thread_not_found")
        ts = f"1700000000.{next(self._ts):06d}"
        message = Message(channel, ts, body.get("text", ""), body["blocks"], thread_ts)
        self.messages[ts] = message
        return web.json_response(
            {
                "ok": True,
                "channel": channel,
                "ts": ts,
                "message": {"type": "message", "text": message.text, "ts": ts},
            }
        )

    def _update(self, body: dict[str, Any]) -> web.Response:
        channel, ts = body.get("channel"), body.get("ts")
        if not channel or channel not in self.channels.values():
            return self._err("channel_not_found")  # chat.update wants an id, not a #name
        if not ts or ts not in self.messages or self.messages[ts].channel != channel:
            return self._err("message_not_found")
        problem = self._check_content(body)
        if problem:
            return self._err(problem)
        message = self.messages[ts]
        message.text, message.blocks = body.get("text", message.text), body["blocks"]
        message.edits += 1
        return web.json_response({"ok": True, "channel": channel, "ts": ts, "text": message.text})

    def _usergroup_users(self, body: dict[str, Any]) -> web.Response:
        group = body.get("usergroup")
        if not group:
            return self._err("invalid_arguments")
        if group not in self.user_groups:
            return self._err("no_such_subteam")
        return web.json_response({"ok": True, "users": self.user_groups[group]})

    def _auth_test(self, body: dict[str, Any]) -> web.Response:
        return web.json_response(
            {
                "ok": True,
                "url": "https://fake.slack.com/",
                "team": "Fake",
                "user": "responder",
                "team_id": "T0FAKE",
                "user_id": "U0BOT",
                "bot_id": "B0BOT",
            }
        )

    async def _response_url(self, request: web.Request) -> web.StreamResponse:
        rid = request.match_info["rid"]
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        if len(self.replies[rid]) >= 5:
            return web.Response(status=404, text="used_url")
        if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
            return web.Response(status=400, text="no_text")
        self.replies[rid].append(
            Recorded(path=rid, headers=dict(request.headers), raw=raw, body=body)
        )
        return web.Response(text="ok")
