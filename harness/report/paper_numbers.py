"""The paper's numbers as the report needs them, read from ``harness.paper``.

``harness.paper`` (owned by the render stage) is the single source of the transcribed numbers;
this module only adapts them to percent and looks them up by experiment name. ``None`` stays
``None`` — the report prints "n/t" (not transcribed) and never fills a gap.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass(frozen=True)
class PaperNumbers:
    """One experiment's paper numbers, percentages for mAP/AP/accuracy."""

    name: str
    framework: str = ""
    model: str = ""
    size: Optional[int] = None
    smin: Optional[float] = None
    smax: Optional[float] = None
    map_pct: Optional[float] = None
    ap_pct: dict[str, Optional[float]] = field(default_factory=dict)
    train_hours: Optional[float] = None
    ms_per_image: Optional[float] = None
    mean_accuracy_pct: Optional[float] = None
    device: str = ""
    source: str = ""
    not_reported: frozenset[str] = frozenset()  # quantities the paper has no number for ("—", not "n/t")


def paper_experiments() -> list[PaperNumbers]:
    """All experiments of the paper in its order; empty if ``harness.paper`` is absent."""
    module = _paper_module()
    if module is None:
        return []
    return [adapt(exp, module) for exp in getattr(module, "EXPERIMENTS", [])]


def paper_available() -> bool:
    return _paper_module() is not None


def _paper_module() -> Any:
    try:
        return importlib.import_module("harness.paper")
    except ModuleNotFoundError as exc:
        if exc.name != "harness.paper":
            raise
        return None


def adapt(exp: Any, module: Any = None) -> PaperNumbers:
    """Turn one ``harness.paper.Experiment`` into percent-valued ``PaperNumbers``.

    Units follow harness.paper's documented contract: ``paper_map`` and ``paper_ap`` are fractions,
    ``mean_accuracy`` is already a percentage.
    """
    ap = getattr(exp, "paper_ap", None) or {}
    return PaperNumbers(
        name=exp.name,
        framework=str(getattr(exp, "framework", "") or ""),
        model=str(getattr(exp, "model", "") or ""),
        size=getattr(exp, "size", None),
        smin=getattr(exp, "smin", None),
        smax=getattr(exp, "smax", None),
        map_pct=fraction_to_percent(getattr(exp, "paper_map", None), f"{exp.name}.paper_map"),
        ap_pct={cls: fraction_to_percent(v, f"{exp.name}.paper_ap[{cls}]") for cls, v in ap.items()},
        train_hours=getattr(exp, "train_hours", None),
        ms_per_image=getattr(exp, "ms_per_image", None),
        mean_accuracy_pct=getattr(exp, "mean_accuracy", None),
        device=_paper_device(exp, module),
        source=describe_sources(exp),
        not_reported=_not_reported(exp),
    )


def _not_reported(exp: Any) -> frozenset[str]:
    """Quantities harness.paper marks as absent from the paper (``Experiment.reported``)."""
    reported = getattr(exp, "reported", None)
    if not callable(reported):
        return frozenset()
    return frozenset(q for q in ("paper_map", "train_hours", "ms_per_image", "mean_accuracy") if not reported(q))


def fraction_to_percent(value: Optional[float], what: str) -> Optional[float]:
    """A fraction above 1 means the transcription used percent: refuse rather than print 9310%."""
    if value is None:
        return None
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"harness.paper: {what} = {value} is not a fraction in [0, 1]")
    return float(value) * 100.0


def _paper_device(exp: Any, module: Any) -> str:
    """Where the paper timed inference (only beside a paper timing): an explicit field if
    harness.paper has one, else the source note of the ms/image number, never a guess."""
    if getattr(exp, "ms_per_image", None) is None:
        return ""
    explicit = getattr(exp, "device", None) or getattr(module, "PAPER_DEVICE", None)
    if explicit:
        return str(explicit)
    return _source_of(exp, "ms_per_image")


def _source_of(exp: Any, quantity: str) -> str:
    source = getattr(exp, "source", None)
    if callable(source):
        return str(source(quantity))
    sources = getattr(exp, "sources", None) or {}
    return str(sources.get(quantity, ""))


def describe_sources(exp: Any) -> str:
    """Every number's source, plus the transcriber's notes, as one line for the report."""
    sources = getattr(exp, "sources", None)
    if isinstance(sources, dict):
        text = "; ".join(f"{key}: {value}" for key, value in sources.items())
    else:
        text = str(sources or "")
    notes = str(getattr(exp, "notes", "") or "")
    return f"{text} — {notes}" if text and notes else text or notes
