"""Rendering a merchant's mail template safely: Jinja2's sandbox, narrowed further.

A template is plain text with `{{ variable }}`, `{% if %}` and `{% for line in lines %}`. What it
may do is checked before it runs, each refusal with a message the merchant can act on:

- only the variables of its kind (`{{ customer_name }}`), the fields of each line
  (`{{ line.eta }}`) and the loop counters (`{{ loop.index }}`); no other attribute, nothing
  starting with an underscore, no function calls, no `{% set %}`, `{% macro %}`, `{% include %}`;
- only a short list of harmless filters (no `attr`, `format`, `safe`, `replace`...);
- loops only over `lines`, at most two deep, so every loop ends with the data;
- `*` only on small results, no `**`, no `%` on text (which can build huge strings);
- the rendered output is refused past MAX_OUTPUT characters or MAX_SECONDS.

Autoescape is on for the HTML rendering, and the template's own text is escaped too: the HTML of
a mail comes only from the shared layout, never from the merchant's wording or customer data.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Mapping

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError
from jinja2.filters import FILTERS
from jinja2.runtime import LoopContext
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup, escape

MAX_SOURCE = 20_000  # characters of template text
MAX_OUTPUT = 100_000  # characters rendered
MAX_SECONDS = 1.0
MAX_LOOP_DEPTH = 2
MAX_ITERATIONS = 200_000  # loop steps in one rendering, all loops together
LOOP_ATTRIBUTES = frozenset(
    {"index", "index0", "revindex", "revindex0", "first", "last", "length", "depth", "depth0"}
)
ALLOWED_FILTERS = (
    "capitalize",
    "count",
    "d",
    "default",
    "e",
    "escape",
    "first",
    "int",
    "join",
    "last",
    "length",
    "lower",
    "round",
    "string",
    "title",
    "trim",
    "truncate",
    "upper",
)
_ALLOWED_NODES = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.Const,
    nodes.Name,
    nodes.Getattr,
    nodes.Getitem,
    nodes.Slice,
    nodes.Filter,
    nodes.Test,
    nodes.If,
    nodes.For,
    nodes.Compare,
    nodes.Operand,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Neg,
    nodes.Pos,
    nodes.Concat,
    nodes.CondExpr,
    nodes.Add,
    nodes.Sub,
    nodes.Mul,
    nodes.Div,
    nodes.FloorDiv,
    nodes.Mod,
    nodes.Pow,
    nodes.Keyword,
    nodes.Tuple,
    nodes.List,
)
_NODE_MESSAGES = {
    nodes.Call: "Calling functions is not allowed in mail templates.",
    nodes.Assign: "{% set %} is not allowed in mail templates.",
    nodes.AssignBlock: "{% set %} is not allowed in mail templates.",
    nodes.Macro: "{% macro %} is not allowed in mail templates.",
    nodes.CallBlock: "{% call %} is not allowed in mail templates.",
    nodes.Include: "A mail template cannot include other templates.",
    nodes.Import: "A mail template cannot import other templates.",
    nodes.FromImport: "A mail template cannot import other templates.",
    nodes.Extends: "A mail template cannot extend other templates.",
    nodes.Block: "{% block %} is not allowed in mail templates.",
    nodes.With: "{% with %} is not allowed in mail templates.",
    nodes.FilterBlock: "{% filter %} blocks are not allowed in mail templates.",
    nodes.Dict: "Dictionaries are not allowed in mail templates.",
}


class TemplateRefused(Exception):
    """The merchant's template cannot be used; the message says why, in their terms."""


class _Limits:
    """Output and time budget of one rendering."""

    def __init__(self) -> None:
        self.deadline = time.monotonic() + MAX_SECONDS
        self.steps = 0

    def step(self) -> None:
        self.steps += 1
        if self.steps > MAX_ITERATIONS:
            raise TemplateRefused(
                f"The template's loops would take more than {MAX_ITERATIONS:,} steps; "
                "loop over lines once, or nest at most two loops over few lines."
            )
        if self.steps % 1000 == 0:
            self.check_time()

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateRefused(
                f"The template took longer than {MAX_SECONDS:g} s to render; simplify its loops."
            )


