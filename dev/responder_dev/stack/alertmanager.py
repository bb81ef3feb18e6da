"""Alertmanager for the local stack: Debian's ``prometheus-alertmanager``, routing to our ingest.

It is the responder's real client: the demo and the end-to-end tests post alerts to
its ``/api/v2/alerts`` and it delivers them to ``POST /v1/alertmanager`` with bearer
auth, exactly as in production. The config is ``deploy/alertmanager/alertmanager.yml``
with the webhook URL, token and timings filled in; ``configure`` replaces them on a
running instance through ``/-/reload``. Clustering is off (no gossip port, no peers):
a single instance on loopback.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from responder.errors import ConfigError, TemporaryError
from responder_dev.stack import process
from responder_dev.stack.service import ReloadableService
from responder_dev.stack.templates import dump_yaml, load_yaml, require_loopback

TEMPLATE = "alertmanager/alertmanager.yml"


@dataclass(frozen=True)
class Route:
    """Where and how Alertmanager delivers (durations in seconds)."""

    webhook_url: str
    token: str = field(repr=False)
    group_by: tuple[str, ...]
    group_wait_s: int
    group_interval_s: int
    repeat_interval_s: int


class Alertmanager(ReloadableService):
    """``prometheus-alertmanager`` bound to 127.0.0.1, one receiver: the responder's webhook."""

    def __init__(
        self,
        home: Path,
        *,
        port: int,
        webhook_url: str,
        token: str,
        group_by: Sequence[str] = ("alertname", "namespace"),
        group_wait_s: int = 0,
        group_interval_s: int = 10,
        repeat_interval_s: int = 3600,
        start_timeout_s: float = 60.0,
        stop_timeout_s: float = 10.0,
    ) -> None:
        super().__init__(
            "alertmanager",
            home,
            port=port,
            config_name="alertmanager.yml",
            start_timeout_s=start_timeout_s,
            stop_timeout_s=stop_timeout_s,
        )
        self.route = Route(
            webhook_url, token, tuple(group_by), group_wait_s, group_interval_s, repeat_interval_s
        )
        self.render_config(self.route)  # refuse a bad webhook now, not at the first start

    def configure(
        self,
        *,
        webhook_url: str,
        token: str,
        group_by: Sequence[str] | None = None,
        group_wait_s: int | None = None,
        group_interval_s: int | None = None,
        repeat_interval_s: int | None = None,
    ) -> None:
        """Route every alert to ``webhook_url`` with ``Authorization: Bearer <token>``; reload
        when running. Omitted timings keep their current values; a config Alertmanager
        rejects changes nothing."""
        current = self.route
        route = Route(
            webhook_url,
            token,
            tuple(group_by) if group_by is not None else current.group_by,
            group_wait_s if group_wait_s is not None else current.group_wait_s,
            group_interval_s if group_interval_s is not None else current.group_interval_s,
            repeat_interval_s if repeat_interval_s is not None else current.repeat_interval_s,
        )
        self._replace_config(self.render_config(route), private=True)
        self.route = route

    def post_alerts(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        """Inject alerts as Prometheus does (``POST /api/v2/alerts``: labels, annotations,
        startsAt, endsAt; an ``endsAt`` in the past resolves)."""
        status, body = process.http_request(
            self.port, "/api/v2/alerts", method="POST", body=json.dumps(list(alerts)).encode()
        )
        if status != 200:
            raise TemporaryError(f"alertmanager refused the alerts: {status} {body}")

    def command(self) -> list[str]:
        binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
        if binary is None:
            raise ConfigError(
                "prometheus-alertmanager is not installed: run deploy/local/install.sh"
            )
        return [
            binary,
            f"--config.file={self.config_file}",
            f"--storage.path={self.home / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--web.external-url={self.url}",
            # An empty address turns clustering off: no gossip listener on 0.0.0.0:9094.
            "--cluster.listen-address=",
        ]

    def render_config(self, route: Route) -> dict[str, Any]:
        """The template routing to ``route``'s webhook, token and timings."""
        require_loopback(route.webhook_url, what="alertmanager webhook")
        if not route.token:
            raise ConfigError("alertmanager: the webhook bearer token must not be empty")
        config = load_yaml(TEMPLATE)
        tree = config["route"]
        tree["group_by"] = list(route.group_by)
        tree["group_wait"] = f"{route.group_wait_s}s"
        tree["group_interval"] = f"{route.group_interval_s}s"
        tree["repeat_interval"] = f"{route.repeat_interval_s}s"
        (webhook,) = next(
            r["webhook_configs"] for r in config["receivers"] if r["name"] == tree["receiver"]
        )
        webhook["url"] = route.webhook_url
        webhook["http_config"]["authorization"] = {"type": "Bearer", "credentials": route.token}
        return config

    def _write_config(self) -> None:
        # The file holds the token: readable by its owner only.
        dump_yaml(self.render_config(self.route), self.config_file, private=True)
