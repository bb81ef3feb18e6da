"""What every check kind shares: its verdict, the checker interface, the window to poll in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar


@dataclass(frozen=True, slots=True)
class Verdict:
    """One evaluation: does the check hold now, and a line saying why (shown in the audit)."""

    ok: bool
    detail: str
    measured: Mapping[str, Any] = field(default_factory=dict)
    """What the check measured, as JSON values (a probe's verdict, success, confidence,
    latency); recorded with the step on the incident and in the audit."""


class Check(Protocol):
    """A check's parameters (``PromQL``, ``HTTPGet``, …): plain frozen data, one type per kind."""


C_contra = TypeVar("C_contra", contravariant=True)


class Checker(Protocol[C_contra]):
    """Evaluates one kind of check once; a failure to evaluate may raise (it counts as "not yet")."""

    async def __call__(self, check: C_contra) -> Verdict: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class VerifySpec:
    """Poll ``check`` every ``every_s`` until it holds or ``until`` (UTC) has passed."""

    check: Check
    every_s: float
    until: datetime
