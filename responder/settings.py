"""One root ``Settings`` made of per-concern groups, read from the environment once.

Every field says its unit and why its default is what it is. Environment
variables are ``RESPONDER_<GROUP>__<FIELD>``, e.g. ``RESPONDER_KAFKA__BOOTSTRAP``.
Each integration adds its own group here rather than reading ``os.environ``.
"""

from __future__ import annotations

from functools import lru_cache

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
    web_port: int = Field(6066, ge=0, le=65535, description="Faust's own web server port.")
    web_enabled: bool = Field(
        True,
        description="Run Faust's web server (table views, leader info); tests and benches "
        "running several workers turn it off rather than fight over the port.",
    )


class Settings(BaseSettings):
    """The responder's whole configuration."""

    model_config = SettingsConfigDict(
        env_prefix="RESPONDER_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    kafka: KafkaSettings = KafkaSettings()
    ingest: IngestSettings = IngestSettings()
    worker: WorkerSettings = WorkerSettings()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment once."""
    return Settings()
