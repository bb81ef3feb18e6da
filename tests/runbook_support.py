"""Shared constants of the runbook tests: paths and a tiny valid runbook to vary."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SEED_DIR = REPO / "runbooks"
RULES_DIR = REPO / "deploy" / "prometheus" / "rules"

MINIMAL = """\
apiVersion: responder/v1
id: minimal
match:
  alertname: Minimal
target:
  namespace: "{{ labels.namespace }}"
  name: "{{ labels.service }}"
steps:
  - action: deployment.restart
escalation:
  after: 60s
  chain:
    - notify: slack
      channel: "#incidents"
"""
