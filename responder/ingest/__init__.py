"""The HTTP edge: Alertmanager, Slack and PagerDuty webhooks onto Kafka topics."""
