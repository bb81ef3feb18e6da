"""One root ``Settings`` made of per-concern groups, read from the environment once.

Every field says its unit and why its default is what it is. Environment
variables are ``RESPONDER_<GROUP>__<FIELD>``, e.g. ``RESPONDER_KAFKA__BOOTSTRAP``.
Each integration adds its own group here rather than reading ``os.environ``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from responder.errors import ConfigError


class KafkaSettings(BaseModel):
    """Where the broker is and how topics are laid out."""

    bootstrap: str = Field(
        "127.0.0.1:9092",
        description="host:port list of brokers; loopback by default so a dev machine talks to the local stack.",
    )
    topic_prefix: str = Field(
        "responder",
        description="Prefix of every topic name (responder.alerts, ...); lets several deployments share a cluster.",
    )
    partitions: int = Field(
        8,
        ge=1,
        description="Partitions per topic. Scale-out unit: at most this many workers share the load. "
        "Changelog topics must match, so change it only with fresh topics.",
    )
    replication_factor: int = Field(
        1, ge=1, description="1 on the single-node local stack; 3 in production."
    )
    request_timeout_s: float = Field(
        5.0,
        gt=0,
        description="Seconds a produce may wait for the broker's ack before ingest answers 503. "
        "Below Alertmanager's shortest send timeout (10 s) so it gets an answer and retries.",
    )
    max_pending: int = Field(
        10_000,
        ge=1,
        description="Alerts in flight to the broker before ingest sheds load with 503; bounds memory.",
    )


class IngestSettings(BaseModel):
    """The HTTP edge Alertmanager, Slack and PagerDuty post to."""

    host: str = Field(
        "127.0.0.1", description="Bind address; loopback unless deployed behind a Service."
    )
    port: int = Field(9095, ge=0, le=65535, description="TCP port; 0 picks a free one (tests).")
    max_body_bytes: int = Field(
        1 << 20,
        ge=1024,
        description="Largest accepted request body in bytes (1 MiB): a 50-alert Alertmanager batch is ~60 KB.",
    )
    bearer_token: SecretStr | None = Field(
        None, description="Token Alertmanager sends via http_config.authorization.credentials."
    )
    basic_username: str | None = Field(None, description="User for http_config.basic_auth.")
    basic_password: SecretStr | None = Field(
        None, description="Password for http_config.basic_auth."
    )
    allow_anonymous: bool = Field(
        False,
        description="Accept webhooks with no credentials at all. Off by default: an open receiver lets "
        "anyone open incidents and trigger remediation.",
    )
    retry_after_s: int = Field(
        5,
        ge=1,
        description="Seconds advertised in Retry-After when the broker cannot take the alerts.",
    )

    @model_validator(mode="after")
    def _credentials_configured(self) -> IngestSettings:
        has_basic = self.basic_username is not None or self.basic_password is not None
        if has_basic and (self.basic_username is None or self.basic_password is None):
            raise ValueError("ingest.basic_username and ingest.basic_password must be set together")
        return self

    def require_credentials(self) -> None:
        """Refuse to serve an open receiver unless anonymous access was asked for."""
        has_basic = self.basic_username is not None
        if not self.allow_anonymous and self.bearer_token is None and not has_basic:
            raise ConfigError(
                "ingest needs credentials: set RESPONDER_INGEST__BEARER_TOKEN or "
                "RESPONDER_INGEST__BASIC_USERNAME/_PASSWORD (or RESPONDER_INGEST__ALLOW_ANONYMOUS=true)"
            )


class WorkerSettings(BaseModel):
    """The Faust worker."""

    app_id: str = Field("musearoo-responder", description="Faust app id = consumer group id.")
    store: str = Field(
        "rocksdb://",
        description="Table store URL. rocksdb:// survives restarts without a full changelog replay; "
        "memory:// is for unit tests.",
    )
    data_dir: str = Field(".stack/worker", description="Where RocksDB tables live (per worker).")
    web_host: str = Field(
        "127.0.0.1",
        description="Address Faust's web server (/metrics, /healthz, /readyz) binds: loopback "
        "on a dev machine; 0.0.0.0 in a pod, where the kubelet probes and Prometheus scrape "
        "the pod IP.",
    )
    web_port: int = Field(
        6066, ge=0, le=65535, description="Faust's web server port (/metrics, /healthz, /readyz)."
    )
    web_enabled: bool = Field(
        True,
        description="Run Faust's web server (table views, leader info); tests and benches "
        "running several workers turn it off rather than fight over the port.",
    )
    session_timeout_s: float = Field(
        60.0,
        ge=6.0,
        description="Consumer-group session timeout in seconds: how long a crashed worker's "
        "partitions wait before another worker takes them. Faust's default (60 s); shorter "
        "hands over sooner but risks rebalances when a worker's loop stalls. 6 s is the "
        "broker's minimum (group.min.session.timeout.ms).",
    )
    in_flight: int = Field(
        256,
        ge=1,
        description="Events an agent (triage, the remediation router) may have writes on their "
        "way to the broker for at once; each is acknowledged, in order, only once its writes "
        "are. 1 waits for every event's writes before taking the next (one broker round trip "
        "per event).",
    )


class ActionsSettings(BaseModel):
    """Guard rails and clients of the remediation actions (responder/actions/)."""

    allowed_namespaces: list[str] = Field(
        default_factory=list,
        description="Namespaces actions may change; an entry ending in '*' is a prefix. Empty by "
        "default: nothing is touched until an operator names the namespaces.",
    )
    min_replicas: int = Field(
        1, ge=0, description="Replica floor for deployment.scale: never scale a service to zero."
    )
    max_replicas: int = Field(
        20, ge=1, description="Replica ceiling for deployment.scale (the design's default of 20)."
    )
    call_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Seconds any single API/Redis/HTTP call may take (capped by the step deadline).",
    )
    retry_attempts: int = Field(
        5, ge=1, description="Tries per call on 409/429/5xx/transport errors before giving up."
    )
    retry_base_s: float = Field(
        0.2, ge=0, description="First backoff in seconds; doubles per try with full jitter."
    )
    retry_cap_s: float = Field(5.0, ge=0, description="Longest single backoff in seconds.")
    allowed_endpoint_networks: list[str] = Field(
        default_factory=lambda: ["127.0.0.0/8"],
        description="CIDRs that pod/endpoint addresses read from the cluster must fall in before "
        "model.reload, connections.reset or a generation probe calls them. Loopback by default (dev and tests); a "
        "real cluster names its pod network, e.g. 10.244.0.0/16.",
    )
    endpoint_source: Literal["endpointslices", "pods"] = Field(
        "endpointslices",
        description="Where model.reload / connections.reset find the ready pods behind a Service: "
        "its EndpointSlices (default; covered by deploy/k8s/rbac.yaml), or the Ready Pods its "
        "selector matches (needs get/list on pods, not in the shipped RBAC). 'pods' exists for the "
        "local control plane: the API server refuses loopback addresses in EndpointSlices, and "
        "kwok's pods there have loopback IPs.",
    )
    endpoint_parallelism: int = Field(
        8,
        ge=1,
        description="Endpoints connections.reset, or a generation probe, calls at once "
        "(model.reload's runbook sets its own).",
    )
    http_base_urls: dict[str, str] = Field(
        default_factory=dict,
        description="The only URLs http.request may call, by the name a runbook's ``base:`` uses "
        "(scheme://host:port/prefix); the runbook adds a path. Empty by default: no outbound HTTP "
        "until an operator allows it.",
    )
    http_secrets: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Named secrets a runbook may put in request headers (by name, never by value).",
    )
    redis_urls: dict[str, str] = Field(
        default_factory=lambda: {"default": "redis://127.0.0.1:16379/0"},
        description="Redis instances cache.clear may work on, by name: a target of kind redis names "
        "one, any other target uses 'default' (the local stack's Redis).",
    )
    rollout_poll_s: float = Field(
        0.5, gt=0, description="Seconds between reads while waiting for a rollout to complete."
    )
    kube_identity: str = Field(
        "serviceaccount responder/responder",
        description="How the responder's Kubernetes identity is named in error sentences when the "
        "API's own message does not say.",
    )


class ChatOpsAllowList(BaseModel):
    """Who may give mutating commands (ack, resolve, approve, run, silence ...)."""

    model_config = {"frozen": True}

    users: frozenset[str] = Field(
        frozenset(), description="Slack user ids (U…/W…): ids, not names, because names can change."
    )
    user_groups: frozenset[str] = Field(
        frozenset(),
        description="Slack user group ids (S…); membership is read with usergroups.users.list "
        "and cached for SlackSettings.group_cache_ttl_s.",
    )


class SlackSettings(BaseModel):
    """Slack: the incident message out, slash command and buttons in."""

    enabled: bool = Field(False, description="Post incidents to Slack and accept /responder.")
    bot_token: SecretStr | None = Field(None, description="Bot token (xoxb-…), chat:write scope.")
    signing_secret: SecretStr | None = Field(
        None, description="The app's signing secret: every inbound request is verified with it."
    )
    base_url: str = Field(
        "https://slack.com/api/",
        description="Web API base URL; a setting so tests point the SDK at a local server.",
    )
    default_channel: str = Field(
        "#incidents", description="Channel for incidents whose runbook names none."
    )
    timeout_s: float = Field(
        10.0, gt=0, description="Seconds per Web API call (the SDK's own default is 30)."
    )
    rate_limit_retries: int = Field(
        3,
        ge=0,
        le=10,
        description="429s retried per call, each after the Retry-After Slack sends (slack_sdk's "
        "RateLimitErrorRetryHandler); ignoring Retry-After gets an app throttled harder.",
    )
    server_error_retries: int = Field(2, ge=0, le=10, description="500/503 retries per call.")
    allow: ChatOpsAllowList = Field(
        ChatOpsAllowList(),
        description="Who may mutate when the incident's runbook has no list of its own. Empty: nobody "
        "(read-only commands stay open to the workspace).",
    )
    runbook_allow: dict[str, ChatOpsAllowList] = Field(
        default_factory=dict,
        description="Per runbook id: replaces `allow` for that runbook's incidents.",
    )
    group_cache_ttl_s: float = Field(
        300.0,
        gt=0,
        description="Seconds a user group's membership is trusted before re-reading it.",
    )
    response_url_hosts: frozenset[str] = Field(
        frozenset({"hooks.slack.com"}),
        description="Hosts a response_url may point to; anything else is refused (no SSRF through "
        "a signed but unexpected URL). Tests set 127.0.0.1.",
    )
    response_url_require_https: bool = Field(
        True, description="Refuse http:// response URLs; off only for the local test server."
    )
    replay_window_s: float = Field(
        330.0,
        gt=0,
        description="Seconds a seen signature is remembered to refuse replays: Slack's 300 s "
        "timestamp window plus clock skew.",
    )
    replay_cache_max: int = Field(100_000, ge=100, description="Signatures remembered at most.")
    inline_reply_budget_s: float = Field(
        2.0,
        gt=0,
        lt=3.0,
        description="Seconds list/show and the command publish may take before we answer; Slack "
        "gives up after 3 s, so slower answers go to response_url.",
    )

    @model_validator(mode="after")
    def _secrets_when_enabled(self) -> SlackSettings:
        if self.enabled and (self.bot_token is None or self.signing_secret is None):
            raise ValueError("slack.enabled needs slack.bot_token and slack.signing_secret")
        return self


class PagerDutySettings(BaseModel):
    """PagerDuty: Events API v2 out, webhooks v3 in."""

    enabled: bool = Field(
        False, description="Page PagerDuty on escalation and accept its webhooks."
    )
    events_url: str = Field(
        "https://events.pagerduty.com",
        description="Events API base URL (the SDK requires https); tests point it at a local server.",
    )
    ca_file: str | None = Field(
        None,
        description="PEM bundle to trust for events_url instead of the system store (private "
        "proxies; the local test server's self-signed certificate).",
    )
    trust_env: bool = Field(
        True, description="Honour HTTPS_PROXY & co. for the Events API (off in tests)."
    )
    routing_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Service name -> Events API v2 integration key (32 characters). Runbooks name "
        "the service, never the key, so keys stay out of runbooks and logs.",
    )
    default_service: str = Field(
        "default", description="Routing key name used when a runbook names none."
    )
    webhook_secrets: tuple[SecretStr, ...] = Field(
        (),
        description="Webhook v3 signing secrets; several while a secret is being rotated.",
    )
    source: str = Field(
        "musearoo-responder", description="payload.source when the incident has no target."
    )
    timeout_s: float = Field(10.0, gt=0, description="Seconds per Events API request.")
    max_attempts: int = Field(
        6, ge=1, le=20, description="Attempts per event on 429/5xx/network errors before giving up."
    )
    backoff_base_s: float = Field(
        1.0, gt=0, description="First retry waits up to this (full jitter), doubling each time."
    )
    backoff_cap_s: float = Field(60.0, gt=0, description="Longest wait between two attempts.")
    events_per_minute: int = Field(
        120,
        ge=1,
        description="Local limit per routing key: PagerDuty documents about 120 events/min and "
        "answers 429 past it.",
    )
    webhook_dedup_ttl_s: float = Field(
        3600.0,
        gt=0,
        description="Seconds an X-Webhook-Id is remembered: PagerDuty retries for about 20 minutes.",
    )
    webhook_dedup_max: int = Field(50_000, ge=100, description="Webhook ids remembered at most.")
    webhook_agent_types: frozenset[str] = Field(
        frozenset({"user_reference"}),
        description="event.agent.type values that become commands: people, not our own Events API "
        "integration echoing the ack/resolve we sent.",
    )
    publish_timeout_s: float = Field(
        3.0,
        gt=0,
        lt=5.0,
        description="Seconds to hand a webhook's command to the broker; PagerDuty waits 5 s, and a "
        "503 makes it retry.",
    )

    @model_validator(mode="after")
    def _keys_well_formed(self) -> PagerDutySettings:
        for name, key in self.routing_keys.items():
            if len(key.get_secret_value()) != 32:
                raise ValueError(f"pagerduty.routing_keys[{name!r}] must be 32 characters")
        if self.enabled and self.default_service not in self.routing_keys:
            raise ValueError(
                f"pagerduty.default_service {self.default_service!r} has no routing key"
            )
        return self


class RemediationSettings(BaseModel):
    """The remediation engine (responder/engine, streams/remediate.py)."""

    runbooks_dir: str = Field(
        "runbooks", description="Folder of runbook YAML files the worker loads at start."
    )
    dry_run: bool = Field(
        False,
        description="Global dry-run: every action reports what it would change and changes "
        "nothing (a runbook's own dry_run does the same for its incidents).",
    )
    prometheus_url: str = Field(
        "http://127.0.0.1:19090",
        description="Prometheus that PromQL verifications query (the local stack's by default).",
    )
    query_timeout_s: float = Field(
        5.0, gt=0, description="Seconds one verification query or HTTP check may take."
    )
    timer_interval_s: float = Field(
        0.25,
        gt=0,
        description="Seconds between scans for due deadlines: bounds escalation lateness "
        "(aim < 1 s at p99).",
    )
    rescan_interval_s: float = Field(
        10.0,
        gt=0,
        description="Seconds between full scans of the local table partitions (after a "
        "rebalance the scan runs at once); between them an in-memory index is used.",
    )
    command_route_wait_s: float = Field(
        10.0,
        gt=0,
        description="Seconds a command (approve, ack, ...) for an incident whose route entry has "
        "not been read yet waits for it before it is audited as "
        "remediation.command_unknown_incident: the route is written before any notification, "
        "but the commands topic can be read ahead of the routes topic.",
    )
    resume_grace_s: float = Field(
        3.0,
        gt=0,
        description="Seconds a running or verifying step may have no task on its owner before "
        "the timer resumes it (reconcile the action / restart the verification).",
    )


class NotifySettings(BaseModel):
    """The notify agent (worker) and the ChatOps read view (ingest)."""

    retry_budget_s: float = Field(
        300.0,
        gt=0,
        description="Seconds one notification may spend retrying a notifier's TemporaryError "
        "before it is given up (logged and audited): a Slack or PagerDuty outage delays the "
        "batch it is in by at most this, never the partition forever.",
    )
    retry_max_delay_s: float = Field(
        60.0,
        gt=0,
        description="Longest wait between two attempts, whatever Retry-After asks (a hostile or "
        "buggy Retry-After must not park the agent).",
    )
    batch_max: int = Field(
        64, ge=1, description="Notifications taken per batch; incidents of a batch go in parallel."
    )
    batch_within_s: float = Field(
        0.05, gt=0, description="Seconds to wait for a batch to fill before delivering what came."
    )
    view_max_incidents: int = Field(
        10_000,
        ge=10,
        description="Incidents the ingest process keeps in its read view for /responder list|show "
        "and command authorization (resolved ones are dropped first).",
    )


class AdhocSettings(BaseModel):
    """``/responder run`` and ``/responder silence``: what the worker needs to carry them out."""

    alertmanager_url: str = Field(
        "http://127.0.0.1:19093",
        description="Alertmanager whose API v2 receives silences; the local stack's port by "
        "default (loopback in development).",
    )
    alertmanager_timeout_s: float = Field(
        10.0, gt=0, description="Seconds per Alertmanager API request (connect + answer)."
    )
    run_timeout_s: float = Field(
        60.0,
        gt=0,
        le=900,
        description="Seconds one ad-hoc action may take before it is reported as timed out; "
        "the agent handles commands one at a time, so this bounds how long a slow action "
        "holds up the next command.",
    )


class AlertingSettings(BaseModel):
    """Metric streams: alert definitions the worker evaluates itself against Prometheus."""

    definitions_dir: str | None = Field(
        None,
        description="Folder of alert definition files (the repository's is alerts/). None: "
        "metric streams are off, so a worker without a Prometheus to query does not report "
        "every definition stale; set it to evaluate them. Invalid files refuse the start.",
    )
    prometheus_url: str | None = Field(
        None,
        description="Prometheus the definitions are evaluated against; None: the one PromQL "
        "verifications query (remediation.prometheus_url), so one setting names it.",
    )
    query_timeout_s: float = Field(
        10.0,
        gt=0,
        le=300,
        description="Seconds one evaluation query may take (Prometheus' own query timeout, and "
        "the thread's, plus 1 s): a slow Prometheus marks the definition stale instead of "
        "holding the poller. Prometheus' default is 2 min; alert rules are expected in seconds.",
    )
    backoff_base_s: float = Field(
        1.0,
        gt=0,
        description="First extra wait, in seconds, after a failed evaluation; doubled after each "
        "further failure (full jitter), on top of the definition's interval.",
    )
    backoff_max_s: float = Field(
        60.0,
        gt=0,
        description="Longest extra wait in seconds between attempts while Prometheus is down: "
        "bounds how late the first evaluation after it comes back can be.",
    )
    max_series: int = Field(
        20_000,
        ge=1,
        description="Series one evaluation may return. More is refused as a failed (stale) "
        "evaluation, never truncated: a truncated result would resolve the alerts left out. "
        "Bounds the evaluator's table and the poller's memory per definition.",
    )

    @model_validator(mode="after")
    def _backoff(self) -> AlertingSettings:
        if self.backoff_max_s < self.backoff_base_s:
            raise ConfigError(
                "alerting.backoff_max_s must be ≥ alerting.backoff_base_s "
                f"({self.backoff_max_s} < {self.backoff_base_s})"
            )
        if self.prometheus_url is not None:
            check_http_url(self.prometheus_url, "alerting.prometheus_url")
        return self


def check_http_url(url: str, setting: str) -> None:
    """Raise ConfigError naming ``setting`` unless ``url`` is an http(s) URL with a host."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{setting} must be an http:// or https:// URL with a host (got {url!r})")


class Settings(BaseSettings):
    """The responder's whole configuration."""

    model_config = SettingsConfigDict(
        env_prefix="RESPONDER_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    kafka: KafkaSettings = KafkaSettings()
    ingest: IngestSettings = IngestSettings()
    worker: WorkerSettings = WorkerSettings()
    actions: ActionsSettings = ActionsSettings()
    slack: SlackSettings = SlackSettings()
    pagerduty: PagerDutySettings = PagerDutySettings()
    remediation: RemediationSettings = RemediationSettings()
    notify: NotifySettings = NotifySettings()
    adhoc: AdhocSettings = AdhocSettings()
    alerting: AlertingSettings = AlertingSettings()

    @property
    def alerting_prometheus_url(self) -> str:
        """The Prometheus the alert definitions are evaluated against."""
        return self.alerting.prometheus_url or self.remediation.prometheus_url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment once."""
    return Settings()
