"""Caffe-SSD detectors behind :class:`harness.frameworks.Detector`: the network loaded once, any number
of batches (``harness count``: one per slide).

* ``native``: pycaffe (Caffe's own forward; CPU or GPU). pycaffe runs in a child process, so the
  network is loaded once by detecting every batch in one job and splitting the result per batch.
* ``opencv``: the deploy net in OpenCV DNN (CPU) with SSD's test-time preprocessing (warp-resize, mean).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from harness.device import Device
from harness.frameworks import Batch, BatchResults, PerImage, detect_each, read_per_image

CAFFE_CONF = 0.01  # what detect_caffe keeps


class PycaffeDetector:
    """One pycaffe job over every batch (one network load); its seconds shared out by image count."""

    description = "pycaffe (child process)"

    def __init__(self, files: dict, weights: Path, labelmap, device: Device) -> None:
        from harness.frameworks.caffe.detect import existing_file

        self.deploy = existing_file(files["deploy"], "deploy prototxt")
        self.weights = existing_file(weights, "weights")
        self.labelmap, self.device = labelmap, device

    def detect_batches(self, batches: Sequence[Batch], work: Path) -> BatchResults:
        from harness.data.annotations import ImageAnnotation
        from harness.frameworks.caffe.detect import detect_caffe

        owner: dict[str, tuple[int, str]] = {}
        images = []
        for index, batch in enumerate(batches):
            for image_id, path in batch:
                key = f"s{index:04d}_{len(owner):06d}"  # unique across batches, safe in VOC files
                owner[key] = (index, image_id)
                images.append(ImageAnnotation(key, Path(path), 0, 0))
        started = time.monotonic()
        try:
            det_dir = detect_caffe(
                self.deploy,
                self.weights,
                images,
                self.labelmap,
                work / "pycaffe_detections",
                conf_threshold=CAFFE_CONF,
                device=self.device,
            )
            combined = read_per_image(det_dir, self.labelmap)
        except Exception as exc:
            seconds = time.monotonic() - started
            for batch in batches:
                yield exc, seconds * len(batch) / max(1, len(images))
            return
        seconds = time.monotonic() - started
        split: list[PerImage] = [{} for _ in batches]
        for key, boxes in combined.items():
            index, image_id = owner[key]
            split[index][image_id] = boxes
        for index, batch in enumerate(batches):
            yield split[index], seconds * len(batch) / max(1, len(images))

    def close(self) -> None:
        pass


class OpenCVCaffeDetector:
    """The SSD deploy net in OpenCV DNN with SSD's test-time preprocessing."""

    def __init__(self, files: dict, weights: Path, labelmap) -> None:
        from harness.frameworks.caffe.detect import OpenCVSSDNet

        self.labelmap = labelmap
        self.net: Optional[OpenCVSSDNet] = OpenCVSSDNet(files["deploy"], weights)
        self.description = self.net.description

    def detect_batches(self, batches: Sequence[Batch], work: Path) -> BatchResults:
        return detect_each(self._detect, batches, work)

    def _detect(self, batch: Batch, work: Path) -> PerImage:
        from harness.frameworks.caffe.detect import _write_detections

        if self.net is None:
            raise RuntimeError("detector closed")
        _write_detections(self.net.records(batch), self.labelmap, CAFFE_CONF, work / "detections")
        return read_per_image(work / "detections", self.labelmap)

    def close(self) -> None:
        self.net = None


def open_caffe_detector(files: dict, weights: Path, labelmap, engine: str, device: Device):
    """``native`` → :class:`PycaffeDetector` on ``device``; ``opencv`` → :class:`OpenCVCaffeDetector`."""
    if engine == "native":
        return PycaffeDetector(files, weights, labelmap, device)
    if engine == "opencv":
        return OpenCVCaffeDetector(files, weights, labelmap)
    raise ValueError(f"no {engine!r} detector for framework 'caffe'; known: native, opencv")
