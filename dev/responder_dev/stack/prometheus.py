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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from responder.errors import ConfigError
from responder_dev.stack.service import ReloadableService
from responder_dev.stack.templates import (
    DEPLOY_DIR,
    dump_yaml,
    load_yaml,
    require_loopback,
)

TEMPLATE = "prometheus/prometheus.yml"
INGEST_JOB = "responder-ingest"


@dataclass(frozen=True)
class Wiring:
    """What Prometheus talks to: job name → ``host:port`` targets (None: the template's),
    the Alertmanager ``host:port`` (None: no alerting), rule file globs (None: the project's
    rules, relative to deploy/prometheus/), the scrape and evaluation interval in seconds
    (None: the instance's)."""

    scrape_targets: Mapping[str, Sequence[str]] | None
    alertmanager: str | None
    rule_files: Sequence[str] | None
    interval_s: int | None = None


class Prometheus(ReloadableService):
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
        """``scrape_targets``, ``alertmanager``, ``rule_files``: see ``Wiring``."""
        super().__init__(
            "prometheus",
            home,
            port=port,
            config_name="prometheus.yml",
            start_timeout_s=start_timeout_s,
            stop_timeout_s=stop_timeout_s,
        )
        self.scrape_interval_s = scrape_interval_s
        self.wiring = Wiring(scrape_targets, alertmanager, rule_files)
        self.render_config(self.wiring)  # refuse a bad target now, not at the first start

    def configure(
        self,
        *,
        scrape_targets: Mapping[str, Sequence[str]] | None = None,
        alertmanager: str | None = None,
        rule_files: Sequence[str] | None = None,
        interval_s: int | None = None,
    ) -> None:
        """Replace the scrape targets, Alertmanager, rules and interval (same meaning as in
        the constructor and ``Wiring``); reload when running. A config it rejects changes
        nothing."""
        wiring = Wiring(scrape_targets, alertmanager, rule_files, interval_s)
        self._replace_config(self.render_config(wiring))
        self.wiring = wiring

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
            # Alertmanagers are discovered up to 5 s after a (re)load: an alert that fires
            # first waits for the next resend (default 1 m). Resend soon; Alertmanager dedups.
            "--rules.alert.resend-delay=2s",
        ]

    def render_config(self, wiring: Wiring) -> dict[str, Any]:
        """The template with ``wiring``'s targets, Alertmanager and rules, and our interval."""
        config = load_yaml(TEMPLATE)
        interval = f"{wiring.interval_s or self.scrape_interval_s}s"
        config["global"] = {"scrape_interval": interval, "evaluation_interval": interval}
        rule_globs = (
            wiring.rule_files if wiring.rule_files is not None else config.get("rule_files", [])
        )
        config["rule_files"] = [str(DEPLOY_DIR / "prometheus" / glob) for glob in rule_globs]
        if wiring.alertmanager is None:
            config.pop("alerting", None)
        else:
            require_loopback(wiring.alertmanager, what="prometheus alertmanager")
            config["alerting"] = {
                "alertmanagers": [{"static_configs": [{"targets": [wiring.alertmanager]}]}]
            }
        jobs: dict[str, list[str]] = {
            job["job_name"]: list(job["static_configs"][0]["targets"])
            for job in config["scrape_configs"]
        }
        if wiring.scrape_targets is not None:
            jobs = {name: list(targets) for name, targets in wiring.scrape_targets.items()}
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
        dump_yaml(self.render_config(self.wiring), self.config_file)
