"""The native frameworks, side by side behind one small declared interface.

Each framework is one sub-package (``caffe/``, ``darknet/``) whose ``backend.py`` holds a class
implementing :class:`FrameworkBackend`; the orchestration in :mod:`harness.engine` only ever talks
to that class, found through :data:`FRAMEWORKS`. Adding a framework is one new backend module
(plus its drivers) and one line in :data:`FRAMEWORKS`.

Timing — one span for every framework (:data:`TIMED_SPAN`): per image, batch 1, the image already
decoded in memory (file reading excluded), the clock runs over preprocessing (resize / letterbox and
normalisation into the input blob), the forward pass, and box decoding with NMS (Caffe: the
DetectionOutput layer inside ``forward``; Darknet: ``get_network_boxes`` + ``do_nms_sort``).
``median_ms`` / ``p90_ms`` in ``timing.json`` (the Table 2 ms/image column) are over this span;
``forward_median_ms`` / ``forward_p90_ms`` are the network's forward call alone, for reference.

Detectors — :meth:`FrameworkBackend.open_detector` loads a trained network once and returns a
:class:`Detector` that serves any number of image batches (``harness count``: one batch per slide).
Each backend offers the engines in its ``engines`` (``native``: the framework's own forward pass;
``opencv``: OpenCV DNN on the same files, CPU only); the implementations live in each framework's
``detectors.py``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol, Union

from harness.registry import registered_class

if TYPE_CHECKING:
    from harness.config import ExperimentConfig
    from harness.core.types import FrameworkStatus, TrainResult
    from harness.labels import LabelMap

TIMED_SPAN = "preprocess+forward+nms"
TIMED_SPAN_DESCRIPTION = (
    "per image, batch 1, image already decoded in memory: preprocessing (resize/letterbox "
    "into the input blob) + forward + box decoding and NMS; file reading excluded"
)


Batch = list[tuple[str, Path]]  # (image id, image path) of one batch
PerImage = dict[str, list[tuple[str, float, tuple]]]  # image id -> [(class, score, box)]
BatchResults = Iterator[tuple[Union[PerImage, Exception], float]]  # per batch: detections or its error, seconds


class Detector(Protocol):
    """A network loaded once (:meth:`FrameworkBackend.open_detector`), serving batches of images."""

    description: str  # what runs the forward pass, e.g. "OpenCV DNN 4.x (Darknet cfg, CPU)"

    def detect_batches(self, batches: Sequence[Batch], work: Path) -> BatchResults:
        """Per batch, in order: its detections per image id (or the exception that stopped that batch)
        and its seconds. A failing batch never stops the others; scratch files go under ``work``."""

    def close(self) -> None:
        """Release the network."""


class FrameworkBackend(Protocol):
    """What the experiment runner needs from a framework (one instance per experiment)."""

    name: str
    engines: tuple[str, ...]  # what open_detector accepts, "native" first (e.g. ("native", "opencv"))

    def __init__(self, config: ExperimentConfig, labelmap: LabelMap, dataset_dir: Optional[Path] = None) -> None: ...

    @staticmethod
    def inspect() -> FrameworkStatus:
        """Which build would run, its version, device support and what is missing (``harness doctor``)."""

    def render(self, test_ids: Sequence[str]) -> dict[str, Path]:
        """Write the native files (prototxts / cfg, .data) under MODEL_DIR/rendered; {role: path}."""

    def train(self, files: dict[str, Path], until: Optional[int] = None, **display) -> TrainResult:
        """Train to ``until`` (default: the schedule's end), resuming from the newest checkpoint."""

    def schedule_length(self, files: dict[str, Path]) -> int:
        """Iterations of the full schedule (Caffe max_iter, Darknet max_batches)."""

    def detect(self, files: dict[str, Path], weights: Path, images, out_dir: Path, native: bool = False) -> Path:
        """Per-class VOC detection files for ``images`` in ``out_dir``; returns that folder."""

    def time(self, files: dict[str, Path], weights: Path, images, n: int, warmup: int) -> dict[str, Any]:
        """timing.json: ``median_ms``/``p90_ms`` over :data:`TIMED_SPAN`, cycling through ``images``."""

    def open_detector(self, files: dict[str, Path], weights: Path, engine: str, work: Path) -> Detector:
        """Load the network once with ``engine`` (one of :attr:`engines`) on the config's device;
        raises when it cannot be loaded. Scratch files go under ``work``."""


# framework name -> "module:class"
FRAMEWORKS = {
    "caffe": "harness.frameworks.caffe.backend:CaffeBackend",
    "darknet": "harness.frameworks.darknet.backend:DarknetBackend",
}


def backend_class(name: str) -> type:
    return registered_class(FRAMEWORKS, name, "framework")


def backend_for(config: ExperimentConfig, labelmap: LabelMap, dataset_dir: Optional[Path] = None):
    """The backend instance that runs ``config``."""
    try:
        cls = backend_class(config.framework)
    except KeyError:
        raise ValueError(f"unknown framework {config.framework!r} for {config.name}") from None
    return cls(config, labelmap, dataset_dir)


def check_engine(backend, engine: str) -> None:
    """Refuse an engine the backend does not offer."""
    if engine not in backend.engines:
        raise ValueError(f"no {engine!r} detector for framework {backend.name!r}; known: {', '.join(backend.engines)}")


def detect_each(detect: Callable[[Batch, Path], PerImage], batches: Sequence[Batch], work: Path) -> BatchResults:
    """:meth:`Detector.detect_batches` for an in-process network: ``detect(batch, work/batch_NNNN)``
    per batch, timed; a batch's exception is that batch's result and the next batch still runs."""
    import time

    for index, batch in enumerate(batches):
        started = time.monotonic()
        try:
            per_image = detect(batch, work / f"batch_{index:04d}")
        except Exception as exc:
            yield exc, time.monotonic() - started
            continue
        yield per_image, time.monotonic() - started


def detections_by_image(dets, class_names: Sequence[str]) -> PerImage:
    """harness.evaluation Detections → {image id: [(class, score, box), …]}."""
    import numpy as np

    out: PerImage = {}
    for name in class_names:
        found = dets[name]
        for image_id, score, box in zip(found.image_ids, found.scores, np.asarray(found.boxes)):
            out.setdefault(str(image_id), []).append((name, float(score), tuple(box.tolist())))
    return out


def read_per_image(det_dir: Path, labelmap: LabelMap) -> PerImage:
    """Per-class VOC detection files as every harness path reads them (same rounding, same skips)."""
    from harness.evaluation.detections import read_detections

    return detections_by_image(read_detections(det_dir, class_names=labelmap.names), labelmap.names)


def inspect_all() -> list[FrameworkStatus]:
    """Every registered framework's status, in registry order; a framework with several builds
    (Darknet: pjreddie and AlexeyAB) gives one status per build."""
    statuses: list = []
    for name in FRAMEWORKS:
        found = backend_class(name).inspect()
        statuses += list(found) if isinstance(found, (list, tuple)) else [found]
    return statuses
