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
from pathlib import Path
from typing import Any

from responder.errors import ConfigError, TemporaryError
from responder.stack import process
from responder.stack.service import ProcessService, Progress
from responder.stack.templates import dump_yaml, load_yaml, require_loopback

TEMPLATE = "alertmanager/alertmanager.yml"


class Alertmanager(ProcessService):
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
            ports=(port,),
            start_timeout_s=start_timeout_s,
            stop_timeout_s=stop_timeout_s,
        )
        self.port = port
        self.config_file = self.home / "alertmanager.yml"
        self.webhook_url = webhook_url
        self.token = token
        self.group_by = tuple(group_by)
        self.group_wait_s = group_wait_s
        self.group_interval_s = group_interval_s
        self.repeat_interval_s = repeat_interval_s
        self.render_config()  # refuse a bad webhook now, not at the first start

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> str:
        return self.url

    @property
    def marker(self) -> str:
        return str(self.config_file)

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
        when running. Omitted timings keep their current values."""
        self.webhook_url = webhook_url
        self.token = token
        if group_by is not None:
            self.group_by = tuple(group_by)
        if group_wait_s is not None:
            self.group_wait_s = group_wait_s
        if group_interval_s is not None:
            self.group_interval_s = group_interval_s
        if repeat_interval_s is not None:
            self.repeat_interval_s = repeat_interval_s
        self.home.mkdir(parents=True, exist_ok=True)
        self._write_config()
        if self.pid() is not None:
            self.reload()

    def reload(self) -> None:
        """Make the running server read its config file again (``POST /-/reload``)."""
        status, body = process.http_request(self.port, "/-/reload", method="POST", timeout_s=30)
        if status != 200:
            raise ConfigError(
                f"alertmanager rejected its config {self.config_file}: {status} {body}"
            )

    def post_alerts(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        """Inject alerts as Prometheus does (``POST /api/v2/alerts``: labels, annotations,
        startsAt, endsAt; an ``endsAt`` in the past resolves)."""
        status, body = process.http_request(
            self.port, "/api/v2/alerts", method="POST", body=json.dumps(list(alerts)).encode()
        )
        if status != 200:
            raise TemporaryError(f"alertmanager refused the alerts: {status} {body}")

    def prepare(self, progress: Progress) -> None:
        (self.home / "data").mkdir(parents=True, exist_ok=True)
        self._write_config()

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

    def probe(self) -> bool:
        return process.http_request(self.port, "/-/ready")[0] == 200

    def render_config(self) -> dict[str, Any]:
        """The template routing to this instance's webhook, token and timings."""
        require_loopback(self.webhook_url, what="alertmanager webhook")
        if not self.token:
            raise ConfigError("alertmanager: the webhook bearer token must not be empty")
        config = load_yaml(TEMPLATE)
        route = config["route"]
        route["group_by"] = list(self.group_by)
        route["group_wait"] = f"{self.group_wait_s}s"
        route["group_interval"] = f"{self.group_interval_s}s"
        route["repeat_interval"] = f"{self.repeat_interval_s}s"
        (webhook,) = next(
            r["webhook_configs"] for r in config["receivers"] if r["name"] == route["receiver"]
        )
        webhook["url"] = self.webhook_url
        webhook["http_config"]["authorization"] = {"type": "Bearer", "credentials": self.token}
        return config

    def _write_config(self) -> None:
        # The file holds the token: readable by its owner only.
        dump_yaml(self.render_config(), self.config_file, private=True)
