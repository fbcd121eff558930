"""Agreement of the model's differential with the annotated truth, slide by slide (docs/count.md).

Per class: Pearson r and r² of predicted vs true percentage, Bland–Altman bias and 95 % limits
of agreement (bias ± 1.96 SD of the differences, SD with n-1). Per flag: sensitivity and
specificity over slides. The yardstick is the sampling imprecision of a manual 100- or 200-cell
differential: the exact (Clopper–Pearson) binomial 95 % interval that Rümke's tables give.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from harness.core.atomic import save_figure
from harness.count.differential import SlideResult

MANUAL_COUNTS = (100, 200)


def pearson(x: Sequence[float], y: Sequence[float]) -> Optional[float]:
    """None with fewer than 3 pairs or a constant side (r is undefined, not 0)."""
    n = len(x)
    if n < 3:
        return None
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx, syy = sum((a - mx) ** 2 for a in x), sum((b - my) ** 2 for b in y)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def bland_altman(predicted: Sequence[float], true: Sequence[float]) -> Optional[dict]:
    """Bias (mean of predicted − true) and its 95 % limits of agreement; None under 2 slides."""
    diffs = [p - t for p, t in zip(predicted, true)]
    n = len(diffs)
    if n < 2:
        return None
    bias = sum(diffs) / n
    sd = math.sqrt(sum((d - bias) ** 2 for d in diffs) / (n - 1))
    return {"bias": bias, "sd": sd, "lower": bias - 1.96 * sd, "upper": bias + 1.96 * sd}


def binomial_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact Clopper–Pearson interval of a proportion k/n (Rümke's tables for cell counts)."""
    from scipy.stats import beta

    if not 0 <= k <= n or n < 1:
        raise ValueError(f"need 0 <= k <= n and n >= 1 (got k={k}, n={n})")
    alpha = 1 - level
    lower = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    upper = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return lower, upper


def manual_count_interval(percent: float, n_cells: int) -> tuple[float, float]:
    """95 % interval, in percent, of a manual ``n_cells`` count that observed ``percent``."""
    lower, upper = binomial_interval(round(percent * n_cells / 100), n_cells)
    return 100 * lower, 100 * upper


def sensitivity_specificity(pairs: Sequence[tuple[bool, bool]]) -> dict:
    """``pairs`` of (predicted flag, true flag); a rate with an empty denominator is None."""
    tp = sum(p and t for p, t in pairs)
    fn = sum(t and not p for p, t in pairs)
    tn = sum(not p and not t for p, t in pairs)
    fp = sum(p and not t for p, t in pairs)
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "sensitivity": tp / (tp + fn) if tp + fn else None,
        "specificity": tn / (tn + fp) if tn + fp else None,
    }


def agreement(results: list[SlideResult]) -> Optional[dict]:
    """Statistics over the slides that have ground truth and leukocytes on both sides."""
    pairs = [(r.differential, r.truth) for r in results if r.truth is not None and r.truth.wbc and r.differential.wbc]
    if not pairs:
        return None
    roles = results[0].roles
    per_class = {}
    for name in roles.differential:
        pred = [p.percent(name) or 0.0 for p, _ in pairs]  # never None: both sides have leukocytes
        true = [t.percent(name) or 0.0 for _, t in pairs]
        r = pearson(true, pred)
        per_class[name] = {
            "predicted": pred,
            "true": true,
            "r": r,
            "r2": None if r is None else r * r,
            "bland_altman": bland_altman(pred, true),
        }
    flags = {
        flag: sensitivity_specificity([(flag in p.flags(), flag in t.flags()) for p, t in pairs])
        for flag in roles.flags
    }
    return {
        "slides": [r.slide for r in results if r.truth is not None and r.truth.wbc and r.differential.wbc],
        "per_class": per_class,
        "flags": flags,
    }


def plot_agreement(stats: dict, out_dir: Path) -> dict[str, Path]:
    """Scatter (predicted vs true, with the 100/200-cell manual-count bands) and Bland–Altman grids."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    out_dir.mkdir(parents=True, exist_ok=True)
    grid = np.linspace(0, 100, 101)
    bands = {n: np.array([manual_count_interval(p, n) for p in grid]) for n in MANUAL_COUNTS}
    paths = {}
    names = list(stats["per_class"])
    columns = min(4, len(names))
    rows = -(-len(names) // columns)
    for kind in ("scatter", "bland_altman"):
        fig, axes = plt.subplots(rows, columns, figsize=(3.5 * columns, 3.3 * rows), squeeze=False)
        for ax, name in zip(axes.flat, names):
            _panel(ax, kind, name, stats["per_class"][name], grid, bands)
        for ax in list(axes.flat)[len(names) :]:
            ax.axis("off")
        fig.tight_layout()
        paths[kind] = out_dir / f"agreement_{kind}.png"
        save_figure(fig, paths[kind], 80)
        plt.close(fig)
    return paths


def _panel(ax, kind: str, name: str, s: dict, grid, bands) -> None:
    import numpy as np

    true, pred = np.array(s["true"]), np.array(s["predicted"])
    top = max(5.0, float(max(true.max(), pred.max())) * 1.15)
    if kind == "scatter":
        for n, style in zip(MANUAL_COUNTS, (":", "--")):
            ax.plot(grid, bands[n][:, 0], "k" + style, lw=0.8, label=f"manual {n}-cell 95 %")
            ax.plot(grid, bands[n][:, 1], "k" + style, lw=0.8)
        ax.plot([0, top], [0, top], color="grey", lw=0.8)
        ax.scatter(true, pred, s=14)
        ax.set(xlim=(0, top), ylim=(0, top), xlabel="true %", ylabel="predicted %")
        r = "n/a" if s["r"] is None else f"{s['r']:.2f}"
        ax.set_title(f"{name}: r={r}", fontsize=9)
        ax.legend(fontsize=6, loc="upper left")
    else:
        mean = (true + pred) / 2
        ax.scatter(mean, pred - true, s=14)
        ba = s["bland_altman"]
        if ba:
            for value, style in ((ba["bias"], "-"), (ba["lower"], "--"), (ba["upper"], "--")):
                ax.axhline(value, color="C1", ls=style, lw=0.9)
        half = np.array([(hi - lo) / 2 for lo, hi in (manual_count_interval(p, 200) for p in grid)])
        ax.plot(grid, half, "k:", lw=0.8, label="± manual 200-cell 95 %")
        ax.plot(grid, -half, "k:", lw=0.8)
        ax.set(xlim=(0, top), xlabel="mean of predicted and true %", ylabel="predicted − true %")
        bias = "n/a" if not ba else f"{ba['bias']:+.1f} [{ba['lower']:+.1f}, {ba['upper']:+.1f}]"
        ax.set_title(f"{name}: bias {bias}", fontsize=9)
        ax.legend(fontsize=6, loc="upper left")
