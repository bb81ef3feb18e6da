"""Which runbook handles an alert: compiled conditions, an index, and a fixed precedence.

Matching runs for every alert the triage agent sees, so the set is compiled once
per load: runbooks are bucketed by the ``alertname`` they name (most do), each
bucket is pre-sorted by precedence, and the first runbook in the bucket whose
remaining conditions hold wins. Precedence is ``priority`` (higher first), then
specificity (the sum of condition weights below), then id, so the outcome never
depends on file order.

Label semantics follow Prometheus and Alertmanager: a missing label and an empty
one are the same thing, and regular expressions are anchored at both ends.

The same module answers the loader's questions about the whole set: can a
runbook ever match (or does a higher-ranked one take every alert it would get),
and do two runbooks tie?
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from responder.runbooks.schema import Absent, Condition, Equals, OneOf, Present, Regex, Runbook

__all__ = [
    "ConditionResult",
    "Explanation",
    "Matcher",
    "RunbookExplanation",
    "condition_holds",
    "describe",
    "rank_key",
    "set_problems",
    "specificity",
]

ALERTNAME = "alertname"
WEIGHTS: Mapping[type, int] = {Equals: 4, OneOf: 3, Regex: 2, Present: 1, Absent: 1}
"""Specificity weight of each condition kind: an exact value says more than a pattern."""


def specificity(runbook: Runbook) -> int:
    """Sum of the weights of the runbook's conditions."""
    return sum(WEIGHTS[type(condition)] for condition in runbook.match.values())


def rank_key(runbook: Runbook) -> tuple[int, int, str]:
    """Sort key: higher priority first, then more specific, then id (stable, reviewable)."""
    return (-runbook.priority, -specificity(runbook), runbook.id)


def condition_holds(condition: Condition, value: str) -> bool:
    """Does ``value`` ('' for a missing label) satisfy ``condition``?"""
    if isinstance(condition, Equals):
        return value == condition.value
    if isinstance(condition, OneOf):
        return value in condition.values
    if isinstance(condition, Regex):
        return condition.compiled.fullmatch(value) is not None
    if isinstance(condition, Present):
        return value != ""
    return value == ""


def describe(condition: Condition) -> str:
    """Human form for explanations: ``= "x"``, ``in [a, b]``, ``=~ "re"``, ``present``."""
    if isinstance(condition, Equals):
        return f"= {condition.value!r}"
    if isinstance(condition, OneOf):
        return f"in {sorted(condition.values)!r}"
    if isinstance(condition, Regex):
        return f"=~ {condition.pattern!r}"
    return "present" if isinstance(condition, Present) else "absent"


# --- the compiled matcher --------------------------------------------------------------------

_EQ, _IN, _RE, _PRESENT, _ABSENT = range(5)


@dataclass(frozen=True, slots=True)
class _Compiled:
    runbook: Runbook
    # (kind, label, argument); the alertname condition is left out when the bucket implies it.
    checks: tuple[tuple[int, str, object], ...]


def _compile_checks(runbook: Runbook, *, skip: str | None) -> tuple[tuple[int, str, object], ...]:
    checks: list[tuple[int, str, object]] = []
    for label, condition in runbook.match.items():
        if label == skip:
            continue
        if isinstance(condition, Equals):
            checks.append((_EQ, label, condition.value))
        elif isinstance(condition, OneOf):
            checks.append((_IN, label, condition.values))
        elif isinstance(condition, Regex):
            checks.append((_RE, label, condition.compiled.fullmatch))
        elif isinstance(condition, Present):
            checks.append((_PRESENT, label, None))
        else:
            checks.append((_ABSENT, label, None))
    # Cheap exact comparisons first: most candidates fail on them.
    checks.sort(key=lambda check: check[0])
    return tuple(checks)


class Matcher:
    """Compiled, immutable matcher over one runbook set."""

    def __init__(self, runbooks: Iterable[Runbook]) -> None:
        ordered = sorted(runbooks, key=rank_key)
        self.runbooks: tuple[Runbook, ...] = tuple(ordered)
        generic: list[tuple[tuple[int, int, str], _Compiled]] = []
        buckets: dict[str, list[tuple[tuple[int, int, str], _Compiled]]] = {}
        for runbook in ordered:
            key = rank_key(runbook)
            condition = runbook.match.get(ALERTNAME)
            if isinstance(condition, Equals | OneOf):
                compiled = _Compiled(runbook, _compile_checks(runbook, skip=ALERTNAME))
                names = [condition.value] if isinstance(condition, Equals) else condition.values
                for name in names:
                    buckets.setdefault(name, []).append((key, compiled))
            else:
                generic.append((key, _Compiled(runbook, _compile_checks(runbook, skip=None))))
        self._generic: tuple[_Compiled, ...] = tuple(item for _, item in generic)
        self._index: dict[str, tuple[_Compiled, ...]] = {
            name: tuple(item for _, item in sorted(members + generic, key=lambda pair: pair[0]))
            for name, members in buckets.items()
        }

    def match(self, labels: Mapping[str, str]) -> Runbook | None:
        """The winning runbook for these labels, or None."""
        candidates = self._index.get(labels.get(ALERTNAME, ""), self._generic)
        for compiled in candidates:
            for kind, label, arg in compiled.checks:
                value = labels.get(label, "")
                if kind == _EQ:
                    if value != arg:
                        break
                elif kind == _IN:
                    if value not in arg:  # type: ignore[operator]
                        break
                elif kind == _RE:
                    if arg(value) is None:  # type: ignore[operator]
                        break
                elif kind == _PRESENT:
                    if not value:
                        break
                elif value:
                    break
            else:
                return compiled.runbook
        return None

    def explain(self, labels: Mapping[str, str]) -> Explanation:
        """Every runbook's verdict, condition by condition (slow path, for humans)."""
        verdicts = []
        for runbook in self.runbooks:
            results = tuple(
                ConditionResult(
                    label=label,
                    condition=describe(condition),
                    value=labels.get(label, ""),
                    holds=condition_holds(condition, labels.get(label, "")),
                )
                for label, condition in runbook.match.items()
            )
            verdicts.append(RunbookExplanation(runbook=runbook, conditions=results))
        winner = next((verdict for verdict in verdicts if verdict.matched), None)
        return Explanation(winner=winner, verdicts=tuple(verdicts))