class _CountedList(list):
    """A list whose every loop step counts against the rendering's budget."""

    def __init__(self, items: Iterable, limits: _Limits) -> None:
        super().__init__(items)
        self._limits = limits

    def __iter__(self):
        for item in super().__iter__():
            self._limits.step()
            yield item


def _too_big(size: int) -> TemplateRefused:
    return TemplateRefused(
        f"The template would produce more than {MAX_OUTPUT // 1000} kB of text ({size:,} "
        "characters or more); mails that large are refused."
    )


def _bounded(filter_func: Callable) -> Callable:
    @functools.wraps(filter_func)  # keeps Jinja's pass_context/pass_environment marker
    def bounded(*args, **kwargs):
        result = filter_func(*args, **kwargs)
        if isinstance(result, str | list | tuple) and len(result) > MAX_OUTPUT:
            raise _too_big(len(result))
        return result

    return bounded


class MailSandbox(SandboxedEnvironment):
    """A sandbox where only data (never methods or dunders) is reachable."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self, *, autoescape: bool) -> None:
        super().__init__(
            autoescape=autoescape,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            finalize=lambda value: "" if value is None else value,
        )
        self.globals.clear()
        self.filters = {name: _bounded(FILTERS[name]) for name in ALLOWED_FILTERS}

    def is_safe_attribute(self, obj, attr, value) -> bool:
        return isinstance(obj, LoopContext) and attr in LOOP_ATTRIBUTES

    def is_safe_callable(self, obj) -> bool:
        return False

    def call_binop(self, context, operator, left, right):
        if operator == "**":
            raise SecurityError("Powers (**) are not allowed in mail templates.")
        if operator == "%" and isinstance(left, str):
            raise SecurityError("Formatting text with % is not allowed in mail templates.")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(times, int)
                    and len(seq) * max(times, 0) > MAX_OUTPUT
                ):
                    raise _too_big(len(seq) * times)
        return super().call_binop(context, operator, left, right)


_HTML = MailSandbox(autoescape=True)
_TEXT = MailSandbox(autoescape=False)


def _where(node: nodes.Node) -> str:
    return f" (line {node.lineno})" if getattr(node, "lineno", None) else ""


def _check(tree: nodes.Template, variables: Iterable[str], line_fields: Iterable[str]) -> None:
    """Refuse anything but data, tests, conditions and loops over `lines`."""
    known = set(variables)
    fields = set(line_fields)

    def visit(node: nodes.Node, loop_names: frozenset[str], depth: int) -> None:
        kind = type(node)
        if kind in _NODE_MESSAGES:
            raise TemplateRefused(_NODE_MESSAGES[kind].rstrip(".") + _where(node) + ".")
        if not isinstance(node, _ALLOWED_NODES):
            raise TemplateRefused(
                f"{kind.__name__} is not allowed in mail templates{_where(node)}."
            )
        if (
            isinstance(node, nodes.Name)
            and node.ctx == "load"
            and node.name not in known | loop_names | {"loop"}
        ):
            raise TemplateRefused(
                f"Unknown variable {node.name!r}{_where(node)}. You can use: "
                + ", ".join(sorted(known))
                + "."
            )
        if isinstance(node, nodes.Getattr):
            if node.attr.startswith("_"):
                raise TemplateRefused(
                    f"Names starting with an underscore ({node.attr}) are not allowed"
                    f"{_where(node)}."
                )
            base = node.node
            if isinstance(base, nodes.Name) and base.name == "loop":
                if node.attr not in LOOP_ATTRIBUTES:
                    raise TemplateRefused(
                        f"loop.{node.attr} is not available{_where(node)}; use "
                        + ", ".join(f"loop.{a}" for a in sorted(LOOP_ATTRIBUTES))
                        + "."
                    )
            elif isinstance(base, nodes.Name | nodes.Getitem) and node.attr in fields:
                pass
            else:
                raise TemplateRefused(
                    f"'.{node.attr}' cannot be read{_where(node)}: only each line's "
                    + ", ".join(sorted(fields))
                    + " can be read with a dot."
                )
        if (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
            and node.arg.value not in fields
        ):
            raise TemplateRefused(
                f"[{node.arg.value!r}] cannot be read{_where(node)}: only each line's "
                + ", ".join(sorted(fields))
                + "."
            )
        if isinstance(node, nodes.Filter | nodes.Test) and node.name == "attr":
            raise TemplateRefused(f"The attr filter is not allowed{_where(node)}.")
        if isinstance(node, nodes.Filter) and node.name not in ALLOWED_FILTERS:
            raise TemplateRefused(
                f"The filter {node.name!r} is not allowed{_where(node)}. Allowed: "
                + ", ".join(ALLOWED_FILTERS)
                + "."
            )
        if (
            isinstance(node, nodes.Const)
            and isinstance(node.value, str)
            and len(node.value) > MAX_SOURCE
        ):
            raise _too_big(len(node.value))
        if isinstance(node, nodes.For):
            if not (isinstance(node.iter, nodes.Name) and node.iter.name == "lines"):
                raise TemplateRefused(
                    f"Loops can only go over lines ({{% for line in lines %}}){_where(node)}."
                )
            if "lines" not in known:
                raise TemplateRefused(f"This kind of mail has no lines to loop over{_where(node)}.")
            if node.recursive:
                raise TemplateRefused(f"Recursive loops are not allowed{_where(node)}.")
            if depth + 1 > MAX_LOOP_DEPTH:
                raise TemplateRefused(
                    f"Loops can be nested at most {MAX_LOOP_DEPTH} deep{_where(node)}."
                )
            if not isinstance(node.target, nodes.Name):
                raise TemplateRefused(f"Loop over one name at a time{_where(node)}.")
            inner = loop_names | {node.target.name}
            for child in (*node.body, *node.else_):
                visit(child, inner, depth + 1)
            if node.test is not None:
                visit(node.test, inner, depth + 1)
            return
        for child in node.iter_child_nodes():
            visit(child, loop_names, depth)

    visit(tree, frozenset(), 0)


def _escape_literal_text(tree: nodes.Template) -> None:
    """The template's own words are text, not HTML: escape them like the variables."""
    for data in tree.find_all(nodes.TemplateData):
        data.data = str(escape(data.data))


