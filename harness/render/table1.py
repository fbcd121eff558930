"""Render every experiment of the paper's Table 1 into one directory tree."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

from harness import paper
from harness.render.dialect import detect_dialect

PathLike = Union[str, Path]


def render_experiment(exp: paper.Experiment, out_dir: PathLike, **kwargs) -> dict[str, Path]:
    """Render one experiment with its Table 1 arguments plus ``kwargs`` (paths, label map, dialect...),
    through its framework's backend (which drops what its renderer does not take)."""
    from harness.config import ModelSpec
    from harness.frameworks import backend_class

    return backend_class(exp.framework).render_model(ModelSpec.of(exp), Path(out_dir), **kwargs)


def render_table1(
    out_dir: PathLike, *, dataset: Optional[PathLike] = None, dialect: str = "auto"
) -> dict[str, dict[str, Path]]:
    """``out_dir/<experiment>/...`` for all seven experiments, in Table 1 order."""
    dialect = detect_dialect(dialect).dialect  # decide once, not seven times
    return {
        exp.name: render_experiment(exp, Path(out_dir) / exp.name, dataset=dataset, dialect=dialect)
        for exp in paper.EXPERIMENTS
    }
