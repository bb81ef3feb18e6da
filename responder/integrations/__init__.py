"""Notifiers and inbound adapters for Slack and PagerDuty, each behind one small interface."""
