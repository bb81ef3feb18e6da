"""Load a runbook directory; report every error as ``file:line:col key.path: message``.

An SRE fixes a runbook from the error text alone, so each error points at the
YAML key (ruamel.yaml's round-trip loader keeps line and column for every key
and item), names the key path as the runbook spells it (``steps[2].with.max``),
and says what is wrong. Errors of all files are collected before anything is
returned: a reviewer sees the whole list in one CI run.

Loading is in three passes: YAML syntax per file, the pydantic models per file
(parameters validated by each action's own model), then the whole set
(duplicate ids, runbooks that never match, ties). A set is returned only when
there is no error at all; hot reload depends on that.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from responder.runbooks.catalog import RunbookSet
from responder.runbooks.matcher import set_problems
from responder.runbooks.schema import Runbook, semantic_problems

__all__ = [
    "FolderFiles",
    "LoadResult",
    "RunbookError",
    "at",
    "load_directory",
    "load_text",
    "locate",
    "parse_document",
    "read_folder",
    "runbook_files",
    "validate_document",
]

Loc = tuple[str | int, ...]
SUFFIXES = (".yaml", ".yml")
MAX_FILE_BYTES = 256 * 1024


@dataclass(frozen=True, order=True, slots=True)
class RunbookError:
    """One problem, located: ``file:line:col key.path: message`` (line and column from 1).

    The error of every folder of declarative files (runbooks, alert definitions)."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column} {self.path or '(document)'}: {self.message}"


@dataclass(frozen=True, slots=True)
class LoadResult:
    """Either a valid set and no errors, or errors and no set."""

    runbooks: RunbookSet | None
    errors: tuple[RunbookError, ...]

    @property
    def ok(self) -> bool:
        return self.runbooks is not None


@dataclass(frozen=True, slots=True)
class _Parsed:
    file: str
    tree: Any
    runbook: Runbook | None


# --- key paths and positions ----------------------------------------------------------------


def format_path(loc: Loc) -> str:
    """``("steps", 2, "with", "max")`` -> ``steps[2].with.max``."""
    out = ""
    for element in loc:
        if isinstance(element, int):
            out += f"[{element}]"
        elif element.replace("_", "").replace("-", "").isalnum():
            out += f".{element}" if out else element
        else:
            out += f"[{element!r}]"
    return out


def _start(node: Any) -> tuple[int, int] | None:
    lc = getattr(node, "lc", None)
    return None if lc is None else (lc.line, lc.col)


def _key_position(node: CommentedMap, key: object) -> tuple[int, int]:
    """Where ``key`` is written: in this mapping, or in the anchor a ``<<:`` merge took it from."""
    if key in node.lc.data:
        line, column = node.lc.key(key)
        return line, column
    for item in getattr(node, "merge", ()):
        source = item[1] if isinstance(item, tuple) else item  # (index, map) in older ruamel
        if isinstance(source, CommentedMap) and key in source:
            return _key_position(source, key)
    return _start(node) or (0, 0)


def locate(tree: Any, loc: Sequence[str | int]) -> tuple[int, int, Loc]:
    """Position (0-based) and the real key path of a pydantic error location in the YAML tree.

    Elements that are not keys of the document (discriminated-union tags) are skipped;
    a final element that is absent (a missing key) is kept in the path and points at
    its parent mapping.
    """
    node = tree
    position = _start(tree) or (0, 0)
    path: list[str | int] = []
    for index, element in enumerate(loc):
        last = index == len(loc) - 1
        if element == "[key]":
            break
        if isinstance(node, CommentedMap) and element in node:
            position = _key_position(node, element)
            node = node[element]
            path.append(element)
        elif (
            isinstance(node, CommentedSeq) and isinstance(element, int) and 0 <= element < len(node)
        ):
            position = node.lc.item(element)
            node = node[element]
            path.append(element)
        elif last:
            path.append(element)
            position = _start(node) or position
    return position[0], position[1], tuple(path)


# --- YAML -> plain Python ----------------------------------------------------------------------


MAX_NODES = 20_000
MAX_DEPTH = 40


class _TooLarge(Exception):
    """The document expands (through aliases) beyond what a runbook can need."""


