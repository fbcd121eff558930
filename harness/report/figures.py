"""Fig 7 (loss curves), Fig 8 (per-class PR curves) and Fig 10 (confusion matrices) as PNG.

Uses matplotlib's object API with the Agg canvas, so no display and no global backend switch
is needed (the report runs headless in CI and inside ``harness reproduce``).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Optional

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from harness.core.atomic import save_figure
from harness.evaluation import protocols
from harness.report.loading import ExperimentRun, LossCurve

DPI = 110
MAX_LINE_POINTS = 2000  # above this a loss curve is drawn binned


def safe_name(name: str) -> str:
    """Experiment names go into file names: keep them portable."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def _save(fig: Figure, path: Path) -> Path:
    return save_figure(fig, path, DPI)


def plot_loss_curves(experiments: list[ExperimentRun], path: Path) -> Optional[Path]:
    """One panel per experiment: SSD and YOLO losses differ by orders of magnitude. Held-out mAP
    at each evaluation point (results.csv) shares the panel on a right-hand axis, like
    AlexeyAB's chart.png, so a falling loss can be read against what it buys."""
    shown = [e for e in experiments if _has_loss(e) or _has_evaluations(e)]
    if not shown:
        return None
    cols = 1 if len(shown) == 1 else 2
    rows = math.ceil(len(shown) / cols)
    fig = Figure(figsize=(6.4 * cols, 3.6 * rows), layout="constrained")
    fig.suptitle("Fig 7 — training loss and held-out mAP")
    for index, exp in enumerate(shown, start=1):
        ax = fig.add_subplot(rows, cols, index)
        if _has_loss(exp):
            _loss_panel(ax, exp)
        else:
            ax.set_title(wrapped(_title(exp), 60), fontsize=10)
            ax.set_xlabel("iteration")
        if _has_evaluations(exp):
            _map_axis(ax, exp)
    return _save(fig, path)


def _has_loss(exp: ExperimentRun) -> bool:
    return exp.loss is not None and len(exp.loss) > 0


def _has_evaluations(exp: ExperimentRun) -> bool:
    return exp.evaluations is not None and len(exp.evaluations) > 0


def _map_axis(ax, exp: ExperimentRun) -> None:
    """mAP (%) per evaluation point on a twin axis; legends of both axes merged into one box."""
    curve = exp.evaluations
    if curve is None:
        return
    right = ax.twinx()
    for protocol, values in curve.map.items():
        style = protocols.PROTOCOLS[protocol].style if protocol in protocols.PROTOCOLS else {}
        right.plot(curve.iteration, [v * 100 for v in values], lw=1.2, ms=4, label=f"mAP {protocol}", **style)
    right.set_ylim(0, 100)
    right.set_ylabel("held-out mAP (%)")
    handles, labels = ax.get_legend_handles_labels()
    more_handles, more_labels = right.get_legend_handles_labels()
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    right.legend(handles + more_handles, labels + more_labels, fontsize=8, loc="upper right")


def _loss_panel(ax, exp: ExperimentRun) -> None:
    curve: Optional[LossCurve] = exp.loss
    assert curve is not None  # drawn only for experiments with a loss curve
    iterations = np.asarray(curve.iteration, dtype=float)
    loss = np.asarray(curve.loss, dtype=float)
    avg = np.asarray(curve.avg_loss, dtype=float)
    has_average = bool(np.isfinite(avg).any())
    if iterations.size > MAX_LINE_POINTS:
        _binned_loss(ax, iterations, loss)
    else:
        # With a running average the raw loss is context, drawn faint; alone it is the curve itself.
        ax.plot(iterations, loss, lw=0.8 if has_average else 1.3, alpha=0.45 if has_average else 1.0, label="loss")
    if has_average:
        x, mean, _, _ = binned(iterations, avg, MAX_LINE_POINTS)
        ax.plot(x, mean, lw=1.6, label="avg loss")
    finite = loss[np.isfinite(loss) & (loss > 0)]
    if finite.size and finite.max() / finite.min() > 50:
        ax.set_yscale("log")
    ax.set_title(wrapped(_title(exp), 60), fontsize=10)
    ax.set_xlabel("iteration")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def _binned_loss(ax, iterations: np.ndarray, loss: np.ndarray) -> None:
    """Paper-length logs (10^5 rows): bin means with the min-max band, so spikes stay visible."""
    x, mean, low, high = binned(iterations, loss, MAX_LINE_POINTS)
    ax.fill_between(x, low, high, alpha=0.25, lw=0, label="loss min-max per bin")
    ax.plot(x, mean, lw=1.0, label=f"loss, mean of {iterations.size // x.size}-row bins")


def binned(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, ...]:
    """(x, mean, min, max) over at most ``max_points`` equal-count bins; NaNs ignored."""
    if x.size <= max_points:
        return x, y, y, y
    edges = np.linspace(0, x.size, max_points + 1).astype(int)
    centres, means, lows, highs = [], [], [], []
    for start, stop in zip(edges[:-1], edges[1:]):
        chunk = y[start:stop]
        chunk = chunk[np.isfinite(chunk)]
        if chunk.size:
            centres.append(x[start:stop].mean())
            means.append(chunk.mean())
            lows.append(chunk.min())
            highs.append(chunk.max())
    return tuple(np.asarray(v) for v in (centres, means, lows, highs))


