"""Prometheus for the local stack: Debian's ``prometheus``, loopback only, reloadable.

It scrapes the ingest service's ``/metrics``, evaluates the alert rules of
``deploy/prometheus/rules/`` and sends alerts to the stack's Alertmanager; the
metric-stream poller and the runbooks' PromQL verifications query it. Its config is
``deploy/prometheus/prometheus.yml`` with this instance's ports filled in; tests point
it at their own targets with ``configure`` (a live reload, no restart).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from responder.errors import ConfigError
from responder.stack import process
from responder.stack.service import ProcessService, Progress
from responder.stack.templates import DEPLOY_DIR, dump_yaml, load_yaml, require_loopback

TEMPLATE = "prometheus/prometheus.yml"
INGEST_JOB = "responder-ingest"


class Prometheus(ProcessService):
    """``prometheus`` bound to 127.0.0.1 with the lifecycle API on (for ``/-/reload``)."""

    def __init__(
        self,
        home: Path,
        *,
        port: int,
        scrape_targets: Mapping[str, Sequence[str]] | None = None,
        alertmanager: str | None = None,
        rule_files: Sequence[str] | None = None,
        scrape_interval_s: int = 5,
        start_timeout_s: float = 60.0,
        stop_timeout_s: float = 10.0,
    ) -> None:
        """``scrape_targets``: job name → ``host:port`` list (None: the template's jobs);
        ``alertmanager``: ``host:port`` or None for no alerting; ``rule_files``: globs
        (None: the project's rules under deploy/prometheus/)."""
        super().__init__(
            "prometheus",
            home,
            ports=(port,),
            start_timeout_s=start_timeout_s,
            stop_timeout_s=stop_timeout_s,
        )
        self.port = port
        self.config_file = self.home / "prometheus.yml"
        self.scrape_interval_s = scrape_interval_s
        self._scrape_targets = scrape_targets
        self._alertmanager = alertmanager
        self._rule_files = rule_files
        self.render_config()  # refuse a bad target now, not at the first start

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
        scrape_targets: Mapping[str, Sequence[str]] | None = None,
        alertmanager: str | None = None,
        rule_files: Sequence[str] | None = None,
    ) -> None:
        """Replace the scrape targets, Alertmanager and rules; reload when running."""
        self._scrape_targets = scrape_targets
        self._alertmanager = alertmanager
        self._rule_files = rule_files
        self.home.mkdir(parents=True, exist_ok=True)
        self._write_config()
        if self.pid() is not None:
            self.reload()

    def reload(self) -> None:
        """Make the running server read its config file again (``POST /-/reload``)."""
        status, body = process.http_request(self.port, "/-/reload", method="POST", timeout_s=30)
        if status != 200:
            raise ConfigError(f"prometheus rejected its config {self.config_file}: {status} {body}")

    def prepare(self, progress: Progress) -> None:
        (self.home / "data").mkdir(parents=True, exist_ok=True)
        self._write_config()

    def command(self) -> list[str]:
        binary = shutil.which("prometheus")
        if binary is None:
            raise ConfigError("prometheus is not installed: run deploy/local/install.sh")
        return [
            binary,
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={self.home / 'data'}",
            "--storage.tsdb.retention.time=2d",
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--web.external-url={self.url}/",
            "--web.enable-lifecycle",
        ]

    def probe(self) -> bool:
        return process.http_request(self.port, "/-/ready")[0] == 200

    def render_config(self) -> dict[str, Any]:
        """The template with this instance's targets, Alertmanager, rules and interval."""
        config = load_yaml(TEMPLATE)
        interval = f"{self.scrape_interval_s}s"
        config["global"] = {"scrape_interval": interval, "evaluation_interval": interval}
        rule_globs = (
            self._rule_files if self._rule_files is not None else config.get("rule_files", [])
        )
        config["rule_files"] = [str(DEPLOY_DIR / "prometheus" / glob) for glob in rule_globs]
        if self._alertmanager is None:
            config.pop("alerting", None)
        else:
            require_loopback(self._alertmanager, what="prometheus alertmanager")
            config["alerting"] = {
                "alertmanagers": [{"static_configs": [{"targets": [self._alertmanager]}]}]
            }
        jobs: dict[str, list[str]] = {
            job["job_name"]: list(job["static_configs"][0]["targets"])
            for job in config["scrape_configs"]
        }
        if self._scrape_targets is not None:
            jobs = {name: list(targets) for name, targets in self._scrape_targets.items()}
        jobs["prometheus"] = [f"127.0.0.1:{self.port}"]
        config["scrape_configs"] = [
            {"job_name": name, "static_configs": [{"targets": targets}]}
            for name, targets in jobs.items()
        ]
        for targets in jobs.values():
            for target in targets:
                require_loopback(target, what="prometheus scrape target")
        return config

    def _write_config(self) -> None:
        dump_yaml(self.render_config(), self.config_file)
