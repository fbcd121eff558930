"""The one HTML helper for every page the harness writes: the run report (harness/report), the
dataset audit (harness/data/audit_report.py) and the slide pages of ``harness count``.

:func:`environment` is the shared Jinja setup — ``*.html.j2`` autoescaped (a class or slide name
from user data is shown, never run), undefined names an error, the shared page parts of
``harness/templates/`` (``_style.html.j2``: the page style; ``_image_check.html.j2``) found beside
the caller's own templates — and the number filters every page uses. Markdown output
(``markdown=True``) gets HTML's special characters as entities instead of autoescape.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Optional

import jinja2

PAGE_TEMPLATES = Path(__file__).resolve().with_name("templates")


def environment(templates: Path, markdown: bool = False) -> jinja2.Environment:
    """A Jinja environment over ``templates`` and the shared page parts, with the shared filters
    (``num``/``pct``: 2 decimals or —, ``pp``: signed, ``md``: a Markdown table cell)."""
    env = jinja2.Environment(
        finalize=markdown_text if markdown else None,
        loader=jinja2.FileSystemLoader([str(templates), str(PAGE_TEMPLATES)]),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=format_number, pct=format_number, pp=format_difference, md=escape_markdown)
    return env


def escape(text: Any) -> str:
    """``text`` for HTML element content or a quoted attribute."""
    return html.escape(str(text), quote=True)


def format_number(value: Optional[float], digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def format_difference(value: Optional[float], digits: int = 2) -> str:
    """Signed, so 'ours below the paper' is visible at a glance."""
    return "—" if value is None else f"{value:+.{digits}f}"


def markdown_text(value: Any) -> Any:
    """Text inserted into Markdown with HTML's special characters as entities (Markdown renders raw HTML)."""
    return html.escape(value, quote=False) if isinstance(value, str) else value


def escape_markdown(text: str) -> str:
    """Keep messages from breaking a Markdown table row."""
    return str(text).replace("|", "\\|").replace("\n", " ")
