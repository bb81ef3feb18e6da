"""Parameter models of the action catalogue: one pydantic model per action, one explicit table.

Runbooks are validated against these models when they load, so a typo in a
runbook's ``with:`` block is a load error with its file and line, not a failed
remediation at 3 a.m. The actions themselves are implemented elsewhere on top of
these models; keeping every model in this one file gives reviewers a single page
that says what each action accepts.

Parameters are static: no label templates here. Values that name Kubernetes
objects are checked as RFC 1123 labels at load; URLs are paths relative to an
allow-listed base named in the settings; header values come from secret
references, never from the runbook text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "ACTION_NAMES",
    "ACTION_PARAMS",
    "DNS_LABEL",
    "DNS_LABEL_MAX",
    "ActionParams",
    "CacheClearParams",
    "ConnectionsResetParams",
    "DeploymentRestartParams",
    "DeploymentRollbackParams",
    "DeploymentScaleParams",
    "Duration",
    "HTTPRequestParams",
    "HTTPRouteFailback",
    "HTTPRouteFailover",
    "K8sName",
    "ModelReloadParams",
    "NotifyParams",
    "RefName",
    "RegionFailbackParams",
    "RegionFailoverParams",
    "RelativePath",
    "SecretRef",
    "ServiceFailback",
    "ServiceFailover",
    "SlackChannel",
    "is_dns_label",
    "parse_duration",
    "pattern_check",
]

# RFC 1123 label, as Kubernetes checks namespaces and most object names. ASCII
# only by construction; ``fullmatch`` so a trailing newline cannot sneak past ``$``.
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_LABEL_MAX = 63


def is_dns_label(value: str) -> bool:
    """True when ``value`` is a valid RFC 1123 label (what Kubernetes accepts as a namespace)."""
    return len(value) <= DNS_LABEL_MAX and DNS_LABEL.fullmatch(value) is not None


def _check_dns_label(value: object) -> object:
    if isinstance(value, str) and not is_dns_label(value):
        raise PydanticCustomError(
            "dns_label",
            "{value} is not a valid RFC 1123 name (lower-case letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters)",
            {"value": ascii(value[:80])},
        )
    return value


K8sName = Annotated[str, BeforeValidator(_check_dns_label)]
"""A Kubernetes object name or namespace, checked as an RFC 1123 label."""

_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_DURATION_HELP = "a duration such as 30s, 5m, 1h or 1h30m"


def parse_duration(value: object) -> timedelta:
    """``30s``, ``5m``, ``1h``, ``1h30m`` -> timedelta; anything else is a ValueError.

    Bare numbers are refused on purpose: ``timeout: 300`` could mean seconds or
    milliseconds depending on who reads it.
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, str):
        raise PydanticCustomError(
            "duration",
            "must be {help}, with its unit (got {got})",
            {"help": _DURATION_HELP, "got": ascii(value)},
        )
    found = _DURATION.fullmatch(value)
    if not value or found is None:
        raise PydanticCustomError(
            "duration", "{got} is not {help}", {"help": _DURATION_HELP, "got": ascii(value[:40])}
        )
    hours, minutes, seconds = (int(part) if part else 0 for part in found.groups())
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
"""A duration written with its unit: ``30s``, ``5m``, ``1h``, ``1h30m``."""


def pattern_check(regex: str, what: str, *, max_length: int = 253) -> BeforeValidator:
    """A validator whose mismatch message says what is expected, not the regex."""
    compiled = re.compile(regex)

    def check(value: object) -> object:
        if isinstance(value, str) and (len(value) > max_length or not compiled.fullmatch(value)):
            raise PydanticCustomError(
                "pattern", "{got} is not {what}", {"got": ascii(value[:80]), "what": what}
            )
        return value

    return BeforeValidator(check)


SlackChannel = Annotated[
    str, pattern_check(r"#[a-z0-9][a-z0-9_-]{0,79}", "a Slack channel such as #incidents")
]
RefName = Annotated[
    str,
    pattern_check(
        r"[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?",
        "a reference name (lower-case letters, digits, '.', '_', '-')",
        max_length=63,
    ),
]


def sibling_error(sibling: str, message: str) -> PydanticCustomError:
    """An error that names a sibling field; the runbook loader prints the sibling's full path."""
    return PydanticCustomError("sibling", message, {"sibling": sibling})