@dataclass(frozen=True, slots=True)
class ConditionResult:
    label: str
    condition: str
    value: str
    holds: bool


@dataclass(frozen=True, slots=True)
class RunbookExplanation:
    runbook: Runbook
    conditions: tuple[ConditionResult, ...]

    @property
    def matched(self) -> bool:
        return all(result.holds for result in self.conditions)

    @property
    def failed(self) -> tuple[ConditionResult, ...]:
        return tuple(result for result in self.conditions if not result.holds)


@dataclass(frozen=True, slots=True)
class Explanation:
    winner: RunbookExplanation | None
    verdicts: tuple[RunbookExplanation, ...] = field(default=())

    def also_matched(self) -> tuple[RunbookExplanation, ...]:
        """Runbooks that matched but lost on precedence."""
        return tuple(v for v in self.verdicts if v.matched and v is not self.winner)

    def near_misses(self, limit: int = 5) -> tuple[RunbookExplanation, ...]:
        """Runbooks that failed on one condition only, or on others than the alertname.

        Those that got the alertname right come first: they are the likely surprise.
        """

        def alertname_failed(verdict: RunbookExplanation) -> bool:
            return any(result.label == ALERTNAME for result in verdict.failed)

        misses = [
            verdict
            for verdict in self.verdicts
            if not verdict.matched and (len(verdict.failed) == 1 or not alertname_failed(verdict))
        ]
        misses.sort(key=lambda verdict: (alertname_failed(verdict), len(verdict.failed)))
        return tuple(misses[:limit])


# --- whole-set analysis for the loader ---------------------------------------------------------


def _implies(narrow: Condition | None, wide: Condition | None) -> bool:
    """Does every value satisfying ``narrow`` (None: unconstrained) satisfy ``wide``?"""
    if wide is None:
        return True
    if narrow is None:
        return False
    if isinstance(narrow, Equals):
        return condition_holds(wide, narrow.value)
    if isinstance(narrow, OneOf):
        return all(condition_holds(wide, value) for value in narrow.values)
    if isinstance(narrow, Regex):
        if isinstance(wide, Regex):
            return wide.pattern == narrow.pattern
        return isinstance(wide, Present) and narrow.compiled.fullmatch("") is None
    if isinstance(narrow, Present):
        return isinstance(wide, Present)
    return condition_holds(wide, "")


def _samples(condition: Condition | None) -> set[str]:
    if isinstance(condition, Equals):
        return {condition.value}
    if isinstance(condition, OneOf):
        return set(condition.values)
    if isinstance(condition, Regex) and condition.pattern.isalnum():
        return {condition.pattern}
    return set()


def _witness(a: Runbook, b: Runbook) -> dict[str, str] | None:
    """Labels that both runbooks match, if this simple search can find some."""
    labels: dict[str, str] = {}
    for label in sorted(set(a.match) | set(b.match)):
        left, right = a.match.get(label), b.match.get(label)
        candidates = sorted({"", "x"} | _samples(left) | _samples(right))
        found = next(
            (
                value
                for value in candidates
                if (left is None or condition_holds(left, value))
                and (right is None or condition_holds(right, value))
            ),
            None,
        )
        if found is None:
            return None
        if found:
            labels[label] = found
    return labels


def set_problems(runbooks: Iterable[Runbook]) -> list[tuple[Runbook, str]]:
    """Runbooks that can never match (shadowed) and pairs that tie, as (runbook, message)."""
    ordered = sorted(runbooks, key=rank_key)
    problems: list[tuple[Runbook, str]] = []
    for position, runbook in enumerate(ordered):
        if isinstance(runbook.match.get(ALERTNAME), Absent):
            problems.append((runbook, "never matches: every alert has an alertname"))
            continue
        for earlier in ordered[:position]:
            if rank_key(earlier)[:2] == rank_key(runbook)[:2]:
                witness = _witness(earlier, runbook)
                if witness is not None:
                    problems.append(
                        (
                            runbook,
                            f"ties with {earlier.id!r}: same priority {runbook.priority} and "
                            f"specificity {specificity(runbook)}, and both match {witness}; "
                            "set priority on one of them",
                        )
                    )
                    break
            elif all(
                _implies(runbook.match.get(label), wide) for label, wide in earlier.match.items()
            ):
                problems.append(
                    (
                        runbook,
                        f"never matches: every alert it matches goes to {earlier.id!r} first "
                        f"(priority {earlier.priority}, specificity {specificity(earlier)} vs "
                        f"priority {runbook.priority}, specificity {specificity(runbook)})",
                    )
                )
                break
    return problems
