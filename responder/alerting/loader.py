"""Load a folder of alert definitions with the runbooks' loader: every error, located, at once.

The YAML parsing, key positions, error wording and folder reading are the runbook
loader's (``responder.runbooks.loader``); this module adds only what is particular to
definitions: their model and the set-level check (one name per definition). A set is
returned only when there is no error at all, so hot reload keeps the old set otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from responder.alerting.schema import AlertDefinition
from responder.runbooks.loader import (
    RunbookError,
    at,
    locate,
    parse_document,
    read_folder,
    validate_document,
)

__all__ = ["DefinitionSet", "DefinitionsResult", "load_definition_text", "load_definitions"]

WHAT = "alert definition"


@dataclass(frozen=True, slots=True)
class DefinitionSet:
    """An immutable, validated set of definitions: what hot reload swaps in one assignment."""

    definitions: tuple[AlertDefinition, ...]
    sources: Mapping[str, str]
    """Definition name -> the file it came from."""
    digest: str = ""
    by_name: Mapping[str, AlertDefinition] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", MappingProxyType({d.name: d for d in self.definitions}))

    @classmethod
    def of(cls, definitions: Iterable[AlertDefinition]) -> DefinitionSet:
        items = tuple(definitions)
        return cls(items, MappingProxyType({d.name: "" for d in items}))

    def __len__(self) -> int:
        return len(self.definitions)


@dataclass(frozen=True, slots=True)
class DefinitionsResult:
    """Either a valid set and no errors, or errors and no set."""

    definitions: DefinitionSet | None
    errors: tuple[RunbookError, ...]

    @property
    def ok(self) -> bool:
        return self.definitions is not None


def load_definition_text(
    text: str, file: str
) -> tuple[AlertDefinition | None, Any, list[RunbookError]]:
    """One file's text -> (definition or None, YAML tree, errors)."""
    tree, plain, errors = parse_document(text, file, what=WHAT)
    if errors:
        return None, tree, errors
    definition, errors = validate_document(AlertDefinition, plain, tree, file)
    return definition, tree, errors


def load_definitions(
    directory: Path | str, *, display_root: Path | None = None
) -> DefinitionsResult:
    """Load and check every definition file of ``directory``; all errors at once."""
    folder = read_folder(Path(directory), display_root=display_root, what=WHAT)
    if not folder.files:
        return DefinitionsResult(None, folder.errors)
    errors = list(folder.errors)
    first: dict[str, tuple[str, Any]] = {}
    definitions: list[AlertDefinition] = []
    for display, text in folder.files:
        definition, tree, file_errors = load_definition_text(text, display)
        errors.extend(file_errors)
        if definition is None:
            continue
        earlier = first.get(definition.name)
        if earlier is not None:
            line, column, _ = locate(earlier[1], ("name",))
            message = (
                f"duplicate name {definition.name!r} (also {earlier[0]}:{line + 1}:{column + 1})"
            )
            errors.append(at(display, tree, ("name",), message))
            continue
        first[definition.name] = (display, tree)
        definitions.append(definition)
    if errors:
        return DefinitionsResult(None, tuple(sorted(set(errors))))
    sources = MappingProxyType({name: file for name, (file, _tree) in first.items()})
    return DefinitionsResult(DefinitionSet(tuple(definitions), sources, folder.digest), ())


def load_for_store(directory: Path) -> tuple[DefinitionSet | None, tuple[RunbookError, ...]]:
    """``load_definitions`` in the shape ``FolderStore`` takes."""
    result = load_definitions(directory)
    return result.definitions, result.errors
