"""From per-class detections to cells: one cell per location, its class, score and runner-up.

VOC detection files give one class per box, and each framework suppresses duplicates per class
only, so one cell can appear as boxes of several classes. Rule (docs/count.md): boxes are taken
by descending score; a box with score >= ``min_score`` that overlaps no earlier cell starts a cell
(its class is the cell's class); any later box overlapping a cell with IoU >= ``same_cell_iou`` joins
that cell, and the best joined box of *another* class (score >= ``runner_up_min_score``) is the
runner-up. A cell is *uncertain* when its score is below ``top_score_below`` or the runner-up
scores at least ``runner_up_ratio_at_least`` times the top score. A cell whose box comes within
``margin_px`` of the image edge is cut by the border: listed, never counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional


@dataclass
class Cell:
    image_id: str
    box: tuple[float, float, float, float]  # xmin ymin xmax ymax, VOC pixels
    label: str
    score: float
    runner_up: str = ""
    runner_up_score: float = 0.0
    border: bool = False
    uncertain: bool = False


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """VOC (inclusive-pixel) intersection over union, as the evaluator counts it."""
    w = min(a[2], b[2]) - max(a[0], b[0]) + 1
    h = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    area = lambda r: (r[2] - r[0] + 1) * (r[3] - r[1] + 1)  # noqa: E731
    return float(inter / (area(a) + area(b) - inter))


def cells_of_image(
    image_id: str, boxes: list[tuple[str, float, tuple]], size: tuple[int, int], rules: dict
) -> list[Cell]:
    """Group one image's (class, score, box) detections into cells by the rule above."""
    det, unc = rules["detection"], rules["uncertain"]
    cells: list[Cell] = []
    for label, score, box in sorted(boxes, key=lambda b: -b[1]):
        home = _overlapping(cells, box, det["same_cell_iou"])
        if home is None:
            if score >= det["min_score"]:
                x0, y0, x1, y1 = (float(v) for v in box)
                cells.append(Cell(image_id, (x0, y0, x1, y1), label, float(score)))
        elif label != home.label and not home.runner_up and score >= det["runner_up_min_score"]:
            home.runner_up, home.runner_up_score = label, float(score)
    for cell in cells:
        cell.border = touches_border(cell.box, size, rules["border"]["margin_px"])
        cell.uncertain = (
            cell.score < unc["top_score_below"] or cell.runner_up_score >= unc["runner_up_ratio_at_least"] * cell.score
        )
    return cells


def _overlapping(cells: list[Cell], box, threshold: float) -> Optional[Cell]:
    best, best_iou = None, threshold
    for cell in cells:
        overlap = iou(cell.box, box)
        if overlap >= best_iou:
            best, best_iou = cell, overlap
    return best


def touches_border(box: Sequence[float], size: tuple[int, int], margin: float) -> bool:
    """Cut by the field's edge: VOC boxes are 1-based, so the edges are 1 and width/height."""
    width, height = size
    return box[0] <= 1 + margin or box[1] <= 1 + margin or box[2] >= width - margin or box[3] >= height - margin
