"""PromQL in runbooks: syntax checked by a real parser, label values only as string literals.

A verify query is a template (``{engine="{{ labels.engine }}"}``). At load the
placeholders are replaced by unique dummy values and the result is parsed with
``promql-parser`` (the Rust parser behind its PyPI wheel); the parse tree must
show every dummy exactly as the value of an ``=`` or ``!=`` label matcher. So a
label value can only ever be a matcher's string, and at render time it is
escaped as a PromQL string literal: a value like ``"} or vector(1) #`` stays one
harmless string instead of rewriting the query.
"""

from __future__ import annotations

from collections.abc import Mapping

import promql_parser

from responder.errors import ConfigError, PermanentError
from responder.runbooks.templates import Template, parse_template

__all__ = [
    "PromQLError",
    "PromQLRenderError",
    "escape_string",
    "parse_promql",
    "parse_promql_template",
    "render_promql",
]

_DUMMY = "responderplaceholder{}x"


class PromQLError(ConfigError):
    """The expression does not parse, or a placeholder sits where a value could become syntax."""


class PromQLRenderError(PermanentError):
    """An alert's value cannot be put into the query (not valid Unicode text)."""


def escape_string(value: str) -> str:
    """Escape ``value`` for the inside of a double-quoted PromQL string literal."""
    out: list[str] = []
    for char in value:
        if 0xD800 <= ord(char) <= 0xDFFF:
            raise PromQLRenderError("a label value holds a lone surrogate: not valid Unicode text")
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return "".join(out)


def _matcher_values(expr: promql_parser.Expr) -> tuple[list[str], list[str]]:
    """(values of = / != matchers, every other string in the tree that could hold a dummy)."""
    literal_values: list[str] = []
    elsewhere: list[str] = []

    def visit(node: object) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                elsewhere.append(node.name)
            groups = [node.matchers.matchers, *node.matchers.or_matchers]
            for group in groups:
                for matcher in group:
                    elsewhere.append(matcher.name)
                    op = str(matcher.op)
                    if matcher.name != "__name__" and op in ("MatchOp.Equal", "MatchOp.NotEqual"):
                        literal_values.append(matcher.value)
                    else:
                        elsewhere.append(matcher.value)
        elif isinstance(node, promql_parser.StringLiteral):
            elsewhere.append(node.val)
        elif isinstance(node, promql_parser.AggregateExpr | promql_parser.BinaryExpr):
            elsewhere.append(str(node.modifier))  # by/on/group_left label lists
        return True

    promql_parser.walk(expr, visit)
    return literal_values, elsewhere


def parse_promql(text: str) -> promql_parser.Expr:
    """The parse tree of a PromQL expression, or PromQLError with the parser's message."""
    try:
        return promql_parser.parse(text)
    except ValueError as err:
        raise PromQLError(f"invalid PromQL: {err}") from None


def parse_promql_template(text: str) -> Template:
    """Parse and check a PromQL template; raise PromQLError or TemplateSyntaxError."""
    template = parse_template(text)
    dummies = [_DUMMY.format(index) for index in range(len(template.refs))]
    expr = parse_promql(template.render_with(dummies))
    literal_values, elsewhere = _matcher_values(expr)
    for dummy, ref in zip(dummies, template.refs, strict=True):
        exact = sum(value == dummy for value in literal_values)
        stray = sum(dummy in value for value in elsewhere) + sum(
            dummy in value and value != dummy for value in literal_values
        )
        if exact != 1 or stray:
            raise PromQLError(
                f"{{{{ {ref} }}}} must be the whole value of a label matcher with = or !=, "
                f'e.g. {{{ref.name}="{{{{ {ref} }}}}"}}'
            )
    return template


def render_promql(
    template: Template, labels: Mapping[str, str], annotations: Mapping[str, str]
) -> str:
    """Substitute escaped values; the result is parsed again so a bad render never leaves here.

    Raises templates.MissingValue when a referenced value is absent, PromQLRenderError
    when a value cannot be represented or the result does not parse (which escaping
    should make impossible).
    """
    text = template.render(labels, annotations, escape=escape_string)
    try:
        parse_promql(text)
    except PromQLError as err:
        raise PromQLRenderError(str(err)) from None
    return text
