"""Every Kafka topic and Faust table of the responder, declared once, as plain data.

The one place that says what a topic is: its name, what its key is, what its values
are; tables' changelogs are the compacted ones. Ingest (what it writes), the worker (``streams.context``
declares each on the Faust app), the admin code that creates topics before anything
reads or writes them (``responder.kafka_admin``) and the benches all read this table;
the domain core can name a topic without importing Kafka.

Partitions are the deployment's (``KafkaSettings.partitions``), the same for every topic:
topics keyed by the same thing are co-partitioned (``commands`` and
``remediation-routes`` must be, so the command router finds a route in a local table).

Keys are not all the same. ``alerts``, ``incidents`` and triage's ``audit`` records are
keyed by the *incident key* (one partition owns one incident from ingest to triage);
``remediation`` by the *target key* (all incidents of one workload meet on one
partition); the command-side topics by *incident id*. An ``audit`` record is keyed by what
it is about: :func:`audit_key`.

Values are the domain's pydantic JSON (the ``value`` below names the model); Faust moves
raw bytes only, so nothing in the core depends on Faust's record types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from responder.models.incidents import AuditEvent


@dataclass(frozen=True, slots=True)
class Topic:
    """One topic: ``name`` is the short name; the deployment prefixes it (:func:`topic_name`)."""

    name: str
    key: str
    """What the key is (prose: the key is bytes of this string)."""
    value: str
    """Dotted path of the pydantic model of the values (``tests/models`` imports each)."""
    doc: str
    """None is compacted: they are logs. Tables' changelogs are (:class:`Table`)."""


@dataclass(frozen=True, slots=True)
class Table:
    """One Faust table (key and value raw bytes); its changelog is ``<app id>-<name>-changelog``,
    compacted, with the deployment's partitions (Faust recovers a partition from it)."""

    name: str
    key: str
    value: str
    doc: str

    def changelog(self, app_id: str) -> str:
        return f"{app_id}-{self.name}-changelog"


ALERTS: Final = Topic(
    "alerts",
    key="incident key (responder.models.alerts.incident_key)",
    value="responder.models.alerts.AlertEvent",
    doc="Normalized Alertmanager alerts, one message per alert, written by ingest.",
)
INCIDENTS: Final = Topic(
    "incidents",
    key="incident key",
    value="responder.models.incidents.IncidentTransition",
    doc="Incident transitions (opened, resolved), written by triage.",
)
AUDIT: Final = Topic(
    "audit",
    key="what the record is about: audit_key(event) (ingest's ChatOps records: incident id "
    "or channel)",
    value="responder.models.incidents.AuditEvent",
    doc="Append-only record of every transition, action result, command and delivery failure.",
)
REMEDIATION: Final = Topic(
    "remediation",
    key="target key (namespace/name)",
    value="responder.engine.records.Event",
    doc="Every input of the remediation state machine: routed transitions, commands, "
    "action and verification outcomes, due deadlines. Keyed by target, so the guard rails "
    "(cooldown, action window, one incident per target) decide atomically.",
)
COMMANDS: Final = Topic(
    "commands",
    key="incident id (a command naming none: its target, else its kind; ingest's command_key)",
    value="responder.models.commands.Command",
    doc="People's commands from Slack, PagerDuty and the CLI, written by ingest.",
)
ROUTES: Final = Topic(
    "remediation-routes",
    key="incident id",
    value="responder.engine.records.RouteEntry",
    doc="Incident id -> target key, written when an incident is admitted; co-partitioned "
    "with commands so the command router finds an incident's target in a local table.",
)
NOTIFICATIONS: Final = Topic(
    "notifications",
    key="incident id",
    value="responder.models.notifications.Notification",
    doc="One notification per incident phase, for the notify agents (Slack, PagerDuty).",
)
REPLIES: Final = Topic(
    "command-replies",
    key="incident id (an ad-hoc command's: adhoc_id of its idempotency key)",
    value="responder.engine.records.ReplyToCommand",
    doc="Answers to commands, posted to the command's response_url by the notify worker.",
)

METRICS: Final = Topic(
    "metrics",
    key="series key (responder.models.metrics.series_key); EvaluationDone: sent to every "
    "partition explicitly (key: the definition's name)",
    value="responder.models.metrics.MetricRecord",
    doc="What each evaluation of an alert definition returned (one sample per series), then "
    "an end-of-evaluation mark per partition; written by the metric-streams poller, read by "
    "the evaluator.",
)

TOPICS: Final = (
    ALERTS,
    INCIDENTS,
    AUDIT,
    REMEDIATION,
    COMMANDS,
    ROUTES,
    NOTIFICATIONS,
    REPLIES,
    METRICS,
)
"""Every topic the processes consume or produce (table changelogs are Faust's own)."""

INCIDENTS_TABLE: Final = Table(
    "incidents",
    key="incident key",
    value="responder.models.incidents.Incident",
    doc="The current incident per incident key (triage).",
)
REMEDIATION_TABLE: Final = Table(
    "remediation",
    key="target key",
    value="responder.engine.records.TargetState",
    doc="The remediation state of each target (the remediate agent is its only writer).",
)
ROUTES_TABLE: Final = Table(
    "incident-routes",
    key="incident id",
    value="target key (plain text)",
    doc="Incident id -> target key, filled from remediation-routes by the command router.",
)
SLACK_TABLE: Final = Table(
    "notify-slack-messages",
    key="incident id",
    value="responder.integrations.slack.notifier.SlackMessageRef",
    doc="The Slack message of each incident, so later phases update it in place.",
)
PAGERDUTY_TABLE: Final = Table(
    "notify-pagerduty",
    key="incident id",
    value="responder.integrations.pagerduty.events.PagedIncident",
    doc="The PagerDuty routing of each paged incident, so resolve and ack reach the same one.",
)

ALERT_RULES_TABLE: Final = Table(
    "alert-rules",
    key="series key (as responder.metrics)",
    value="responder.alerting.rule.SeriesState",
    doc="Pending and firing series of the alert definitions (the evaluator), so a restarted "
    "worker neither fires again nor forgets how long a series has been pending.",
)

TABLES: Final = (
    INCIDENTS_TABLE,
    REMEDIATION_TABLE,
    ROUTES_TABLE,
    SLACK_TABLE,
    PAGERDUTY_TABLE,
    ALERT_RULES_TABLE,
)


def topic_name(prefix: str, topic: Topic) -> str:
    """The full name of ``topic`` under a deployment's prefix: ``responder.alerts``."""
    return f"{prefix}.{topic.name}"


def audit_key(event: AuditEvent) -> bytes:
    """The key of an audit record: the incident key it is about, else its incident id.

    Triage's and the engine's records carry the incident key (so they share a partition
    with the incident's alerts); a command's or a delivery failure's know only the incident
    id (an ad-hoc command's is derived from its idempotency key).
    """
    return (event.incident_key or event.incident_id).encode()
