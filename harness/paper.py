"""The paper's numbers as data: Wang et al. 2019, PLoS ONE 14(6) e0218808, doi 10.1371/journal.pone.0218808.

Every reported number carries a ``source`` string saying where in the paper it is printed
(Table 1, Table 2, Fig 10, Methods ...). Transcribed from the article (CC BY 4.0); the same numbers
are kept as CSV beside the project (``shared/paper/``) and a test checks the two agree. A quantity
the paper does not report for an experiment is ``None`` with a source starting with
``"not reported"``; one it reports but that is not carried here would be ``None`` with
``"not transcribed"`` (none is left). The renderers take their defaults (solver and cfg
hyperparameters) from this module so that "the paper's setting" lives in exactly one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

NOT_TRANSCRIBED = "not transcribed"
NOT_REPORTED = "not reported in the paper"
PAPER = "Wang et al. 2019, PLoS ONE 14(6) e0218808"
PAPER_DEVICE = "NVIDIA GTX 1080Ti"  # where the paper timed inference (Abstract, Table 2)
TRAINING_MACHINE = "Intel i7-6700, 16 GB RAM, NVIDIA GTX 1080 Ti 11 GB"  # Table 2
SOFTWARE = {"CUDA": "8.0", "cuDNN": "6.0", "OS": "Ubuntu 16.04", "Python": "2.7"}  # Methods

# --- data (Methods, "Data collection") ------------------------------------------------------------
PAPER_SLIDES = 500  # Methods: slides
PAPER_IMAGES_PER_SLIDE = 200  # Methods: leukocyte candidate images per slide
PAPER_IMAGE_SIZE = (732, 574)  # Methods: width x height, px
PAPER_UM_PER_PIXEL = 0.13  # Methods: 100x oil objective (NA 1.30), Wright-Giemsa stain
PAPER_OBJECTIVE = "100x oil, NA 1.30"  # Methods
PAPER_ANNOTATED_IMAGES = 14700  # Methods / Abstract: annotated images (train + test)
PAPER_DETECTION_TEST_IMAGES = 1120  # Abstract / Methods: detection test set, drawn at random
PAPER_TEST_FRACTION_STATED = 7 / 100  # Methods says "7/100"; 1,120 / 14,700 is 7.6 % (paper's inconsistency)
PAPER_TRAIN_IMAGES = PAPER_ANNOTATED_IMAGES - PAPER_DETECTION_TEST_IMAGES  # derived: "the rest train"
PAPER_CLASSIFICATION_TEST_IMAGES = 7868  # Abstract / Fig 10: single-object classification test set
PAPER_TRAINED_LABELS = 15  # Methods: 11 WBC + NRBC, gPLT, SM, Artefact
PAPER_SCORED_LABELS = 11  # Table 1: only the 11 WBC classes are scored
# Ground-truth boxes per class in all 14,700 images (Methods, "Data collection"); "MO" is the paper's "MON".
DATASET_BOXES: dict[str, int] = {
    "Blast": 3541,
    "PRO": 546,
    "MYE": 1454,
    "MET": 1032,
    "bNEU": 1466,
    "sNEU": 2666,
    "LYM": 1819,
    "MO": 1689,
    "EO": 1634,
    "BA": 1541,
    "rLYM": 1870,
}
DATASET_BOXES_TOTAL = 19258  # Methods: boxes in total (= sum of DATASET_BOXES)
DATASET_BOXES_SOURCE = "Methods, Data collection (boxes per class in all 14,700 images)"
NRBC_SIZE_PX = 65  # text, small-cell test: NRBC about 65x65 px ...
NRBC_SIZE_UM = 8.5  # ... = 8.5x8.5 um
SMALL_CELL_TEST_IMAGES = 500  # text: "500 images containing NRBC", none missed ...
SMALL_CELL_TEST_IMAGES_ALSO_STATED = 200  # ... the same paragraph later says 200 (paper's inconsistency)
DENSE_SCENE_TEST_IMAGES = 200  # text: acute-leukemia images; some cells cut by the border were missed

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
SSD_SOLVER_SOURCE = "Methods, SSD training settings"
SSD512_BATCH_SIZE = 4  # Methods: SSD512 trained with batch 4, limited by the 11 GB GPU
# Methods also says SSD trained "for 1000 mini-batch iterations": that contradicts the step values
# above and the ~101 h of Table 2, so it is recorded but used nowhere.
SSD_STATED_ITERATIONS_UNRELIABLE = 1000
# ssd_pascal.py convention: train until the last learning-rate step.
SSD_HARNESS_SOLVER: dict[str, Any] = {
    "max_iter": SSD_SOLVER["stepvalue"][-1],
    "test_interval": 10000,
    "snapshot": 10000,
    "display": 10,
    "average_loss": 10,
    "iter_size": 1,
    "test_iter": None,  # None: derived from the test set size when known
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
YOLO_NET_SOURCE = "Methods, YOLOv3 training settings"
YOLO_TINY_TRAIN_TIME_FRACTION = 0.16  # text: YOLOv3-tiny took 16 % of YOLOv3's training time (Table 2: 9.5 / 60.2 h)
YOLO_TINY_INFERENCE_FRACTION = 0.5  # text: "about half" YOLOv3's inference time (Table 2: 14 / 23 ms)
# Not from the paper: YOLOv3's stock cfg values the paper does not override.
YOLO_STOCK_NET: dict[str, Any] = {"burn_in": 1000, "angle": 0, "saturation": 1.5, "exposure": 1.5, "hue": 0.1}

# --- reported results ----------------------------------------------------------------------------
TABLE1_SOURCE = "Table 1"
TABLE2_SOURCE = "Table 2 (training: i7-6700, GTX 1080 Ti; inference: GTX 1080 Ti)"
FIG10_SOURCE = "Fig 10 (classification test, 7,868 single-object images)"
REPORTED_FIELDS = ("paper_map", "train_hours", "ms_per_image", "mean_accuracy")
# Table 1 column order; "MO" is the paper's "MON". These are the 11 scored classes.
TABLE1_CLASSES = ("Blast", "PRO", "MYE", "MET", "bNEU", "sNEU", "LYM", "MO", "EO", "BA", "rLYM")
# "Abnormal leukocytes" (text): the paper compares the mean AP of these five Table 1 columns.
ABNORMAL_CLASSES = ("Blast", "PRO", "MYE", "MET", "rLYM")
ABNORMAL_MEAN_AP = {"ssd300_smin0.2": 0.8992, "yolov3_320": 0.8816}  # text, fractions (89.92 % / 88.16 %)
ABNORMAL_MEAN_AP_SOURCE = "text, abnormal leukocytes (mean of Table 1's Blast, PRO, MYE, MET, rLYM)"


@dataclass(frozen=True)
class Experiment:
    """One row of Table 1: which network, how it is rendered, and what the paper reports.

    Reported numbers are plain floats (``None`` = not reported, or not transcribed: the source says
    which); ``sources`` maps each field name (and ``"ap[<class>]"``) to where the number was read.
    """

    name: str
    framework: str  # "caffe" or "darknet"
    model: str  # "ssd", "yolov3", "yolov3-tiny"
    size: int
    smin: Optional[float] = None  # SSD only
    smax: Optional[float] = None  # SSD only
    paper_map: Optional[float] = None  # fraction, VOC mAP@0.5 over the 11 scored classes
    paper_ap: Optional[dict[str, float]] = None  # class abbreviation -> AP (fraction), Table 1
    train_hours: Optional[float] = None  # Table 2
    ms_per_image: Optional[float] = None  # Table 2, GTX 1080Ti
    mean_accuracy: Optional[float] = None  # percent, Fig 10 classification test
    sources: dict[str, str] = field(default_factory=dict)
    notes: str = ""
    renderer: str = ""  # the ``harness render`` verb for this experiment
    render_args: tuple[str, ...] = ("model", "size")  # the fields its renderer takes

    def source(self, quantity: str) -> str:
        """Where ``quantity`` (a field name or ``"ap[<class>]"``) was read; "not transcribed" if nowhere."""
        return self.sources.get(quantity, NOT_TRANSCRIBED)

    def reported(self, quantity: str) -> bool:
        """False when the paper has no such number for this experiment (e.g. Fig 10 for SSD512),
        so a report prints "—" rather than "not transcribed"."""
        return not self.source(quantity).startswith(NOT_REPORTED)

    def render_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``render_ssd`` / ``render_yolo`` that build this experiment."""
        return {name: getattr(self, name) for name in self.render_args}


