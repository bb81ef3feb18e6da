"""Value-only templates: ``{{ labels.NAME }}`` and ``{{ annotations.NAME }}``, nothing else.

Alert labels are untrusted text: anyone who can push a metric or an alert can
choose them. So a template here is a list of literal parts and references, parsed
once at load; rendering concatenates strings and never interprets the values (no
expressions, no filters, no second pass over a substituted value). That is why
this is not Jinja. What a rendered value may become is checked by its user: an
RFC 1123 check for Kubernetes names (``target``), string-literal escaping for
PromQL (``verify.promql``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from responder.errors import ConfigError, PermanentError

__all__ = [
    "MissingValue",
    "Ref",
    "Template",
    "TemplateSyntaxError",
    "parse_template",
]

Source = Literal["labels", "annotations"]

_OPEN = "{{"
_CLOSE = "}}"
_REF = re.compile(r"\s*(labels|annotations)\.([A-Za-z_][A-Za-z0-9_]*)\s*")


class TemplateSyntaxError(ConfigError):
    """The template text is not literal text plus ``{{ labels.X }}`` / ``{{ annotations.X }}``."""


class MissingValue(PermanentError):
    """The alert has no (or an empty) value for a referenced label or annotation."""

    def __init__(self, ref: Ref) -> None:
        super().__init__(f"{ref} is absent or empty")
        self.ref = ref


@dataclass(frozen=True, slots=True)
class Ref:
    """One ``{{ source.name }}`` placeholder."""

    source: Source
    name: str

    def __str__(self) -> str:
        return f"{self.source}.{self.name}"


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template: literal strings and references, in order."""

    text: str
    parts: tuple[str | Ref, ...]

    @property
    def refs(self) -> tuple[Ref, ...]:
        return tuple(part for part in self.parts if isinstance(part, Ref))

    @property
    def literal(self) -> str:
        """The text without placeholders (what must be valid on its own)."""
        return "".join(part for part in self.parts if isinstance(part, str))

    @property
    def is_static(self) -> bool:
        return not self.refs

    def render(
        self,
        labels: Mapping[str, str],
        annotations: Mapping[str, str],
        *,
        escape: Callable[[str], str] | None = None,
    ) -> str:
        """Concatenate literals and values; ``escape`` is applied to values only.

        Raises MissingValue when a referenced value is absent or empty: an empty
        namespace or name is never what the runbook meant.
        """
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = (labels if part.source == "labels" else annotations).get(part.name)
            if not value:
                raise MissingValue(part)
            out.append(escape(value) if escape is not None else value)
        return "".join(out)

    def render_with(self, values: Iterable[str]) -> str:
        """Render with one given value per placeholder, in order (dummy values for checks)."""
        supply = iter(values)
        return "".join(part if isinstance(part, str) else next(supply) for part in self.parts)


def parse_template(text: str) -> Template:
    """Split ``text`` into literals and references; raise TemplateSyntaxError on anything else."""
    parts: list[str | Ref] = []
    pos = 0
    while True:
        start = text.find(_OPEN, pos)
        literal = text[pos:] if start < 0 else text[pos:start]
        if _CLOSE in literal:
            raise TemplateSyntaxError("'}}' without a matching '{{'")
        if literal:
            parts.append(literal)
        if start < 0:
            break
        end = text.find(_CLOSE, start + len(_OPEN))
        if end < 0:
            raise TemplateSyntaxError("'{{' without a matching '}}'")
        inner = text[start + len(_OPEN) : end]
        found = _REF.fullmatch(inner)
        if found is None:
            raise TemplateSyntaxError(
                f"{{{{{inner}}}}} is not allowed: only {{{{ labels.NAME }}}} or "
                "{{ annotations.NAME }} (no expressions, no filters)"
            )
        source: Source = "labels" if found.group(1) == "labels" else "annotations"
        parts.append(Ref(source, found.group(2)))
        pos = end + len(_CLOSE)
    return Template(text=text, parts=tuple(parts))
