"""An immutable, validated set of runbooks: what the loader produces and hot reload swaps.

Everything derived from the set (the compiled matcher, the id index, where each
runbook came from) is built once here, so a swap is one reference assignment and
a reader holding the old set keeps a consistent view.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from responder.runbooks.matcher import Matcher
from responder.runbooks.schema import Runbook

__all__ = ["RunbookSet"]


@dataclass(frozen=True, slots=True)
class RunbookSet:
    runbooks: tuple[Runbook, ...]
    sources: Mapping[str, str]
    """Runbook id -> the file it came from (for messages and explanations)."""
    digest: str = ""
    """Hash of the files' bytes: equal digests mean nothing changed."""
    matcher: Matcher = field(init=False, repr=False, compare=False)
    by_id: Mapping[str, Runbook] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "matcher", Matcher(self.runbooks))
        object.__setattr__(
            self, "by_id", MappingProxyType({runbook.id: runbook for runbook in self.runbooks})
        )

    @classmethod
    def of(
        cls, runbooks: Iterable[Runbook], sources: Mapping[str, str] | None = None
    ) -> RunbookSet:
        items = tuple(runbooks)
        return cls(
            runbooks=items,
            sources=MappingProxyType(dict(sources or {runbook.id: "" for runbook in items})),
        )

    def __len__(self) -> int:
        return len(self.runbooks)
