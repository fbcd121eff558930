"""Detection backends of `harness count`: the network is loaded once and serves every slide.

* ``opencv``: OpenCV DNN on the CPU (this OpenCV has no CUDA), with each framework's own
  preprocessing reproduced (Darknet's letterbox and thresholds, SSD's warp-resize and mean);
  2–6× faster than pycaffe/libdarknet on our CPUs (bench/bench_count.py), tested equal to them.
* ``native``: libdarknet in-process (ctypes) for Darknet, pycaffe for Caffe — the frameworks'
  own forward passes, and the only ones that use a GPU. pycaffe runs in a child process, so its
  network is loaded once by detecting every slide's fields in one job and splitting the result.
* ``auto``: ``opencv`` on the CPU, ``native`` on a GPU.

This is the one module of ``harness.count`` that imports the frameworks' detection code.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Iterator, Sequence, Union

from harness.device import Device

BACKENDS = ("auto", "opencv", "native")
Fields = list[tuple[str, Path]]                                 # (image id, image path) of one slide
PerImage = dict[str, list[tuple[str, float, tuple]]]            # image id -> [(class, score, box)]
DARKNET_THRESH = 0.005                                          # detector valid's hard-coded threshold
CAFFE_CONF = 0.01                                               # what detect_caffe keeps


def choose_backend(requested: str, device: Device) -> str:
    """``auto`` → opencv on the CPU, native on a GPU; opencv on a GPU device is refused (CPU-only)."""
    if requested not in BACKENDS:
        raise ValueError(f"unknown backend {requested!r}; known: {', '.join(BACKENDS)}")
    if requested == "auto":
        return "native" if device.gpu else "opencv"
    if requested == "opencv" and device.gpu:
        raise ValueError(f"--backend opencv runs on the CPU only (OpenCV here has no CUDA); with --device {device} "
                         "use --backend native (or auto)")
    return requested


def describe_backend(backend: str, framework: str) -> str:
    """What runs the forward pass, for the progress line and count.json."""
    if backend == "opencv":
        import cv2

        return f"OpenCV DNN {cv2.__version__} ({'Darknet cfg' if framework == 'darknet' else 'Caffe deploy net'}, CPU)"
    return "libdarknet in-process (ctypes)" if framework == "darknet" else "pycaffe (child process)"


def detect_slides(backend: str, framework: str, files: dict, weights: Path, labelmap, device: Device,
                  slides: Sequence[Fields], work: Path) -> Iterator[tuple[Union[PerImage, Exception], float]]:
    """Per slide, in order: its detections per image (or the exception that stopped it) and seconds.

    The network is loaded once before the first slide; load time is not in the per-slide seconds.
    """
    if framework == "caffe" and backend == "native":
        yield from _pycaffe_all(files, weights, labelmap, device, slides, work)
        return
    try:
        runner = _runner(backend, framework, files, weights, labelmap, device, work)
    except Exception as exc:  # noqa: BLE001 - the network did not load: no slide can be counted
        for _ in slides:
            yield exc, 0.0
        return
    try:
        for index, fields in enumerate(slides):
            started = time.monotonic()
            try:
                per_image = runner.detect(fields, work / f"slide_{index:04d}")
            except Exception as exc:  # noqa: BLE001 - one slide's failure is that slide's error
                yield exc, time.monotonic() - started
                continue
            yield per_image, time.monotonic() - started
    finally:
        runner.close()


def _runner(backend: str, framework: str, files: dict, weights: Path, labelmap, device: Device, work: Path):
    """The in-process backends: each loads its network here, once."""
    if framework == "darknet":
        if backend == "native":
            return _LibDarknet(files, weights, labelmap, device)
        return _OpenCVDarknet(files, weights, labelmap, work)
    if framework == "caffe" and backend == "opencv":
        return _OpenCVCaffe(files, weights, labelmap)
    raise ValueError(f"no {backend!r} backend for framework {framework!r}")


def _read_back(det_dir: Path, labelmap) -> PerImage:
    """The detection files as every harness path reads them (same rounding, same skips)."""
    from harness.count.cells import detections_by_image
    from harness.evaluation.detections import read_detections

    return detections_by_image(read_detections(det_dir, class_names=labelmap.names), labelmap.names)


class _LibDarknet:
    """pjreddie libdarknet via ctypes: ``detector valid``'s steps, tested byte-equal to it."""

    def __init__(self, files: dict, weights: Path, labelmap, device: Device) -> None:
        from harness.frameworks.darknet.libdarknet import DarknetNetwork

        self.labelmap = labelmap
        self.net = DarknetNetwork(files["cfg"], weights, device=device)

    def detect(self, fields: Fields, work: Path) -> PerImage:
        from harness.frameworks.darknet.libdarknet import write_detection_files

        dets = [replace(d, image_id=image_id) for image_id, path in fields
                for d in self.net.detect(path, thresh=DARKNET_THRESH)]
        write_detection_files(dets, self.labelmap.names[: self.net.classes], work / "detections")
        return _read_back(work / "detections", self.labelmap)

    def close(self) -> None:
        self.net.close()


