"""cells.csv (one row per detected cell) and differential.csv (one row per slide)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from harness.count.differential import SlideResult
from harness.count.rules import OUTSIDE_DIFFERENTIAL, WBC_CLASSES
from harness.data.atomic import write_csv

CELL_COLUMNS = ["slide", "image", "image_id", "xmin", "ymin", "xmax", "ymax", "class", "score",
                "runner_up", "runner_up_score", "uncertain", "border", "counted"]


def write_cells_csv(results: list[SlideResult], path: Path) -> Path:
    write_csv(path, CELL_COLUMNS, ([result.slide, result.files.get(c.image_id, c.image_id), c.image_id,
                                    *(f"{v:.2f}" for v in c.box), c.label, f"{c.score:.6f}", c.runner_up,
                                    f"{c.runner_up_score:.6f}" if c.runner_up else "", int(c.uncertain),
                                    int(c.border), int(not c.border)]
                                   for result in results for c in result.cells))
    return path


def differential_columns() -> list[str]:
    return (["slide", "fields", "skipped_images", "cells_detected", "border_excluded", "wbc"]
            + [f"{c}_n" for c in WBC_CLASSES] + [f"{c}_pct" for c in WBC_CLASSES]
            + ["NRBC_n", "NRBC_per_100_WBC"] + [f"{c}_n" for c in OUTSIDE_DIFFERENTIAL[1:]]
            + ["uncertain", "flags", "note"])


def differential_row(result: SlideResult, rules: dict) -> list:
    d = result.differential
    pct = [("" if d.percent(c) is None else f"{d.percent(c):.2f}") for c in WBC_CLASSES]
    nrbc = d.nrbc_per_100_wbc
    return ([result.slide, result.fields, len(result.skipped), len(result.cells),
             len(result.cells) - len(result.counted), d.wbc] + [d.counts[c] for c in WBC_CLASSES] + pct
            + [d.counts["NRBC"], "" if nrbc is None else f"{nrbc:.2f}"]
            + [d.counts[c] for c in OUTSIDE_DIFFERENTIAL[1:]]
            + [len(result.uncertain), ";".join(d.flags(rules)), result.note])


def write_differential_csv(results: list[SlideResult], rules: dict, path: Path) -> Path:
    write_csv(path, differential_columns(), (differential_row(r, rules) for r in results))
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
