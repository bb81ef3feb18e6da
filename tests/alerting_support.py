"""A tiny valid alert definition for the alerting tests to vary."""

from __future__ import annotations

DEFINITION = """\
apiVersion: responder/v1
name: minimal_latency
expr: minimal_latency_seconds > 0.2
for: 1m
interval: 15s
severity: warning
labels:
  team: musearoo
annotations:
  summary: "{{ labels.engine }} is slow"
context: true
"""