def _reported(
    paper_map: float, aps: tuple[float, ...], hours: float, ms: float, accuracy: Optional[float]
) -> dict[str, Any]:
    """One experiment's Table 1 row, Table 2 row and Fig 10 mean accuracy, each with its source."""
    if len(aps) != len(TABLE1_CLASSES):
        raise ValueError(f"Table 1 row needs {len(TABLE1_CLASSES)} class APs, got {len(aps)}")
    sources = {
        "paper_map": TABLE1_SOURCE,
        "train_hours": TABLE2_SOURCE,
        "ms_per_image": TABLE2_SOURCE,
        "mean_accuracy": FIG10_SOURCE
        if accuracy is not None
        else f"{NOT_REPORTED} (Fig 10 shows SSD300 Smin 0.2 and YOLOv3 320 only)",
    }
    sources.update({f"ap[{cls}]": TABLE1_SOURCE for cls in TABLE1_CLASSES})
    return {
        "paper_map": paper_map,
        "paper_ap": dict(zip(TABLE1_CLASSES, aps)),
        "train_hours": hours,
        "ms_per_image": ms,
        "mean_accuracy": accuracy,
        "sources": sources,
    }


def _ssd(size: int, smin: float, **kw: Any) -> Experiment:
    return Experiment(
        f"ssd{size}_smin{smin}",
        "caffe",
        "ssd",
        size,
        smin,
        0.9,
        renderer="ssd",
        render_args=("size", "smin", "smax"),
        **kw,
    )