class _OpenCVDarknet:
    """The Darknet cfg/weights in OpenCV DNN with Darknet's letterbox and valid's thresholds."""

    def __init__(self, files: dict, weights: Path, labelmap, work: Path) -> None:
        import cv2

        from harness.frameworks.darknet.cfg import summarize_cfg
        from harness.frameworks.darknet.opencv import opencv_cfg

        if not hasattr(cv2.dnn, "readNetFromDarknet"):
            raise RuntimeError("this OpenCV has no Darknet importer (removed in 5.x): use --backend native")
        self.labelmap, self.cfg = labelmap, summarize_cfg(files["cfg"])
        self.net = cv2.dnn.readNetFromDarknet(str(opencv_cfg(files["cfg"], work / "opencv_cfg", DARKNET_THRESH)),
                                              str(weights))
        self.outputs = self.net.getUnconnectedOutLayersNames()

    def detect(self, fields: Fields, work: Path) -> PerImage:
        from harness.frameworks.darknet.libdarknet import write_detection_files

        dets = [d for image_id, path in fields for d in self._one(image_id, path)]
        write_detection_files(dets, self.labelmap.names[: self.cfg.classes], work / "detections")
        return _read_back(work / "detections", self.labelmap)

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


class _OpenCVCaffe:
    """The SSD deploy net in OpenCV DNN with SSD's test-time preprocessing."""

    def __init__(self, files: dict, weights: Path, labelmap) -> None:
        import cv2

        from harness.frameworks.caffe.driver import deploy_input_size, existing_file

        self.labelmap = labelmap
        self.net = cv2.dnn.readNetFromCaffe(str(existing_file(files["deploy"], "deploy prototxt")),
                                            str(existing_file(weights, "weights")))
        self.size = _input_size(Path(files["deploy"]), deploy_input_size)

    def detect(self, fields: Fields, work: Path) -> PerImage:
        from harness.frameworks.caffe.driver import _write_detections, detection_rows, read_image, ssd_blob

        records = {}
        for image_id, path in fields:
            image = read_image(path)
            self.net.setInput(ssd_blob(image, self.size))
            records[image_id] = {"width": image.shape[1], "height": image.shape[0],
                                 "rows": detection_rows(self.net.forward())}
        _write_detections(records, self.labelmap, CAFFE_CONF, work / "detections")
        return _read_back(work / "detections", self.labelmap)

    def close(self) -> None:
        self.net = None


def _input_size(deploy: Path, engine_reader) -> tuple[int, int]:
    """(height, width) of the deploy input; also from an ``Input`` layer's ``input_param { shape {…} }``,
    which the harness's own rendered SSD deploy nets use and the engine reader does not parse."""
    import re

    try:
        return engine_reader(deploy)
    except ValueError:
        found = re.search(r"input_param\s*\{\s*shape\s*\{([^}]*)\}", deploy.read_text())
        dims = [int(v) for v in re.findall(r"dim\s*:\s*(\d+)", found.group(1))] if found else []
        if len(dims) != 4:
            raise
        return dims[2], dims[3]


def _pycaffe_all(files: dict, weights: Path, labelmap, device: Device, slides: Sequence[Fields],
                 work: Path) -> Iterator[tuple[Union[PerImage, Exception], float]]:
    """One pycaffe job over every slide (one network load); seconds shared out by field count."""
    from harness.data.annotations import ImageAnnotation
    from harness.frameworks.caffe.driver import detect_caffe

    owner: dict[str, tuple[int, str]] = {}
    images = []
    for index, fields in enumerate(slides):
        for image_id, path in fields:
            key = f"s{index:04d}_{len(owner):06d}"            # unique across slides, safe in VOC files
            owner[key] = (index, image_id)
            images.append(ImageAnnotation(key, Path(path), 0, 0))
    started = time.monotonic()
    try:
        det_dir = detect_caffe(files["deploy"], weights, images, labelmap, work / "pycaffe_detections",
                               conf_threshold=CAFFE_CONF, device=device)
        combined = _read_back(det_dir, labelmap)
    except Exception as exc:  # noqa: BLE001 - the one job failed: every slide carries its error
        seconds = time.monotonic() - started
        for fields in slides:
            yield exc, seconds * len(fields) / max(1, len(images))
        return
    seconds = time.monotonic() - started
    split: list[PerImage] = [{} for _ in slides]
    for key, boxes in combined.items():
        index, image_id = owner[key]
        split[index][image_id] = boxes
    for index, fields in enumerate(slides):
        yield split[index], seconds * len(fields) / max(1, len(images))


def load_model(model_dir: Path, device: str):
    """A trained MODEL_DIR as ``harness.count.run.Model`` (config, rendered files, weights, device)."""
    from harness.config import with_device
    from harness.count.run import Model
    from harness.device import resolve_device
    from harness.engine.experiment import trained_model
    from harness.labels import LabelMap

    config, files, weights = trained_model(model_dir)
    labelmap = LabelMap.from_file(files.get("names") or files["labelmap"])
    config = with_device(config, resolve_device(device, config.framework))
    return config, Model(config.framework, files, weights, labelmap, config.device)
