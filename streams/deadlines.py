"""The deadline timer: finds due deadlines in the local ``remediation`` partitions and reports them.

Deadlines are data in the table (step timeout, verify window, cooldown wait, next
escalation level), so nothing is lost when a worker dies: the worker that takes the
partition over finds them on its first scan and reports every one that fell due while
nobody owned it. The timer never changes the table itself (Faust writes tables only from
inside a stream event); it publishes ``DeadlineDue`` onto ``responder.remediation`` under
the target key, and the engine acts at most once: it ignores a deadline that has moved or
already fired.

The same scan finds *orphans*: a step recorded as running or verifying that has no task
in this worker (its worker died) for longer than ``resume_grace_s``; it publishes
``Resume`` once, and the engine reconciles the action or restarts the verification.

Between full scans (every ``rescan_interval_s``, and at once after a rebalance) the
remediate agent keeps an in-memory index up to date with each record it writes, so a
tick costs a pass over small tuples rather than parsing every record.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from pydantic import ValidationError

from responder.engine.records import (
    DeadlineDue,
    DeadlineKind,
    Event,
    Resume,
    Stage,
    TargetState,
)

log = structlog.get_logger(__name__)

REPUBLISH_AFTER_S = 30.0
"""A deadline reported whose report the agent has not handled this long after is reported
again. The agent's handling (``handled``) clears a report at once, so this is only the
guard against a report the agent never reads; it must exceed any backlog the remediation
topic can have, or a storm's backlog is multiplied by reports of the same deadlines."""


@dataclass(frozen=True, slots=True)
class _Due:
    incident_id: str
    kind: DeadlineKind
    due: datetime


@dataclass(frozen=True, slots=True)
class _InFlight:
    incident_id: str
    stage: Stage
    step: int
    attempt: int
    task_kind: str  # "action" or "verify"


@dataclass(slots=True)
class _Entry:
    dues: tuple[_Due, ...]
    inflight: tuple[_InFlight, ...]


def _entry(state: TargetState) -> _Entry:
    dues: list[_Due] = []
    inflight: list[_InFlight] = []
    for run in state.runs.values():
        if run.stage_due is not None:
            dues.append(_Due(run.id, DeadlineKind.STAGE, run.stage_due))
        if run.escalation_due is not None:
            dues.append(_Due(run.id, DeadlineKind.ESCALATION, run.escalation_due))
        if run.stage is Stage.RUNNING:
            inflight.append(_InFlight(run.id, run.stage, run.step, run.attempt, "action"))
        elif run.stage is Stage.VERIFYING and run.polling:
            inflight.append(_InFlight(run.id, run.stage, run.step, run.attempt, "verify"))
    return _Entry(tuple(dues), tuple(inflight))


