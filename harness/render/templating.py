"""One jinja2 environment for both template families, strict about undefined names.

StrictUndefined turns a misspelt placeholder into an error at render time instead of an empty
string inside a Caffe/Darknet file that would only fail hours later in the native framework.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jinja2

from harness import __version__

_LEFTOVER = re.compile(r"\{\{|\{%|\{#|%\}|#\}")


def format_number(value: Any) -> str:
    """Numbers as a Caffe/Darknet user writes them: ints bare, floats shortest-exact, bools lower-case."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) + ".0" if value.is_integer() else repr(value)
    raise TypeError(f"expected a number, got {value!r}")


def environment(template_dir: Path) -> jinja2.Environment:
    """A jinja2 environment over ``template_dir`` with the harness filters."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["num"] = format_number
    env.filters["add_suffix"] = lambda text, suffix: f"{text}{suffix}"
    env.filters["csv"] = lambda values: ",".join(format_number(v) if not isinstance(v, str) else v for v in values)
    return env


def header(what: str) -> str:
    """First-line comment naming the generator, so a native file says where it came from."""
    return f"{what} - rendered by leukonet-harness {__version__}; edit the template, not this file"


def render_to(env: jinja2.Environment, template: str, path: Path, context: dict[str, Any]) -> Path:
    """Render ``template`` into ``path``; refuse output that still holds jinja syntax."""
    try:
        text = env.get_template(template).render(**context)
    except jinja2.TemplateNotFound as exc:
        raise FileNotFoundError(f"template {template!r} not found in {env.loader.searchpath}") from exc  # type: ignore[union-attr]
    text = re.sub(r"\n{3,}", "\n\n", text)
    leftover = _LEFTOVER.search(text)
    if leftover:
        line = text.count("\n", 0, leftover.start()) + 1
        raise ValueError(f"{path}: rendered text still contains template syntax at line {line}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def check_prototxt_string(path: Path | str, what: str) -> None:
    """A path goes into a quoted prototxt string: a quote, backslash or newline would break the file."""
    if any(ch in str(path) for ch in '"\\\n'):
        raise ValueError(
            f"{what} path {str(path)!r} contains a quote, backslash or newline, which a "
            f"prototxt string cannot hold as written; rename it"
        )


def check_no_spaces(path: Path | str, what: str) -> None:
    """Darknet deletes every space in .data values and Caffe paths with spaces are fragile: refuse them."""
    if any(ch.isspace() for ch in str(path)):
        raise ValueError(
            f"{what} path {str(path)!r} contains whitespace; Darknet strips spaces from "
            f"paths in .data files, so use a path without spaces"
        )


def absolute(path: Path | str) -> Path:
    """The path rule for rendered files (docs/rendering.md): a path the caller names is written
    absolute, resolved against the caller's working directory. The only relative paths left are
    the ``data/...`` placeholders, which the native tools read from the rendered file's own folder
    (the runners start Caffe and Darknet there)."""
    return Path(path).expanduser().resolve()
