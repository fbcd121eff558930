"""Render every experiment of the paper's Table 1 into one directory tree."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

from harness import paper
from harness.render.dialect import detect_dialect

PathLike = Union[str, Path]


def render_experiment(exp: paper.Experiment, out_dir: PathLike, **kwargs) -> dict[str, Path]:
    """Render one experiment with its Table 1 arguments plus ``kwargs`` (paths, label map, dialect...)."""
    if exp.framework == "caffe":
        from harness.render.ssd import render_ssd

        return render_ssd(out_dir, **exp.render_kwargs(), **kwargs)
    from harness.render.yolo import render_yolo

    kwargs.pop("dialect", None)
    return render_yolo(out_dir, **exp.render_kwargs(), **kwargs)


def render_table1(
    out_dir: PathLike, *, dataset: Optional[PathLike] = None, dialect: str = "auto"
) -> dict[str, dict[str, Path]]:
    """``out_dir/<experiment>/...`` for all seven experiments, in Table 1 order."""
    dialect = detect_dialect(dialect).dialect  # decide once, not seven times
    return {
        exp.name: render_experiment(exp, Path(out_dir) / exp.name, dataset=dataset, dialect=dialect)
        for exp in paper.EXPERIMENTS
    }