def plot_pr_curves(exp: ExperimentRun, path: Path) -> Optional[Path]:
    """Per-class precision envelopes (what AP integrates), the raw zig-zag faint behind them;
    the legend carries each class's AP."""
    # PR points are the same under the VOC protocols; the AP in the legend differs (registry pr_rank)
    protocol = next((p for p in protocols.pr_preference() if (exp.metrics.get(p) or {}).get("pr")), None)
    if protocol is None:
        return None
    metrics = exp.metrics[protocol]
    fig = Figure(figsize=(7.2, 5.2), layout="constrained")
    ax = fig.add_subplot()
    colours = _distinct_colours(len(metrics["pr"]))
    for colour, (name, curve) in zip(colours, metrics["pr"].items()):
        recall, precision = curve.get("recall") or [], curve.get("precision") or []
        ap = (metrics["classes"].get(name) or {}).get("ap")
        label = f"{name} (AP {ap * 100:.1f})" if isinstance(ap, (int, float)) else name
        x, y = precision_envelope(recall, precision)
        ax.plot(recall, precision, lw=0.6, alpha=0.3, color=colour)
        ax.step(x, y, where="pre", lw=1.5, label=label, color=colour)
    ax.set_xlim(0, 1.0)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision (envelope; raw curve faint)")
    ax.grid(alpha=0.3)
    ax.set_title(wrapped(f"Fig 8 — PR curves, {_title(exp)} (AP: {protocol})"), fontsize=10)
    ax.legend(fontsize=8, loc="lower left")
    return _save(fig, path)


def precision_envelope(recall, precision) -> tuple[np.ndarray, np.ndarray]:
    """Best precision at this recall or beyond, as a ``where='pre'`` step from recall 0 to the
    last recall and down to 0: the area under it is VOC2012's all-points AP."""
    recall = np.asarray(recall, dtype=float)
    precision = np.asarray(precision, dtype=float)
    if recall.size == 0:
        return np.zeros(0), np.zeros(0)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    x = np.concatenate([[0.0], recall, recall[-1:]])
    y = np.concatenate([envelope[:1], envelope, [0.0]])
    return x, y


def wrapped(title: str, width: int = 70) -> str:
    """Long titles (a non-comparable run says why) broken into lines instead of cut at the edge."""
    import textwrap

    return "\n".join(textwrap.wrap(title, width)) or title


def _distinct_colours(count: int) -> list:
    """tab10 repeats after ten classes; the paper has eleven scored ones."""
    cmap = colormaps["tab10" if count <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(count)]


def row_normalised(matrix: list[list[int]]) -> np.ndarray:
    """Each true class sums to 1; a class with no test images stays a row of zeros."""
    counts = np.asarray(matrix, dtype=float)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def plot_confusion(exp: ExperimentRun, path: Path, paper_accuracy_pct: Optional[float] = None) -> Optional[Path]:
    cls = exp.classification
    if not cls:
        return None
    normalised = row_normalised(cls["matrix"])
    classes, columns = cls["classes"], cls["columns"]
    size = max(4.5, 0.55 * len(columns) + 2.5)
    fig = Figure(figsize=(size + 1.0, size), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(normalised, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(len(columns)), labels=columns, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), labels=classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if len(columns) <= 20:
        _annotate_cells(ax, normalised)
    _mark_empty_rows(ax, cls["matrix"], len(columns))
    ax.set_title(_confusion_title(exp, paper_accuracy_pct), fontsize=10)
    return _save(fig, path)


def _annotate_cells(ax, normalised: np.ndarray) -> None:
    for (row, col), value in np.ndenumerate(normalised):
        if value > 0:
            label = ax.text(
                col,
                row,
                f"{value * 100:.0f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if value > 0.5 else "black",
            )
            label.set_in_layout(False)  # inside the axes: the layout need not measure 256 labels


def _mark_empty_rows(ax, matrix: list[list[int]], n_columns: int) -> None:
    """A class without test images is a blank row; say so instead of implying 0% recall."""
    for row, counts in enumerate(matrix):
        if sum(counts) == 0:
            note = ax.text(
                (n_columns - 1) / 2, row, "no test images", ha="center", va="center", fontsize=8, color="#b00020"
            )
            note.set_in_layout(False)


def _confusion_title(exp: ExperimentRun, paper_accuracy_pct: Optional[float]) -> str:
    classification = exp.classification or {}
    accuracy = classification.get("mean_accuracy")
    ours = f"{accuracy * 100:.2f}%" if isinstance(accuracy, (int, float)) else "n/a"
    paper = f", paper {paper_accuracy_pct:.2f}%" if paper_accuracy_pct is not None else ""
    n = classification.get("n_images")
    return f"Fig 10 — {_title(exp)}\nmean accuracy {ours}{paper} (n={n})"


def _title(exp: ExperimentRun) -> str:
    if exp.status != "ok":
        return f"{exp.name} [{exp.status}]"
    return exp.name if exp.comparable else f"{exp.name} [not comparable: {exp.not_comparable_because}]"