def _yolo(model: str, size: int, **kw: Any) -> Experiment:
    return Experiment(f"{model}_{size}", "darknet", model, size, renderer=model, **kw)


# Table 1 (mAP; Blast PRO MYE MET bNEU sNEU LYM MO EO BA rLYM), Table 2 (hours, ms/image), Fig 10 (%).
EXPERIMENTS: tuple[Experiment, ...] = (
    _ssd(
        300,
        0.2,
        **_reported(
            0.931, (0.970, 0.870, 0.862, 0.881, 0.982, 0.970, 0.884, 0.914, 1.0, 0.993, 0.913), 101.1, 53.0, 90.09
        ),
        notes="Best model. The abstract gives mAP 93.10 %, mean accuracy 90.09 % and 53 ms/image in one sentence.",
    ),
    _ssd(
        300,
        0.1,
        **_reported(
            0.831, (0.882, 0.654, 0.745, 0.663, 0.853, 0.928, 0.849, 0.806, 0.985, 0.973, 0.800), 101.3, 53.0, None
        ),
    ),
    _ssd(
        512,
        0.2,
        **_reported(
            0.687, (0.651, 0.453, 0.682, 0.499, 0.777, 0.741, 0.409, 0.756, 0.907, 0.891, 0.790), 123.2, 100.0, None
        ),
        notes=f"Trained with batch {SSD512_BATCH_SIZE} (11 GB GPU), not 10 (Methods).",
    ),
    _yolo(
        "yolov3",
        320,
        **_reported(
            0.925, (0.961, 0.826, 0.860, 0.841, 0.955, 0.968, 0.937, 0.912, 0.999, 0.993, 0.920), 60.0, 14.0, 89.36
        ),
    ),
    _yolo(
        "yolov3",
        416,
        **_reported(
            0.921, (0.958, 0.824, 0.862, 0.826, 0.947, 0.968, 0.947, 0.894, 0.999, 0.987, 0.915), 60.2, 23.0, None
        ),
    ),
    _yolo(
        "yolov3",
        608,
        **_reported(
            0.919, (0.962, 0.814, 0.864, 0.829, 0.961, 0.974, 0.930, 0.904, 0.999, 0.987, 0.881), 61.0, 43.0, None
        ),
    ),
    _yolo(
        "yolov3-tiny",
        416,
        **_reported(
            0.772, (0.941, 0.469, 0.701, 0.372, 0.758, 0.915, 0.871, 0.674, 0.993, 0.982, 0.815), 9.5, 14.0, None
        ),
    ),
)

_BY_NAME = {e.name: e for e in EXPERIMENTS}


def experiment(name: str) -> Experiment:
    """Look an experiment up by name (e.g. ``"ssd300_smin0.2"``); the error lists valid names."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown experiment {name!r}; known: {', '.join(_BY_NAME)}") from None


def abnormal_mean_ap(exp: Experiment) -> Optional[float]:
    """Mean Table 1 AP of the "abnormal leukocytes" (ABNORMAL_CLASSES), as the paper's text compares
    them; a fraction, or None when the experiment has no per-class AP."""
    if not exp.paper_ap:
        return None
    return sum(exp.paper_ap[cls] for cls in ABNORMAL_CLASSES) / len(ABNORMAL_CLASSES)


def reported_numbers() -> list[tuple[str, str, Optional[float], str]]:
    """Every ``(experiment, quantity, value, source)``, for reports and for auditing sources."""
    rows = []
    for exp in EXPERIMENTS:
        for quantity in REPORTED_FIELDS:
            rows.append((exp.name, quantity, getattr(exp, quantity), exp.source(quantity)))
        for cls, value in (exp.paper_ap or {}).items():
            rows.append((exp.name, f"ap[{cls}]", value, exp.source(f"ap[{cls}]")))
        if exp.name in ABNORMAL_MEAN_AP:
            rows.append((exp.name, "abnormal_mean_ap", ABNORMAL_MEAN_AP[exp.name], ABNORMAL_MEAN_AP_SOURCE))
    return rows
