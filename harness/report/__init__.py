"""Report stage: tables, figures, provenance, HTML/Markdown.

``build_report`` and ``collect_provenance`` are the entry points other stages call; they are
imported lazily so that importing ``harness.report.provenance`` does not load matplotlib.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ReportError", "build_report", "collect_provenance", "write_provenance"]


def __getattr__(name: str) -> Any:
    if name == "build_report":
        from harness.report.builder import build_report

        return build_report
    if name in ("collect_provenance", "write_provenance"):
        from harness.report import provenance

        return getattr(provenance, name)
    if name == "ReportError":
        from harness.report.loading import ReportError

        return ReportError
    raise AttributeError(f"module 'harness.report' has no attribute {name!r}")
