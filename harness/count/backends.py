"""Detection backends of `harness count`: the network is loaded once and serves every slide.

* ``opencv``: OpenCV DNN on the CPU (this OpenCV has no CUDA), with each framework's own
  preprocessing reproduced; 2–6× faster than the native forward passes on our CPUs
  (bench/bench_count.py), tested equal to them.
* ``native``: the framework's own forward pass, and the only one that uses a GPU.
* ``auto``: ``opencv`` on the CPU, ``native`` on a GPU.

The detectors themselves are the frameworks' (:meth:`harness.frameworks.FrameworkBackend.open_detector`,
in ``harness/frameworks/<framework>/detectors.py``); this module only picks the engine and runs
one detector over every slide, each slide one batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.device import Device
from harness.frameworks import Batch, BatchResults, backend_for

BACKENDS = ("auto", "opencv", "native")


def choose_backend(requested: str, device: Device) -> str:
    """``auto`` → opencv on the CPU, native on a GPU; opencv on a GPU device is refused (CPU-only)."""
    if requested not in BACKENDS:
        raise ValueError(f"unknown backend {requested!r}; known: {', '.join(BACKENDS)}")
    if requested == "auto":
        return "native" if device.gpu else "opencv"
    if requested == "opencv" and device.gpu:
        raise ValueError(
            f"--backend opencv runs on the CPU only (OpenCV here has no CUDA); with --device {device} "
            "use --backend native (or auto)"
        )
    return requested


def open_detector(backend: str, config, files: dict, weights: Path, labelmap, work: Path):
    """The framework's detector for ``backend`` (``opencv`` or ``native``), its network loaded once."""
    return backend_for(config, labelmap).open_detector(files, weights, backend, work)


def detect_slides(detector, slides: Sequence[Batch], work: Path) -> BatchResults:
    """Per slide, in order: its detections per image (or the exception that stopped it) and seconds.
    ``detector`` is an open :class:`harness.frameworks.Detector`, or the exception that kept it from
    loading (then every slide carries that exception)."""
    if isinstance(detector, Exception):
        for _ in slides:
            yield detector, 0.0
        return
    yield from detector.detect_batches(slides, work)