class ActionParams(BaseModel):
    """Base of every parameter model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


_HTTP_PATH = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*")


def _check_relative_path(value: str) -> str:
    """A path relative to a configured base: no scheme, no host, no ``..``, printable ASCII."""
    parts = urlsplit(value)
    if (
        not _HTTP_PATH.fullmatch(value)
        or parts.scheme
        or parts.netloc
        or value.startswith("//")
        or ".." in parts.path.split("/")
    ):
        raise PydanticCustomError(
            "relative_path",
            "{got} must be a path starting with '/' (no scheme, host, '..' or spaces)",
            {"got": ascii(value[:80])},
        )
    return value


RelativePath = Annotated[str, Field(max_length=512), BeforeValidator(_check_relative_path)]
Port = Annotated[int, Field(ge=1, le=65535)]


# --- deployment.* ------------------------------------------------------------


class DeploymentRestartParams(ActionParams):
    """Rolling restart as ``kubectl rollout restart`` does (pod-template annotation)."""

    wait: bool = Field(
        True, description="Wait for the rollout to complete within the step's timeout."
    )


class DeploymentScaleParams(ActionParams):
    """Scale by a factor or to an absolute count, clamped to [min, max]."""

    factor: float | None = Field(
        None, gt=0, le=10, description="Multiply current replicas (rounded up)."
    )
    replicas: int | None = Field(None, ge=0, description="Absolute replica count.")
    min: int = Field(1, ge=0, description="Floor after scaling.")
    max: int = Field(20, ge=1, le=1000, description="Ceiling after scaling (the design's 20).")
    hpa: Literal["raise_min", "fail"] = Field(
        "raise_min",
        description="When an HPA owns the Deployment: raise its minReplicas, or fail the step.",
    )

    @field_validator("max")
    @classmethod
    def _max_at_least_min(cls, value: int, info: ValidationInfo) -> int:
        floor = info.data.get("min")
        if isinstance(floor, int) and value < floor:
            raise sibling_error("min", "must be ≥ {sibling}")
        return value

    @model_validator(mode="after")
    def _one_mode(self) -> DeploymentScaleParams:
        if (self.factor is None) == (self.replicas is None):
            raise PydanticCustomError("one_of", "set exactly one of factor or replicas")
        if self.replicas is not None and not self.min <= self.replicas <= self.max:
            raise PydanticCustomError(
                "range",
                "replicas {replicas} is outside min..max ({min}..{max})",
                {"replicas": self.replicas, "min": self.min, "max": self.max},
            )
        return self


class DeploymentRollbackParams(ActionParams):
    """Back to an earlier ReplicaSet's pod template, as ``kubectl rollout undo`` does."""

    to_revision: int | None = Field(
        None, ge=1, description="Revision to return to; default the previous one."
    )
    wait: bool = Field(True, description="Wait for the rollout within the step's timeout.")


# --- cache.clear ---------------------------------------------------------------

_REDIS_PATTERN = re.compile(r"[\x21-\x7e]{1,256}")


class CacheClearParams(ActionParams):
    """Delete Redis keys by pattern (SCAN + UNLINK), or the whole database with ``all: true``."""

    pattern: str | None = Field(None, description="Redis glob pattern, e.g. generation:*")
    all: bool = Field(False, description="FLUSHDB. Only when the runbook says so explicitly.")
    batch: int = Field(500, ge=1, le=10_000, description="SCAN COUNT and UNLINK batch size.")

    @field_validator("pattern")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and not _REDIS_PATTERN.fullmatch(value):
            raise PydanticCustomError(
                "pattern", "must be 1-256 printable ASCII characters without spaces"
            )
        return value

    @model_validator(mode="after")
    def _one_mode(self) -> CacheClearParams:
        if (self.pattern is None) == (not self.all):
            raise PydanticCustomError("one_of", "set exactly one of pattern or all: true")
        return self


# --- model.reload ----------------------------------------------------------------


class ModelReloadParams(ActionParams):
    """POST the model server's reload endpoint on every ready pod, or roll the Deployment."""

    path: RelativePath = Field("/reload", description="Reload endpoint on each pod.")
    port: Port = Field(8080, description="Container port of the reload endpoint.")
    variant: RefName | None = Field(
        None,
        description="Model set to load (sent in the request body), e.g. backup.",
    )
    concurrency: int = Field(4, ge=1, le=64, description="Pods reloaded in parallel.")
    restart: bool = Field(False, description="Rolling restart instead of the HTTP endpoint.")

    @model_validator(mode="after")
    def _restart_excludes_http(self) -> ModelReloadParams:
        if self.restart and self.model_fields_set & {"path", "port", "variant", "concurrency"}:
            raise PydanticCustomError(
                "exclusive", "path, port, variant and concurrency do not apply when restart is true"
            )
        return self


# --- region.failover / region.failback ------------------------------------------------

