"""cells.csv (one row per detected cell) and differential.csv (one row per slide)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from harness.class_roles import ClassRoles
from harness.core.atomic import write_csv
from harness.count.differential import SlideResult

CELL_COLUMNS = [
    "slide",
    "image",
    "image_id",
    "xmin",
    "ymin",
    "xmax",
    "ymax",
    "class",
    "score",
    "runner_up",
    "runner_up_score",
    "uncertain",
    "border",
    "counted",
]


def write_cells_csv(results: list[SlideResult], path: Path) -> Path:
    write_csv(
        path,
        CELL_COLUMNS,
        (
            [
                result.slide,
                result.files.get(c.image_id, c.image_id),
                c.image_id,
                *(f"{v:.2f}" for v in c.box),
                c.label,
                f"{c.score:.6f}",
                c.runner_up,
                f"{c.runner_up_score:.6f}" if c.runner_up else "",
                int(c.uncertain),
                int(c.border),
                int(result.is_counted(c)),
            ]
            for result in results
            for c in result.cells
        ),
    )
    return path


def _outside(roles: ClassRoles) -> list[str]:
    """Counted classes outside the differential (NRBC, platelets, red cells, others), table order."""
    return [c for c, role in roles.roles.items() if role not in ("leukocyte", "not_counted")]


def differential_columns(roles: ClassRoles) -> list[str]:
    """The label set's own columns: its differential categories, its other classes, its ratios."""
    categories = roles.differential
    return (
        ["slide", "fields", "skipped_images", "cells_detected", "border_excluded", "wbc"]
        + [f"{c}_n" for c in categories]
        + [f"{c}_pct" for c in categories]
        + [f"{c}_n" for c in _outside(roles)]
        + (["NRBC_per_100_WBC"] if roles.classes_with("nrbc") else [])
        + ["wbc_per_field"]
        + (["rbc_per_field"] if roles.has_red_cells else [])
        + (["platelets_per_field"] if roles.classes_with("platelet") else [])
        + roles.ratios()
        + ["uncertain", "flags", "note"]
    )


def _fixed(value: Optional[float], digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def differential_row(result: SlideResult) -> list:
    d, roles = result.differential, result.roles
    categories = roles.differential
    return (
        [
            result.slide,
            result.fields,
            len(result.skipped),
            len(result.cells),
            sum(1 for c in result.cells if c.border),
            d.wbc,
        ]
        + [d.category_count(c) for c in categories]
        + [_fixed(d.percent(c)) for c in categories]
        + [d.counts.get(c, 0) for c in _outside(roles)]
        + ([_fixed(d.nrbc_per_100_wbc)] if roles.classes_with("nrbc") else [])
        + [_fixed(d.per_field("leukocyte"))]
        + ([_fixed(d.per_field("red_cell"))] if roles.has_red_cells else [])
        + ([_fixed(d.per_field("platelet"))] if roles.classes_with("platelet") else [])
        + [_fixed(d.ratio(name)) for name in roles.ratios()]
        + [len(result.uncertain), ";".join(d.flags()), result.note]
    )


def write_differential_csv(results: list[SlideResult], roles: ClassRoles, path: Path) -> Path:
    write_csv(path, differential_columns(roles), (differential_row(r) for r in results))
    return path


def write_skipped_csv(results: list[SlideResult], path: Path, unassigned: Optional[dict[str, str]] = None) -> Path:
    """Every image that was not counted and why, so nothing disappears silently.

    ``unassigned``: images of a VOC root that slides.csv puts on no slide (slide "(unassigned)").
    """
    from harness.count.slides_csv import UNASSIGNED

    rows = []
    for r in results:
        rows += [[r.slide, name, why] for name, why in r.skipped.items()]
        rows += [[r.slide, "", r.error]] if r.error else []
    rows += [[UNASSIGNED, name, why] for name, why in (unassigned or {}).items()]
    write_csv(path, ["slide", "file", "reason"], rows)
    return path
