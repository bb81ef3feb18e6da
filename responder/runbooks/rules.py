"""Cross-check runbooks against Prometheus alert rules: a runbook for an alert nobody fires is dead.

``responder runbooks validate --rules deploy/prometheus/rules [--alerts alerts]`` uses this, so that a
renamed alert in a rule file fails the same CI run as a broken runbook.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from responder.runbooks.catalog import RunbookSet
from responder.runbooks.loader import RunbookError, load_text, locate
from responder.runbooks.schema import Equals, OneOf, Regex

__all__ = ["alert_names", "check_against_rules"]


def alert_names(rules_dir: Path) -> tuple[set[str], list[RunbookError]]:
    """Every ``alert:`` name in the rule files (``*.yml``, ``*.yaml``) of ``rules_dir``."""
    names: set[str] = set()
    errors: list[RunbookError] = []
    paths = sorted(p for p in rules_dir.glob("*.y*ml") if p.suffix in (".yml", ".yaml"))
    if not paths:
        errors.append(RunbookError(str(rules_dir), 1, 1, "", "no rule files (*.yml, *.yaml)"))
    for path in paths:
        try:
            document = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, YAMLError) as err:
            errors.append(RunbookError(str(path), 1, 1, "", f"cannot read rules: {err}"))
            continue
        for group in (document or {}).get("groups", []) or []:
            for rule in group.get("rules", []) or []:
                if isinstance(rule, dict) and isinstance(rule.get("alert"), str):
                    names.add(rule["alert"])
    return names, errors


def check_against_rules(
    runbooks: RunbookSet, rules_dir: Path, *, definitions: Collection[str] | None = None
) -> list[RunbookError]:
    """Errors for runbooks whose ``alertname`` condition names no alert of the rules (nor,
    when ``definitions`` is given, of the alert definitions the worker evaluates itself)."""
    names, errors = alert_names(rules_dir)
    if errors:
        return errors
    names |= set(definitions or ())
    source = f"alert rule in {rules_dir}" + (" or alert definition" if definitions else "")
    for runbook in runbooks.runbooks:
        condition = runbook.match.get("alertname")
        missing: list[str] = []
        if isinstance(condition, Equals):
            missing = [condition.value] if condition.value not in names else []
        elif isinstance(condition, OneOf):
            missing = sorted(condition.values - names)
        elif isinstance(condition, Regex) and not any(
            condition.compiled.fullmatch(name) for name in names
        ):
            missing = [condition.pattern]
        if not missing:
            continue
        file = runbooks.sources.get(runbook.id, "")
        line, column = 1, 1
        try:
            _, tree, _ = load_text(Path(file).read_text(encoding="utf-8"), file)
            line, column, _ = locate(tree, ("match", "alertname"))
            line, column = line + 1, column + 1
        except OSError:
            pass
        shown = ", ".join(repr(name) for name in missing)
        errors.append(
            RunbookError(file, line, column, "match.alertname", f"no {source} fires {shown}")
        )
    return sorted(errors)
