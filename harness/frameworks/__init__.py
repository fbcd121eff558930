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
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Protocol, Sequence

if TYPE_CHECKING:
    from harness.config import ExperimentConfig
    from harness.engine.types import FrameworkStatus, TrainResult
    from harness.labels import LabelMap

TIMED_SPAN = "preprocess+forward+nms"
TIMED_SPAN_DESCRIPTION = ("per image, batch 1, image already decoded in memory: preprocessing (resize/letterbox "
                          "into the input blob) + forward + box decoding and NMS; file reading excluded")


class FrameworkBackend(Protocol):
    """What the experiment runner needs from a framework (one instance per experiment)."""

    name: str

    def __init__(self, config: "ExperimentConfig", labelmap: "LabelMap", dataset_dir: Optional[Path] = None) -> None:
        ...

    @staticmethod
    def inspect() -> "FrameworkStatus":
        """Which build would run, its version, device support and what is missing (``harness doctor``)."""

    def render(self, test_ids: Sequence[str]) -> dict[str, Path]:
        """Write the native files (prototxts / cfg, .data) under MODEL_DIR/rendered; {role: path}."""

    def train(self, files: dict[str, Path], until: Optional[int] = None, **display) -> "TrainResult":
        """Train to ``until`` (default: the schedule's end), resuming from the newest checkpoint."""

    def schedule_length(self, files: dict[str, Path]) -> int:
        """Iterations of the full schedule (Caffe max_iter, Darknet max_batches)."""

    def detect(self, files: dict[str, Path], weights: Path, images, out_dir: Path, native: bool = False) -> Path:
        """Per-class VOC detection files for ``images`` in ``out_dir``; returns that folder."""

    def time(self, files: dict[str, Path], weights: Path, images, n: int, warmup: int) -> dict[str, Any]:
        """timing.json: ``median_ms``/``p90_ms`` over :data:`TIMED_SPAN`, cycling through ``images``."""


# framework name -> "module:class"
FRAMEWORKS = {
    "caffe": "harness.frameworks.caffe.backend:CaffeBackend",
    "darknet": "harness.frameworks.darknet.backend:DarknetBackend",
}


def backend_class(name: str) -> type:
    try:
        module, cls = FRAMEWORKS[name].split(":")
    except KeyError:
        raise KeyError(f"unknown framework {name!r}; known: {', '.join(FRAMEWORKS)}") from None
    return getattr(importlib.import_module(module), cls)


def backend_for(config: "ExperimentConfig", labelmap: "LabelMap", dataset_dir: Optional[Path] = None):
    """The backend instance that runs ``config``."""
    try:
        cls = backend_class(config.framework)
    except KeyError:
        raise ValueError(f"unknown framework {config.framework!r} for {config.name}") from None
    return cls(config, labelmap, dataset_dir)


def inspect_all() -> list["FrameworkStatus"]:
    """Every registered framework's status, in registry order."""
    return [backend_class(name).inspect() for name in FRAMEWORKS]
