"""MkDocs hooks: the reference pages that are generated from the code every time the site is built.

A page asks for a generated section with a marker line, ``<!-- generated: NAME -->``, where NAME is one
of :data:`GENERATORS`: the builtin parts and datasets with their parameters (read from the registry and
the factories' signatures and docstrings), the run-config reference (read from the schema objects of
``mmzoo.train.config``), and the command-line reference (the argparse parser's own help). An unknown
marker fails the build.
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Callable

MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.MULTILINE)
KIND_TITLES = {"encoder": "Encoders", "fusion": "Fusions", "head": "Heads", "dataset": "Datasets",
               "logger": "Experiment loggers"}
# The leading argument the builder (or create_dataset) passes itself, per kind.
GIVEN = {"fusion": "input_dims", "head": "input_dim", "dataset": "split"}


def markdown_text(docstring: str) -> str:
    """A docstring in reStructuredText habits, as Markdown (double backticks, :class: roles)."""
    text = docstring.replace("``", "`")
    return re.sub(r":(?:class|func|mod|meth|data|attr):`~?([^`]+)`", r"`\1`", text)


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def parameter_table(factory: Callable, given: str | None) -> list[str]:
    rows = ["| parameter | type | default |", "|---|---|---|"]
    for name, param in inspect.signature(factory).parameters.items():
        if name in ("self", "args", "kwargs") or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = param.annotation if param.annotation is not param.empty else ""
        annotation = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
        if name == given:
            default = "given by mmzoo"
        elif param.default is param.empty:
            default = "**required**"
        else:
            default = f"`{param.default!r}`"
        rows.append(f"| `{name}` | `{cell(annotation)}` | {cell(default)} |")
    return rows


def builtin_parts() -> str:
    """Every part and dataset the core distribution registers, with its parameters."""
    from mmzoo.listing import component_rows
    from mmzoo.plugins import get_registry

    registry = get_registry()
    lines: list[str] = []
    for kind, title in KIND_TITLES.items():
        lines += [f"## {title}", ""]
        for row in component_rows(kind):
            if row["dist"] != "mmzoo":
                continue
            factory = registry.resolve(kind, row["name"]).factory()
            lines += [f"### `{row['name']}`", ""]
            summary = row["description"] + (f" (modality: {row['modality']})" if row.get("modality") else "")
            lines += [f"*{summary}*", ""] if row["description"] else []
            lines += [markdown_text(inspect.getdoc(factory) or ""), ""]
            lines += parameter_table(factory, GIVEN.get(kind)) + [""]
    return "\n".join(lines)


def _default_text(default) -> str:
    from mmzoo.train.schema import REQUIRED

    if default is REQUIRED:
        return "**required**"
    if callable(default):
        default = default()
    if default is None:
        return "unset"
    if isinstance(default, (dict, list)):
        return f"`{default!r}`"
    if hasattr(default, "__dataclass_fields__"):
        return "see below"
    return f"`{str(default).lower() if isinstance(default, bool) else default}`"


def accepts(validator) -> str:
    """What a validator accepts, in words (through Optional and AnyOf, which do not say it themselves)."""
    from mmzoo.train.schema import AnyOf, Optional

    if isinstance(validator, Optional):
        return accepts(validator.inner)
    if isinstance(validator, AnyOf):
        return " or ".join(accepts(alternative) for alternative in validator.alternatives)
    return validator.expected


def _sections(schema, path: str) -> list[tuple[str, object]]:
    """``(path, Section)`` for ``schema`` and every section below it (through Optional and AnyOf)."""
    from mmzoo.train.schema import AnyOf, Optional, Section

    found = [(path, schema)]
    for key, spec in schema.fields.items():
        inner = spec.validator
        while isinstance(inner, Optional):
            inner = inner.inner
        candidates = inner.alternatives if isinstance(inner, AnyOf) else [inner]
        for candidate in candidates:
            while isinstance(candidate, Optional):
                candidate = candidate.inner
            if isinstance(candidate, Section):
                found += _sections(candidate, f"{path}.{key}" if path else key)
    return found


def run_config() -> str:
    """One table per section of the run config: key, accepted values, default, meaning."""
    from mmzoo.train.config import SCHEMA

    lines: list[str] = []
    for path, section in _sections(SCHEMA, ""):
        lines += [f"## `{path}`" if path else "## Top level", ""]
        lines += ["| key | accepts | default | meaning |", "|---|---|---|---|"]
        for key, spec in section.fields.items():
            lines.append(f"| `{key}` | {cell(accepts(spec.validator))} | {cell(_default_text(spec.default))} "
                         f"| {cell(spec.help)} |")
        lines.append("")
    return "\n".join(lines)


def cli_reference() -> str:
    """``mmzoo --help`` and each command's help, as the installed parser prints them."""
    import argparse

    from mmzoo.cli import build_parser

    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal; the page must not depend on it
    parser = build_parser()
    lines = ["## `mmzoo`", "", "```text", parser.format_help().rstrip(), "```", ""]
    for action in parser._actions:  # argparse exposes subcommands only through its actions
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                lines += [f"## `mmzoo {name}`", "", "```text", sub.format_help().rstrip(), "```", ""]
    return "\n".join(lines)


GENERATORS: dict[str, Callable[[], str]] = {
    "builtin-parts": builtin_parts,
    "run-config": run_config,
    "cli": cli_reference,
}


def on_page_markdown(markdown: str, page, config, files) -> str:
    """Replace each ``<!-- generated: NAME -->`` line with what NAME's generator writes."""
    return MARKER.sub(lambda match: GENERATORS[match[1]](), markdown)
