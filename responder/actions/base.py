"""The one interface every remediation action implements, and what it is given and returns.

The remediation engine calls ``run`` once per (incident, step, attempt) and,
after a crash, ``reconcile`` to learn whether an earlier ``run`` took effect.
Everything an action needs about the call (the idempotency key, dry-run, the
deadline, the clock, a bound logger) travels in ``ActionContext``; what it
needs about the world (API clients, settings) is given to its constructor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

import structlog
from pydantic import BaseModel, ConfigDict, Field

from responder.clock import Clock, SystemClock
from responder.errors import TemporaryError
from responder.models.target import Target

#: Annotation on the Kubernetes object an action changed: JSON with the key and a result summary.
LAST_ACTION_ANNOTATION = "responder.musearoo.io/last-action"


@dataclass(frozen=True)
class ActionContext:
    """One execution of one step of one incident."""

    incident_id: str
    step: int
    attempt: int = 1
    dry_run: bool = False
    #: Monotonic time (``clock.monotonic()``) by which the action must have finished.
    deadline: float | None = None
    clock: Clock = field(default_factory=SystemClock)
    logger: Any = field(default_factory=structlog.get_logger)

    @property
    def key(self) -> str:
        """Idempotency key: the same (incident, step, attempt) always names the same effect."""
        return f"{self.incident_id}/{self.step}/{self.attempt}"

    def utc_iso(self) -> str:
        """The clock's wall time as RFC 3339 UTC with milliseconds, for restartedAt.

        ``kubectl`` writes whole seconds; two restarts within one second would then write
        the same template and the second would restart nothing while reporting that it
        did, so milliseconds are kept (still valid RFC 3339).
        """
        at = datetime.fromtimestamp(self.clock.now(), UTC)
        return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"

    def remaining(self, cap: float) -> float:
        """Seconds left before the deadline, at most ``cap``; raises once the deadline has passed."""
        if self.deadline is None:
            return cap
        left = self.deadline - self.clock.monotonic()
        if left <= 0:
            raise TemporaryError(f"step deadline passed for {self.key}", delay=0.0)
        return min(cap, left)


class ActionResult(BaseModel):
    """What an action did (or, in dry-run, would do), in a form the audit log keeps as is."""

    model_config = ConfigDict(extra="forbid")

    action: str
    target: str
    key: str
    changed: bool
    dry_run: bool = False
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    detail: str = ""
    #: Action-specific facts: the patch body sent, the keys deleted, each endpoint's answer.
    data: dict[str, Any] = Field(default_factory=dict)
    duration_s: float = 0.0
    #: Set when this call was a repeat of an already applied key: the earlier result.
    repeat_of: ActionResult | None = None

    def summary(self) -> dict[str, Any]:
        """The compact form recorded in the last-action annotation (no bulky ``data``)."""
        return {
            "key": self.key,
            "action": self.action,
            "target": self.target,
            "changed": self.changed,
            "before": self.before,
            "after": self.after,
            "detail": self.detail[:500],
        }


@runtime_checkable
class Action(Protocol):
    """A remediation the engine can run, repeat safely, and ask about after a crash."""

    name: str

    async def run(self, ctx: ActionContext, target: Target, params: Any) -> ActionResult:
        """Apply the action once for ``ctx.key``; a repeat with the same key changes nothing."""
        ...

    async def reconcile(self, ctx: ActionContext, target: Target, key: str) -> bool | None:
        """Did the run with ``key`` take effect? ``None`` when the target cannot tell."""
        ...


def repeat_result(earlier: dict[str, Any], ctx: ActionContext, started: float) -> ActionResult:
    """The answer to a repeat: nothing changed now, and here is what the first run did."""
    first = ActionResult(
        action=str(earlier.get("action", "")),
        target=str(earlier.get("target", "")),
        key=str(earlier.get("key", ctx.key)),
        changed=bool(earlier.get("changed", False)),
        before=earlier.get("before"),
        after=earlier.get("after"),
        detail=str(earlier.get("detail", "")),
    )
    return ActionResult(
        action=first.action,
        target=first.target,
        key=ctx.key,
        changed=False,
        dry_run=ctx.dry_run,
        before=first.after,
        after=first.after,
        detail=f"already applied for {ctx.key}; nothing done",
        duration_s=ctx.clock.monotonic() - started,
        repeat_of=first,
    )


def dry_run_result(
    action: str,
    target: object,
    ctx: ActionContext,
    started: float,
    *,
    detail: str,
    data: dict[str, Any],
) -> ActionResult:
    """The answer to a dry run that stops before any call: what would be done, to what."""
    return ActionResult(
        action=action,
        target=str(target),
        key=ctx.key,
        changed=False,
        dry_run=True,
        detail=detail,
        data=data,
        duration_s=ctx.clock.monotonic() - started,
    )
