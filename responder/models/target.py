"""The object an action works on, validated before it can reach any API call.

Runbook templates fill a target from alert labels, and label values are
untrusted text. Every name here is checked as Kubernetes checks it (RFC 1123,
ASCII only) when the model is built, so a crafted value such as
``x; rm -rf /``, ``../../etc``, a 300-character string or a Unicode look-alike
is refused with a ``ValueError`` long before a URL, a key or a patch is made.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

# re.ASCII keeps \w-style surprises out; fullmatch with explicit classes keeps
# a trailing newline out (``$`` would accept one).
_DNS_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?", re.ASCII)
_DNS_SUBDOMAIN_MAX = 253

TargetKind = Literal["deployment", "service", "httproute", "redis", "http"]


def check_dns_label(value: str, *, what: str = "name") -> str:
    """Return ``value`` if it is an RFC 1123 label (namespaces, Service names), else raise."""
    if not _DNS_LABEL.fullmatch(value):
        raise ValueError(
            f"{what} {value[:80]!r} is not an RFC 1123 label "
            "(lower-case a-z, 0-9 and '-', at most 63 characters, alphanumeric at both ends)"
        )
    return value


def check_dns_subdomain(value: str, *, what: str = "name") -> str:
    """Return ``value`` if it is an RFC 1123 subdomain (Deployment names), else raise."""
    if len(value) > _DNS_SUBDOMAIN_MAX or not all(
        _DNS_LABEL.fullmatch(part) for part in value.split(".")
    ):
        raise ValueError(
            f"{what} {value[:80]!r} is not an RFC 1123 subdomain "
            "(dot-separated lower-case labels, at most 253 characters)"
        )
    return value


class Target(BaseModel):
    """Where an action applies: a named object in a namespace, optionally in a region."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str
    kind: TargetKind = "deployment"
    name: str
    region: str | None = None

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        return check_dns_label(value, what="namespace")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_dns_subdomain(value, what="name")

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        return None if value is None else check_dns_label(value, what="region")

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"