@dataclass
class DeadlineScanner:
    table: Any  # faust.Table[bytes, bytes]
    send: Callable[[str, Event], Awaitable[None]]
    running: Callable[[str, str], bool]
    """(incident id, "action"|"verify") -> whether this worker has that task."""
    clock: Callable[[], datetime]
    rescan_interval_s: float
    resume_grace_s: float
    _index: dict[str, _Entry] = field(default_factory=dict)
    """Targets with a deadline or a step in flight: what each tick walks."""
    _stages: dict[str, tuple[Stage, ...]] = field(default_factory=dict)
    """Every target's incidents' stages, for the incidents-by-stage gauge (not walked by ticks)."""
    _published: dict[tuple[str, DeadlineKind], tuple[datetime, float]] = field(default_factory=dict)
    """(incident id, kind) -> the due time reported and when (monotonic): one report in
    flight per deadline until the agent has handled it."""
    _orphan_since: dict[_InFlight, float] = field(default_factory=dict)
    _resumed: set[_InFlight] = field(default_factory=set)
    _next_scan: float = 0.0

    def update(self, key: str, state: TargetState) -> None:
        """The agent wrote ``state`` for ``key``."""
        self._put(self._index, self._stages, key, state)

    @staticmethod
    def _put(
        index: dict[str, _Entry], stages: dict[str, tuple[Stage, ...]], key: str, state: TargetState
    ) -> None:
        entry = _entry(state)
        if entry.dues or entry.inflight:
            index[key] = entry
        else:
            index.pop(key, None)
        if state.runs:
            stages[key] = tuple(run.stage for run in state.runs.values())
        else:
            stages.pop(key, None)

    def handled(self, incident_id: str, kind: DeadlineKind) -> None:
        """The agent has decided a ``DeadlineDue`` for this deadline (its state is written):
        if the deadline is still due, the next tick may report it again."""
        self._published.pop((incident_id, kind), None)

    def stages(self) -> list[Stage]:
        """The stage of every incident under remediation in this worker's partitions."""
        return [stage for per_target in self._stages.values() for stage in per_target]

    def invalidate(self) -> None:
        """Partitions moved: forget what may not be ours any more, rescan on the next tick."""
        self._index.clear()
        self._stages.clear()
        self._orphan_since.clear()
        self._resumed.clear()  # tasks were cancelled on revoke: what is still ours resumes again
        self._next_scan = 0.0

    def rescan(self) -> None:
        index: dict[str, _Entry] = {}
        stages: dict[str, tuple[Stage, ...]] = {}
        for raw_key, raw_value in list(self.table.items()):
            try:
                state = TargetState.model_validate_json(raw_value)
            except ValidationError:
                log.error("remediation.bad_record", key=raw_key)
                continue
            key = raw_key.decode() if isinstance(raw_key, bytes) else str(raw_key)
            self._put(index, stages, key, state)
        self._index, self._stages = index, stages

    async def tick(self) -> None:
        mono = time.monotonic()
        if mono >= self._next_scan:
            self.rescan()
            self._next_scan = mono + self.rescan_interval_s
        now = self.clock()
        live: set[_InFlight] = set()
        # Sent together, awaited once: thousands of deadlines falling due in one tick (an
        # alert storm's escalations) must not wait a broker round trip each, one by one.
        sends: list[Awaitable[None]] = []
        reported: list[tuple[str, DeadlineKind] | None] = []  # per send: its deadline
        for key, entry in list(self._index.items()):
            for due in entry.dues:
                if due.due > now:
                    continue
                deadline = (due.incident_id, due.kind)
                sent = self._published.get(deadline)
                if sent is not None and sent[0] == due.due and mono - sent[1] < REPUBLISH_AFTER_S:
                    continue  # reported, not yet handled by the agent
                self._published[deadline] = (due.due, mono)
                reported.append(deadline)
                sends.append(
                    self.send(
                        key, DeadlineDue(incident_id=due.incident_id, kind=due.kind, due=due.due)
                    )
                )
            for flight in entry.inflight:
                live.add(flight)
                if flight in self._resumed or self.running(flight.incident_id, flight.task_kind):
                    self._orphan_since.pop(flight, None)
                    continue
                since = self._orphan_since.setdefault(flight, mono)
                if mono - since >= self.resume_grace_s:
                    self._resumed.add(flight)
                    reported.append(None)
                    log.warning(
                        "remediation.resume",
                        target=key,
                        incident_id=flight.incident_id,
                        stage=flight.stage,
                    )
                    sends.append(
                        self.send(
                            key,
                            Resume(
                                incident_id=flight.incident_id,
                                step=flight.step,
                                attempt=flight.attempt,
                                stage=flight.stage,
                            ),
                        )
                    )
        if sends:
            results = await asyncio.gather(*sends, return_exceptions=True)
            failed = [r for r in results if isinstance(r, BaseException)]
            for reported_as, result in zip(reported, results, strict=True):
                if reported_as is not None and isinstance(result, BaseException):
                    self._published.pop(reported_as, None)  # not on the broker: report again
            if failed:
                raise failed[0]
        # Bounded memory: forget reports the agent never handled (their deadline is gone).
        for stale in [d for d, (_, at) in self._published.items() if mono - at > REPUBLISH_AFTER_S]:
            del self._published[stale]
        self._orphan_since = {f: t for f, t in self._orphan_since.items() if f in live}
        self._resumed &= live