def _plain(node: Any, budget: list[int] | None = None, depth: int = 0) -> Any:
    """ruamel's round-trip types -> dict/list/str/int/float/bool/None for pydantic.

    Aliases are expanded here, so a node budget and a depth limit stop an alias bomb
    (or a self-referencing alias) from taking the daemon's memory or stack.
    """
    budget = [MAX_NODES] if budget is None else budget
    budget[0] -= 1
    if budget[0] < 0 or depth > MAX_DEPTH:
        raise _TooLarge
    if isinstance(node, dict):
        return {
            _plain(key, budget, depth + 1): _plain(value, budget, depth + 1)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_plain(item, budget, depth + 1) for item in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, datetime | date):
        return node.isoformat()
    return str(node)


# --- messages ---------------------------------------------------------------------------------


def _message(error: Any, loc: Loc) -> tuple[Loc, str]:
    """Pydantic's error -> (loc, message in the runbook's words)."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return loc, "required"
    if kind == "extra_forbidden":
        return loc, "unknown key"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        discriminator = str(ctx.get("discriminator", "")).strip("'")
        if kind == "union_tag_not_found":
            return (*loc, discriminator), "required"
        expected = ctx.get("expected_tags", "")
        return (*loc, discriminator), f"must be one of {expected} (got {ctx.get('tag')!r})"
    message = str(error["msg"])
    if "sibling" in ctx:
        return loc, message.replace(str(ctx["sibling"]), format_path((*loc[:-1], ctx["sibling"])))
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if message.startswith("Input should be"):
        message = "must be" + message[len("Input should be") :]
    return loc, message


def _validation_errors(file: str, tree: Any, err: ValidationError) -> list[RunbookError]:
    found: list[RunbookError] = []
    for error in err.errors(include_url=False):
        line, column, path = locate(tree, error["loc"])
        path, message = _message(error, path)
        found.append(RunbookError(file, line + 1, column + 1, format_path(path), message))
    return found


def at(file: str, tree: Any, loc: Loc, message: str) -> RunbookError:
    line, column, path = locate(tree, loc)
    return RunbookError(file, line + 1, column + 1, format_path(path), message)


# --- loading -------------------------------------------------------------------------------------


def parse_document(
    text: str, file: str, *, what: str = "runbook"
) -> tuple[Any, Any, list[RunbookError]]:
    """One file's YAML -> (round-trip tree for positions, plain Python for pydantic, errors).

    Shared by every folder of declarative files (runbooks, alert definitions): one mapping
    per file, aliases expanded within a budget.
    """
    yaml = YAML(typ="rt")
    try:
        tree = yaml.load(text)
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, column = (mark.line, mark.column) if mark is not None else (0, 0)
        problem = err.problem or err.context or "invalid YAML"
        return None, None, [RunbookError(file, line + 1, column + 1, "", f"YAML: {problem}")]
    except YAMLError as err:
        return None, None, [RunbookError(file, 1, 1, "", f"YAML: {err}")]
    if not isinstance(tree, CommentedMap):
        return (
            None,
            tree,
            [RunbookError(file, 1, 1, "", f"must be a mapping (one {what} per file)")],
        )
    try:
        plain = _plain(tree)
    except _TooLarge:
        message = f"more than {MAX_NODES} values or {MAX_DEPTH} levels once aliases are expanded"
        return None, tree, [RunbookError(file, 1, 1, "", message)]
    return tree, plain, []


M = TypeVar("M", bound=BaseModel)


def validate_document(
    model: type[M], plain: Any, tree: Any, file: str
) -> tuple[M | None, list[RunbookError]]:
    """The plain document validated by ``model``; every error located in the tree."""
    try:
        return model.model_validate(plain), []
    except ValidationError as err:
        return None, sorted(_validation_errors(file, tree, err))


def load_text(text: str, file: str) -> tuple[Runbook | None, Any, list[RunbookError]]:
    """One runbook's text -> (runbook or None, YAML tree, errors)."""
    tree, plain, errors = parse_document(text, file)
    if errors:
        return None, tree, errors
    runbook, errors = validate_document(Runbook, plain, tree, file)
    if runbook is None:
        return None, tree, errors
    problems = sorted(at(file, tree, loc, message) for loc, message in semantic_problems(runbook))
    return (None if problems else runbook), tree, problems


