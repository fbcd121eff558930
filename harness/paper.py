"""The paper's experiment matrix as data: Wang et al. 2019, PLoS ONE 14(6) e0218808.

Every reported number carries a ``source`` string saying where it comes from. A number that has not
been transcribed from the paper is ``None`` with source ``"not transcribed"``: nothing here is
guessed. The renderers take their defaults (solver and cfg hyperparameters) from this module so that
"the paper's setting" lives in exactly one place.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

NOT_TRANSCRIBED = "not transcribed"
PAPER = "Wang et al. 2019, PLoS ONE 14(6) e0218808"
PAPER_DEVICE = "NVIDIA GTX 1080Ti"          # where the paper timed inference (abstract)
PAPER_DETECTION_TEST_IMAGES = 1120         # detection test set size (abstract)
PAPER_CLASSIFICATION_TEST_IMAGES = 7868    # single-object classification test set (abstract)
PAPER_TRAIN_IMAGES = 14700                 # training set size (abstract)


# --- training hyperparameters the paper states (renderer defaults) ------------------------------
# Caffe-SSD solver. The paper gives the optimiser, rates and multistep schedule; it does not state
# max_iter, test_interval or snapshot, so those are harness choices (documented in docs/rendering.md).
SSD_SOLVER: dict[str, Any] = {
    "type": "SGD",
    "base_lr": 0.001,
    "momentum": 0.9,
    "weight_decay": 0.0005,
    "lr_policy": "multistep",
    "gamma": 0.1,
    "stepvalue": [14700, 147000, 294000, 735000],
    "batch_size": 10,
}
SSD_SOLVER_SOURCE = "paper, SSD training settings (as specified in the project issue 'Renderers')"
# ssd_pascal.py convention: train until the last learning-rate step.
SSD_HARNESS_SOLVER: dict[str, Any] = {
    "max_iter": SSD_SOLVER["stepvalue"][-1],
    "test_interval": 10000,
    "snapshot": 10000,
    "display": 10,
    "average_loss": 10,
    "iter_size": 1,
    "test_iter": None,            # None: derived from the test set size when known
}

# Darknet YOLOv3 [net] section.
YOLO_NET: dict[str, Any] = {
    "batch": 64,
    "subdivisions": 16,
    "learning_rate": 0.0001,
    "momentum": 0.9,
    "decay": 0.0005,
    "max_batches": 50200,
    "policy": "steps",
    "steps": [10000, 35000],
    "scales": [0.1, 0.1],
}
YOLO_NET_SOURCE = "paper, YOLOv3 training settings (as specified in the project issue 'Renderers')"
# Not from the paper: YOLOv3's stock cfg values the paper does not override.
YOLO_STOCK_NET: dict[str, Any] = {"burn_in": 1000, "angle": 0, "saturation": 1.5, "exposure": 1.5, "hue": 0.1}

_T1 = "Table 1 (mAP as given in the project issue 'Renderers')"
REPORTED_FIELDS = ("paper_map", "train_hours", "ms_per_image", "mean_accuracy")


@dataclass(frozen=True)
class Experiment:
    """One row of Table 1: which network, how it is rendered, and what the paper reports.

    Reported numbers are plain floats (``None`` = not transcribed); ``sources`` maps each field name
    (and ``"ap[<class>]"``) to where the number was read, so every number is traceable.
    """

    name: str
    framework: str                      # "caffe" or "darknet"
    model: str                          # "ssd", "yolov3", "yolov3-tiny"
    size: int
    smin: Optional[float] = None        # SSD only
    smax: Optional[float] = None        # SSD only
    paper_map: Optional[float] = None   # fraction, VOC mAP@0.5 over the 11 scored classes
    paper_ap: Optional[dict[str, float]] = None   # class abbreviation -> AP; None: not transcribed
    train_hours: Optional[float] = None
    ms_per_image: Optional[float] = None          # GTX 1080Ti
    mean_accuracy: Optional[float] = None         # percent, Fig 10 classification test
    sources: dict[str, str] = field(default_factory=dict)
    notes: str = ""

    def source(self, quantity: str) -> str:
        """Where ``quantity`` (a field name or ``"ap[<class>]"``) was read; "not transcribed" if nowhere."""
        return self.sources.get(quantity, NOT_TRANSCRIBED)

    def render_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``render_ssd`` / ``render_yolo`` that build this experiment."""
        if self.framework == "caffe":
            return {"size": self.size, "smin": self.smin, "smax": self.smax}
        return {"model": self.model, "size": self.size}

    @property
    def renderer(self) -> str:
        """The ``harness render`` verb for this experiment."""
        return "ssd" if self.framework == "caffe" else self.model


def _ssd(size: int, smin: float, paper_map: float, sources: Optional[dict] = None, **kw: Any) -> Experiment:
    return Experiment(f"ssd{size}_smin{smin}", "caffe", "ssd", size, smin, 0.9, paper_map=paper_map,
                      sources={"paper_map": _T1, **(sources or {})}, **kw)


def _yolo(model: str, size: int, paper_map: float, sources: Optional[dict] = None, **kw: Any) -> Experiment:
    return Experiment(f"{model}_{size}", "darknet", model, size, paper_map=paper_map,
                      sources={"paper_map": _T1, **(sources or {})}, **kw)


EXPERIMENTS: tuple[Experiment, ...] = (
    _ssd(300, 0.2, 0.931, ms_per_image=53.0, mean_accuracy=90.09,
         sources={"ms_per_image": "Abstract and Table 2 (GTX 1080Ti)", "mean_accuracy": "Abstract and Fig 10"},
         notes="Best model. The abstract reports mAP 93.10%, mean accuracy 90.09% and 53 ms/image in one "
               "sentence; 53 ms is SSD300's inference time, so the 90.09% mean accuracy is attributed to "
               "this model (attribution read from the abstract; the figure itself was not seen)."),
    _ssd(300, 0.1, 0.831),
    _ssd(512, 0.2, 0.687),
    _yolo("yolov3", 320, 0.925, ms_per_image=14.0,
          sources={"ms_per_image": "Table 2 (GTX 1080Ti, as given in the project issue)"}),
    _yolo("yolov3", 416, 0.921),
    _yolo("yolov3", 608, 0.919),
    _yolo("yolov3-tiny", 416, 0.772),
)

_BY_NAME = {e.name: e for e in EXPERIMENTS}


def experiment(name: str) -> Experiment:
    """Look an experiment up by name (e.g. ``"ssd300_smin0.2"``); the error lists valid names."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown experiment {name!r}; known: {', '.join(_BY_NAME)}") from None


def reported_numbers() -> list[tuple[str, str, Optional[float], str]]:
    """Every ``(experiment, quantity, value, source)``, for reports and for auditing sources."""
    rows = []
    for exp in EXPERIMENTS:
        for quantity in REPORTED_FIELDS:
            rows.append((exp.name, quantity, getattr(exp, quantity), exp.source(quantity)))
        for cls, value in (exp.paper_ap or {}).items():
            rows.append((exp.name, f"ap[{cls}]", value, exp.source(f"ap[{cls}]")))
    return rows
