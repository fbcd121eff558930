"""Darknet detectors behind :class:`harness.frameworks.Detector`: the network loaded once, any number
of batches (``harness count``: one per slide).

* ``native``: pjreddie libdarknet in-process (ctypes), ``detector valid``'s steps, tested byte-equal
  to it; CPU or GPU.
* ``opencv``: the same cfg/weights in OpenCV DNN (CPU) with Darknet's letterbox and ``valid``'s
  thresholds reproduced.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

from harness.device import Device
from harness.frameworks import Batch, BatchResults, PerImage, detect_each, read_per_image

DARKNET_THRESH = 0.005                                          # detector valid's hard-coded threshold


class LibDarknetDetector:
    """pjreddie libdarknet via ctypes: ``detector valid``'s steps, tested byte-equal to it."""

    description = "libdarknet in-process (ctypes)"

    def __init__(self, files: dict, weights: Path, labelmap, device: Device) -> None:
        from harness.frameworks.darknet.libdarknet import DarknetNetwork

        self.labelmap = labelmap
        self.net = DarknetNetwork(files["cfg"], weights, device=device)

    def detect_batches(self, batches: Sequence[Batch], work: Path) -> BatchResults:
        return detect_each(self._detect, batches, work)

    def _detect(self, batch: Batch, work: Path) -> PerImage:
        from harness.frameworks.darknet.libdarknet import write_detection_files

        dets = [replace(d, image_id=image_id) for image_id, path in batch
                for d in self.net.detect(path, thresh=DARKNET_THRESH)]
        write_detection_files(dets, self.labelmap.names[: self.net.classes], work / "detections")
        return read_per_image(work / "detections", self.labelmap)

    def close(self) -> None:
        self.net.close()


class OpenCVDarknetDetector:
    """The Darknet cfg/weights in OpenCV DNN with Darknet's letterbox and valid's thresholds."""

    def __init__(self, files: dict, weights: Path, labelmap, work: Path) -> None:
        import cv2

        from harness.frameworks.darknet.cfg import summarize_cfg
        from harness.frameworks.darknet.opencv import opencv_cfg

        if not hasattr(cv2.dnn, "readNetFromDarknet"):
            raise RuntimeError("this OpenCV has no Darknet importer (removed in 5.x): use the native engine "
                               "(--backend native)")
        self.description = f"OpenCV DNN {cv2.__version__} (Darknet cfg, CPU)"
        self.labelmap, self.cfg = labelmap, summarize_cfg(files["cfg"])
        self.net = cv2.dnn.readNetFromDarknet(str(opencv_cfg(files["cfg"], work / "opencv_cfg", DARKNET_THRESH)),
                                              str(weights))
        self.outputs = self.net.getUnconnectedOutLayersNames()

    def detect_batches(self, batches: Sequence[Batch], work: Path) -> BatchResults:
        return detect_each(self._detect, batches, work)

    def _detect(self, batch: Batch, work: Path) -> PerImage:
        from harness.frameworks.darknet.libdarknet import write_detection_files

        dets = [d for image_id, path in batch for d in self._one(image_id, path)]
        write_detection_files(dets, self.labelmap.names[: self.cfg.classes], work / "detections")
        return read_per_image(work / "detections", self.labelmap)

    def _one(self, image_id: str, path: Path) -> list:
        """detect_opencv_darknet's per-image step, on the network loaded once."""
        import cv2
        import numpy as np

        from harness.frameworks.darknet.libdarknet import VALID_NMS
        from harness.frameworks.darknet.opencv import _rows_to_detections, letterbox

        bgr = cv2.imread(str(path))
        if bgr is None:
            raise ValueError(f"{path}: OpenCV cannot read this image")
        boxed, new_w, new_h = letterbox(bgr[:, :, ::-1].astype(np.float32) / 255.0, self.cfg.width, self.cfg.height)
        self.net.setInput(np.ascontiguousarray(boxed.transpose(2, 0, 1)[None]))
        rows = np.concatenate([out.reshape(-1, out.shape[-1]) for out in self.net.forward(self.outputs)])
        return _rows_to_detections(rows, image_id, bgr.shape[1], bgr.shape[0], self.cfg, new_w, new_h,
                                   DARKNET_THRESH, VALID_NMS)

    def close(self) -> None:
        self.net = None


def open_darknet_detector(files: dict, weights: Path, labelmap, engine: str, device: Device, work: Path):
    """``native`` → :class:`LibDarknetDetector` on ``device``; ``opencv`` → :class:`OpenCVDarknetDetector`."""
    if engine == "native":
        return LibDarknetDetector(files, weights, labelmap, device)
    if engine == "opencv":
        return OpenCVDarknetDetector(files, weights, labelmap, work)
    raise ValueError(f"no {engine!r} detector for framework 'darknet'; known: native, opencv")
