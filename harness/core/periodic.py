"""Periodic evaluation during training: ``MODEL_DIR/results.csv`` and ``weights/best.*``.

Like AlexeyAB's ``-map``, Ultralytics' per-epoch validation or Caffe's ``test_interval``, but
scored with the harness's own evaluator on the held-out split, through the same detect →
evaluate path as the final evaluation, so every row is comparable with the final metrics.

Design (docs/architecture.md, "Periodic evaluation"): the native trainer runs segment by
segment, each segment ending at an evaluation point (Caffe ``max_iter``, Darknet
``max_batches``; both resume from their own checkpoint), and the weights the framework writes at
the end of a segment are scored before the next segment starts. This file only keeps the
records: which points, which rows, which weights are best. Rows are keyed by iteration and the
file is rewritten atomically, so a resumed run neither duplicates nor loses a row.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from harness.core.atomic import write_csv, write_json

RESULTS_FILE = "results.csv"
BEST_FILE = "best.json"  # in MODEL_DIR/weights/, beside the best weights it describes
LOSS_COLUMNS = ("loss", "avg_loss", "lr")


def evaluation_points(max_iter: int, interval: Optional[int]) -> list[int]:
    """Iterations scored: every ``interval`` below ``max_iter``, then ``max_iter`` itself.

    ``None``/0 scores only the final weights (one row), so every trained model has a results.csv.
    """
    if max_iter <= 0:
        return []
    points = list(range(interval, max_iter, interval)) if interval and interval > 0 else []
    return [*points, max_iter]


def results_columns(protocols: Sequence[str]) -> list[str]:
    return ["iteration", *LOSS_COLUMNS, *(f"map_{p}" for p in protocols), "seconds"]


def read_results(model_dir: Path) -> list[dict]:
    """Rows of ``results.csv`` as dicts of floats (iteration as int); [] when there is none."""
    path = Path(model_dir) / RESULTS_FILE
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        return [_typed(row) for row in csv.DictReader(handle)]


def _typed(row: dict) -> dict:
    typed: dict[str, float] = {}
    for key, text in row.items():
        if key == "iteration":
            typed[key] = int(float(text))
        else:
            try:
                typed[key] = float(text) if text not in ("", None) else math.nan
            except ValueError:
                typed[key] = math.nan
    return typed


def record_result(model_dir: Path, row: dict, protocols: Sequence[str]) -> Path:
    """Add (or replace) the row of ``row['iteration']``; rows stay sorted, written atomically."""
    columns = results_columns(protocols)
    rows = {r["iteration"]: r for r in read_results(model_dir)}
    rows[int(row["iteration"])] = row
    path = Path(model_dir) / RESULTS_FILE
    write_csv(path, columns, ([_cell(rows[iteration].get(c)) for c in columns] for iteration in sorted(rows)))
    return path


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def evaluated_iterations(model_dir: Path) -> set[int]:
    return {r["iteration"] for r in read_results(model_dir)}


def loss_at(loss_csv: Path, iteration: int) -> dict:
    """loss / avg_loss / lr of the last logged iteration at or before ``iteration`` (NaN if none)."""
    found = {key: math.nan for key in LOSS_COLUMNS}
    if not Path(loss_csv).is_file():
        return found
    with Path(loss_csv).open(newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                if int(float(row["iteration"])) > iteration:
                    continue
            except (KeyError, ValueError):
                continue
            found = {key: _typed({key: row.get(key, "")})[key] for key in LOSS_COLUMNS}
    return found


@dataclass(frozen=True)
class Best:
    """The best-scoring evaluated weights so far (``weights/best.json``)."""

    iteration: int
    protocol: str
    map: float
    weights: str  # file name of the copy, in MODEL_DIR/weights/
    source: str  # the framework's file the copy was taken from

    def to_json(self) -> dict:
        return {
            "iteration": self.iteration,
            "protocol": self.protocol,
            "map": self.map,
            "weights": self.weights,
            "source": self.source,
        }


def read_best(model_dir: Path) -> Optional[Best]:
    path = Path(model_dir) / "weights" / BEST_FILE
    try:
        return Best(**json.loads(path.read_text())) if path.is_file() else None
    except (ValueError, TypeError):
        return None


def keep_if_best(
    model_dir: Path, iteration: int, score: Optional[float], protocol: str, weights: Path
) -> Optional[Best]:
    """Copy ``weights`` to ``weights/best.<ext>`` when ``score`` beats the best so far.

    Called *before* the row is recorded: a crash in between leaves the row missing (it is
    re-scored on resume, the same copy made again), never a row claiming an uncopied best.
    Ties keep the earlier weights (like Ultralytics' strict ``>``). A score of None (no scored
    class has objects) never becomes best.
    """
    best = read_best(model_dir)
    if score is None or (isinstance(score, float) and math.isnan(score)):
        return best
    if best is not None and best.iteration != iteration and score <= best.map:
        return best
    weights_dir = Path(model_dir) / "weights"
    weights_dir.mkdir(parents=True, exist_ok=True)
    target = weights_dir / f"best{Path(weights).suffix if Path(weights).suffix != '.backup' else '.weights'}"
    tmp = target.with_name(target.name + ".tmp")
    shutil.copyfile(weights, tmp)
    tmp.replace(target)
    best = Best(iteration, protocol, float(score), target.name, Path(weights).name)
    write_json(weights_dir / BEST_FILE, best.to_json())
    return best
