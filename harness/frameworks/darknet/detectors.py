"""Darknet detectors behind :class:`harness.frameworks.Detector`: the network loaded once, any number
of batches (``harness count``: one per slide).

* ``native``: pjreddie libdarknet in-process (ctypes), ``detector valid``'s steps, tested byte-equal
  to it; CPU or GPU.
* ``opencv``: the same cfg/weights in OpenCV DNN (CPU) with Darknet's letterbox and ``valid``'s
  thresholds reproduced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Optional

from harness.device import Device
from harness.frameworks import Batch, BatchResults, PerImage, detect_each, read_per_image

DARKNET_THRESH = 0.005  # detector valid's hard-coded threshold


class LibDarknetDetector:
    """pjreddie libdarknet via ctypes: ``detector valid``'s steps, tested byte-equal to it."""

    description = "libdarknet (ctypes) in a child process"

    def __init__(self, files: dict, weights: Path, labelmap, device: Device, work: Path, install=None) -> None:
        from harness.frameworks.darknet.libdarknet import guarded_network

        self.labelmap = labelmap
        self.net = guarded_network(
            files["cfg"], weights, install=install, device=device, log_path=Path(work) / "libdarknet.log"
        )
        self.classes = self.net.call("classes")  # loads the network now: load errors name the model
        fork = install.fork if install is not None else "pjreddie"
        self.description = f"libdarknet (ctypes, {fork}) in a child process"

    def detect_batches(self, batches: Sequence[Batch], work: Path) -> BatchResults:
        return detect_each(self._detect, batches, work)

    def _detect(self, batch: Batch, work: Path) -> PerImage:
        from harness.frameworks.darknet.libdarknet import write_detection_files

        dets = [
            replace(d, image_id=image_id)
            for image_id, path in batch
            for d in self.net.call("detect", path, doing=f"detecting {path}")
        ]
        write_detection_files(dets, self.labelmap.names[: self.classes], work / "detections")
        return read_per_image(work / "detections", self.labelmap)

    def close(self) -> None:
        self.net.close()


class OpenCVDarknetDetector:
    """The Darknet cfg/weights in OpenCV DNN with Darknet's letterbox and valid's thresholds."""

    def __init__(self, files: dict, weights: Path, labelmap, work: Path) -> None:
        from harness.frameworks.darknet.libdarknet import VALID_NMS
        from harness.frameworks.darknet.opencv import OpenCVDarknetNet

        self.labelmap = labelmap
        self.net: Optional[OpenCVDarknetNet] = OpenCVDarknetNet(
            files["cfg"], weights, work / "opencv_cfg", DARKNET_THRESH, VALID_NMS
        )
        self.description = self.net.description

    def detect_batches(self, batches: Sequence[Batch], work: Path) -> BatchResults:
        return detect_each(self._detect, batches, work)

    def _detect(self, batch: Batch, work: Path) -> PerImage:
        from harness.frameworks.darknet.libdarknet import write_detection_files

        net = self.net
        if net is None:
            raise RuntimeError("detector closed")
        dets = [d for image_id, path in batch for d in net.detect(path, image_id)]
        write_detection_files(dets, self.labelmap.names[: net.cfg.classes], work / "detections")
        return read_per_image(work / "detections", self.labelmap)

    def close(self) -> None:
        self.net = None


def open_darknet_detector(files: dict, weights: Path, labelmap, engine: str, device: Device, work: Path, install=None):
    """``native`` → :class:`LibDarknetDetector` on ``device`` (``install``: which Darknet, default pjreddie's);
    ``opencv`` → :class:`OpenCVDarknetDetector`."""
    if engine == "native":
        return LibDarknetDetector(files, weights, labelmap, device, work, install)
    if engine == "opencv":
        return OpenCVDarknetDetector(files, weights, labelmap, work)
    raise ValueError(f"no {engine!r} detector for framework 'darknet'; known: native, opencv")