def runbook_files(directory: Path) -> list[Path]:
    """The YAML files of a folder (runbooks, alert definitions), in name order.

    Not recursive; hidden files (editor locks such as ``.#a.yaml``, the ``..data`` links of
    a Kubernetes ConfigMap volume) are skipped; symlinks to files are followed.
    """
    return sorted(
        path
        for path in directory.iterdir()
        if path.is_file() and path.suffix in SUFFIXES and not path.name.startswith(".")
    )


def _read(path: Path, display: str) -> tuple[str | None, RunbookError | None]:
    try:
        raw = path.read_bytes()
    except OSError as err:
        return None, RunbookError(display, 1, 1, "", f"cannot read: {err.strerror}")
    if len(raw) > MAX_FILE_BYTES:
        return None, RunbookError(display, 1, 1, "", f"larger than {MAX_FILE_BYTES} bytes")
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as err:
        return None, RunbookError(display, 1, 1, "", f"not UTF-8 (byte {err.start})")


@dataclass(frozen=True, slots=True)
class FolderFiles:
    """The readable files of a folder: (display name, text) each, the unreadable ones'
    errors, and a digest of all their bytes (equal digests: nothing changed)."""

    files: tuple[tuple[str, str], ...]
    errors: tuple[RunbookError, ...]
    digest: str


def read_folder(directory: Path, *, display_root: Path | None = None, what: str) -> FolderFiles:
    """Every YAML file of ``directory`` read as text; ``what`` names them in errors."""
    if not directory.is_dir():
        return FolderFiles((), (RunbookError(str(directory), 1, 1, "", "not a directory"),), "")
    paths = runbook_files(directory)
    if not paths:
        error = RunbookError(str(directory), 1, 1, "", f"no {what} files (*.yaml, *.yml)")
        return FolderFiles((), (error,), "")
    files: list[tuple[str, str]] = []
    errors: list[RunbookError] = []
    digest = hashlib.sha256()
    for path in paths:
        display = _display(path, display_root)
        text, read_error = _read(path, display)
        if read_error is not None or text is None:
            errors.append(read_error or RunbookError(display, 1, 1, "", "unreadable"))
            continue
        digest.update(path.name.encode() + b"\0" + text.encode() + b"\0")
        files.append((display, text))
    return FolderFiles(tuple(files), tuple(errors), digest.hexdigest())


def load_directory(directory: Path | str, *, display_root: Path | None = None) -> LoadResult:
    """Load and check every runbook file of ``directory``; all errors at once."""
    folder = read_folder(Path(directory), display_root=display_root, what="runbook")
    if not folder.files:
        return LoadResult(None, folder.errors)
    errors = list(folder.errors)
    parsed: list[_Parsed] = []
    for display, text in folder.files:
        runbook, tree, file_errors = load_text(text, display)
        errors.extend(file_errors)
        parsed.append(_Parsed(display, tree, runbook))
    valid = [item for item in parsed if item.runbook is not None]
    errors.extend(_duplicate_ids(valid))
    by_id = {item.runbook.id: item for item in valid if item.runbook is not None}
    unique = [item.runbook for item in by_id.values() if item.runbook is not None]
    for runbook, message in set_problems(unique):
        item = by_id[runbook.id]
        errors.append(at(item.file, item.tree, ("match",), message))
    if errors:
        return LoadResult(None, tuple(sorted(set(errors))))
    return LoadResult(
        RunbookSet(
            runbooks=tuple(unique),
            sources={runbook_id: item.file for runbook_id, item in by_id.items()},
            digest=folder.digest,
        ),
        (),
    )


def _display(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return str(path.relative_to(root))
        except ValueError:
            return str(path)
    return str(path)


def _duplicate_ids(parsed: list[_Parsed]) -> list[RunbookError]:
    first: dict[str, _Parsed] = {}
    errors: list[RunbookError] = []
    for item in parsed:
        assert item.runbook is not None
        earlier = first.setdefault(item.runbook.id, item)
        if earlier is not item:
            line, column, _ = locate(earlier.tree, ("id",))
            errors.append(
                at(
                    item.file,
                    item.tree,
                    ("id",),
                    f"duplicate id {item.runbook.id!r} (also {earlier.file}:{line + 1}:{column + 1})",
                )
            )
    return errors
