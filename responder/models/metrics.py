"""The records of ``responder.metrics``: what one evaluation of an alert definition returned.

The poller (``responder.alerting.poller``) writes one :class:`MetricSample` per series the
definition's expression returned, keyed by :func:`series_key`, then one
:class:`EvaluationDone` to every partition: "this definition was evaluated at ``at`` and
succeeded". Each partition's evaluator then knows that a series of the definition it holds
and did not see at ``at`` is absent (Prometheus' semantics resolve it), while a failed
evaluation writes nothing at all, so missing data never resolves an alert.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from responder.models.alerts import label_fingerprint

__all__ = ["EvaluationDone", "MetricRecord", "MetricSample", "series_key", "series_labels"]


class MetricSample(BaseModel):
    """One series of one evaluation."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["sample"] = "sample"
    definition: str
    at: float
    """The evaluation's timestamp (Unix seconds), the ``time`` the query was run at."""
    labels: dict[str, str]
    """The series' labels, ``__name__`` dropped."""
    value: float


class EvaluationDone(BaseModel):
    """One evaluation of ``definition`` at ``at`` succeeded; its samples precede this."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["evaluated"] = "evaluated"
    definition: str
    at: float


MetricRecord = Annotated[MetricSample | EvaluationDone, Field(discriminator="kind")]


def series_labels(metric: Mapping[str, str]) -> dict[str, str]:
    """A result's labels as the alert sees them: ``__name__`` dropped (as Prometheus does)."""
    return {name: value for name, value in metric.items() if name != "__name__"}


def series_key(definition: str, labels: Mapping[str, str]) -> str:
    """The key of a series of a definition: ``<definition>/<fingerprint of its labels>``."""
    return f"{definition}/{label_fingerprint(labels)}"