_LABEL_KEY = re.compile(
    r"([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
)
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HTTPRouteFailover(_Strict):
    """Move weight from the primary backend to the backup backend of a Gateway API HTTPRoute."""

    name: K8sName
    primary: K8sName = Field(description="backendRef name that serves normally.")
    backup: K8sName = Field(description="backendRef name that takes the traffic.")
    backup_weight: int = Field(100, ge=1, le=100, description="Percent of traffic to the backup.")

    @field_validator("backup")
    @classmethod
    def _distinct(cls, value: str, info: ValidationInfo) -> str:
        if value == info.data.get("primary"):
            raise sibling_error("primary", "must differ from {sibling}")
        return value


class ServiceFailover(_Strict):
    """Switch a Service's selector to the backup pods."""

    name: K8sName
    selector: dict[str, str] = Field(min_length=1, description="The backup pods' labels.")

    @field_validator("selector")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            if not _LABEL_KEY.fullmatch(key) or not _LABEL_VALUE.fullmatch(item):
                raise PydanticCustomError(
                    "selector",
                    "{pair} is not a valid Kubernetes label selector entry",
                    {"pair": ascii(f"{key}={item}"[:80])},
                )
        return value


class RegionFailoverParams(ActionParams):
    """Either ``httproute:`` (weights) or ``service:`` (selector switch)."""

    httproute: HTTPRouteFailover | None = None
    service: ServiceFailover | None = None

    @model_validator(mode="after")
    def _one_mode(self) -> RegionFailoverParams:
        if (self.httproute is None) == (self.service is None):
            raise PydanticCustomError("one_of", "set exactly one of httproute or service")
        return self


class HTTPRouteFailback(_Strict):
    """The HTTPRoute whose recorded weights are restored."""

    name: K8sName


class ServiceFailback(_Strict):
    """The Service whose recorded selector is restored."""

    name: K8sName


class RegionFailbackParams(ActionParams):
    """Restore exactly what the matching failover recorded."""

    httproute: HTTPRouteFailback | None = None
    service: ServiceFailback | None = None

    @model_validator(mode="after")
    def _one_mode(self) -> RegionFailbackParams:
        if (self.httproute is None) == (self.service is None):
            raise PydanticCustomError("one_of", "set exactly one of httproute or service")
        return self


# --- connections.reset, http.request, notify ----------------------------------------------


class ConnectionsResetParams(ActionParams):
    """The WebSocket hub's drain endpoint on every ready pod, falling back to a rolling restart."""

    path: RelativePath = Field("/admin/connections/drain", description="Drain endpoint.")
    port: Port = 8080
    fallback: Literal["restart", "none"] = Field(
        "restart", description="What to do when the drain endpoint fails."
    )


class SecretRef(_Strict):
    """A named secret held by the responder's configuration; the runbook never holds the value."""

    secret: RefName


def _status_list(value: object) -> object:
    return [value] if isinstance(value, int) else value


class HTTPRequestParams(ActionParams):
    """A request to an allow-listed base URL; the runbook names the base, never a host."""

    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    base: RefName = Field(description="Name of an allow-listed base URL in the settings.")
    path: RelativePath
    expect_status: Annotated[
        list[Annotated[int, Field(ge=100, le=599)]],
        BeforeValidator(_status_list),
        Field(min_length=1),
    ] = Field(default_factory=lambda: [200])
    headers: dict[
        Annotated[str, pattern_check(r"[A-Za-z0-9-]{1,64}", "an HTTP header name")],
        SecretRef,
    ] = Field(default_factory=dict, description="Header values from secret references.")
    body: dict[str, Any] | None = Field(None, description="Static JSON body.")


class NotifyParams(ActionParams):
    """A message to the incident's channels (or one Slack channel); changes nothing."""

    message: str = Field(min_length=1, max_length=3000)
    channel: SlackChannel | None = None
    severity: Literal["info", "warning", "critical"] = "info"


# --- the table --------------------------------------------------------------------------------

ACTION_PARAMS: Mapping[str, type[ActionParams]] = MappingProxyType(
    {
        "deployment.restart": DeploymentRestartParams,
        "deployment.scale": DeploymentScaleParams,
        "deployment.rollback": DeploymentRollbackParams,
        "cache.clear": CacheClearParams,
        "model.reload": ModelReloadParams,
        "region.failover": RegionFailoverParams,
        "region.failback": RegionFailbackParams,
        "connections.reset": ConnectionsResetParams,
        "http.request": HTTPRequestParams,
        "notify": NotifyParams,
    }
)
"""Action name -> its parameter model. The one list of what runbooks may call."""

ACTION_NAMES: tuple[str, ...] = tuple(ACTION_PARAMS)
