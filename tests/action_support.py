"""What the action tests (``tests/actions``) and the Kubernetes action tests
(``tests/k8s/actions``) both need to build an ``ActionContext``: a clock fixed at a known
instant and a factory of contexts for new incidents. Each folder's conftest.py turns them
into fixtures with its own step deadline (the cluster's rollouts take longer)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

from responder.actions.base import ActionContext

_incidents = itertools.count(1)


class FixedClock:
    """Wall time fixed at a known instant (timestamps such as restartedAt are predictable);
    monotonic time is real."""

    def __init__(self, now: float = 1_780_000_000.0) -> None:
        self.wall = now

    def now(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return time.monotonic()


def context_factory(clock: FixedClock, *, deadline_s: float) -> Callable[..., ActionContext]:
    """Contexts for a new incident (unique id) unless ``incident_id`` is given; the step
    deadline is ``deadline_s`` from now; keyword overrides for any other field."""

    def make(**overrides: Any) -> ActionContext:
        fields: dict[str, Any] = {
            "incident_id": f"inc-{next(_incidents)}",
            "step": 0,
            "attempt": 1,
            "deadline": clock.monotonic() + deadline_s,
            "clock": clock,
        }
        fields.update(overrides)
        return ActionContext(**fields)

    return make
