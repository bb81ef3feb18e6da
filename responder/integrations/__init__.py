"""Notifiers and inbound adapters for Slack and PagerDuty, each behind one small interface.

- ``base``: the ``Notifier`` Protocol, the ``Notification`` it delivers, the read model and
  audit record the inbound side uses, an injectable ``Clock``.
- ``pagerduty``: Events API v2 out with the ``pagerduty`` package (``EventsApiV2Client``,
  the maintained successor of ``pdpyras``, deprecated since 2025-06-20); webhooks v3 in.
- ``slack``: ``slack_sdk``'s async Web API client out (Block Kit, one message per incident);
  signature verification, ``/responder`` and button parsing, authorization in.
- ``ratelimit``, ``retry``, ``seen``: the cross-cutting stages, one module each.
- ``registry``: the explicit table of notifiers.

Nothing here imports Kafka or Faust: the worker wires notifiers to ``responder.notifications``
and the ingest service mounts ``responder.ingest.chatops``.
"""