@functools.lru_cache(maxsize=512)
def _compile(source: str, html: bool, variables: tuple[str, ...], line_fields: tuple[str, ...]):
    if len(source) > MAX_SOURCE:
        raise TemplateRefused(
            f"The template is {len(source):,} characters long; keep it under {MAX_SOURCE:,}."
        )
    env = _HTML if html else _TEXT
    try:
        tree = env.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateRefused(f"Syntax error on line {exc.lineno}: {exc.message}.") from None
    _check(tree, variables, line_fields)
    if html:
        _escape_literal_text(tree)
    try:
        return env.from_string(tree)
    except TemplateSyntaxError as exc:  # e.g. an unknown test
        raise TemplateRefused(f"Syntax error on line {exc.lineno}: {exc.message}.") from None


def render(
    source: str,
    context: Mapping[str, object],
    *,
    html: bool,
    line_fields: Iterable[str] = (),
) -> str:
    """The template rendered with `context` (only its keys are variables), or TemplateRefused.

    With `html`, everything (the template's words and the values) comes out HTML-escaped.
    """
    template = _compile(source, html, tuple(sorted(context)), tuple(sorted(line_fields)))
    limits = _Limits()
    size = 0
    parts: list[str] = []
    values = {
        name: _CountedList(value, limits) if isinstance(value, list) else value
        for name, value in context.items()
    }
    try:
        for chunk in template.generate(values):
            size += len(chunk)
            if size > MAX_OUTPUT:
                raise _too_big(size)
            limits.check_time()
            parts.append(chunk)
    except TemplateRefused:
        raise
    except SecurityError as exc:
        raise TemplateRefused(f"Not allowed in a mail template: {exc}") from None
    except UndefinedError as exc:
        raise TemplateRefused(f"{exc} (only the listed variables can be used).") from None
    except TemplateError as exc:
        raise TemplateRefused(f"The template could not be rendered: {exc}") from None
    except (ArithmeticError, TypeError, ValueError, RecursionError, MemoryError) as exc:
        raise TemplateRefused(
            f"The template could not be rendered: {type(exc).__name__}: {exc}"
        ) from None
    out = "".join(parts)
    # Safe: with `html` every character was escaped by the sandbox (autoescape, literal text).
    return Markup(out) if html else out  # noqa: S704
