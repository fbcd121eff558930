"""Detection and timing with the deploy net: pycaffe in a child process
(``python -m harness.frameworks.caffe.worker worker JOB.json``, :mod:`harness.frameworks.caffe.worker`)
so that Caffe's libraries (system OpenCV 4.6, glog, its own protobuf descriptors) never load into
the harness process, and a Caffe abort (``LOG(FATAL)`` calls ``abort()``) cannot kill the caller;
and OpenCV DNN on the same files (CPU).

Box convention (see docs/caffe.md): the data stage stores VOC boxes in the LMDB as
``xmin / width`` etc. without a 1-pixel shift, and SSD's DetectionOutput returns boxes in that
same normalised frame, so pixels are ``x * width`` / ``y * height`` — the exact inverse, giving
boxes in the VOC 1-based frame the ground truth uses. We keep floats (Caffe's own VOC writer
truncates to int) and clamp to ``[0, width] x [0, height]``.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from harness.core.process import describe_returncode
from harness.core.types import NativeFrameworkError
from harness.data.annotations import ImageAnnotation
from harness.device import Device, describe_device
from harness.frameworks.caffe.install import CaffeInstall, find_caffe

SSD_MEAN_BGR = (104.0, 117.0, 123.0)
WORKER_TIMEOUT_S = 3600

PathLike = Union[str, Path]
ImageList = Union[Sequence[ImageAnnotation], Sequence[PathLike]]


# ----------------------------------------------------------------------------- detection


@dataclass(frozen=True)
class ImageRef:
    image_id: str
    path: Path


def existing_file(path: PathLike, what: str) -> Path:
    """Resolve ``path`` or fail naming it: Caffe's own message for a missing file is an abort."""
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} not found")
    return path


def image_refs(images: ImageList) -> list[ImageRef]:
    """Image ids and paths from annotations or plain paths (id = file name up to the first dot)."""
    refs = []
    for item in images:
        if isinstance(item, ImageAnnotation):
            refs.append(ImageRef(item.image_id, Path(item.image_path)))
        else:
            path = Path(item)
            refs.append(ImageRef(path.name.split(".", 1)[0], path))
    missing = [str(r.path) for r in refs if not r.path.is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} image(s) not found, first: {missing[0]}")
    ids = [r.image_id for r in refs]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate image ids among {len(ids)} images (ids are file names up to the first '.')")
    return refs


def detect_caffe(
    deploy_prototxt: PathLike,
    weights: PathLike,
    images: ImageList,
    labelmap,
    out_dir: PathLike,
    *,
    conf_threshold: float = 0.01,
    batch: int = 1,
    device: Device = Device("cpu"),
) -> Path:
    """Run the deploy net with pycaffe; write ``comp4_det_test_<class>.txt`` files into ``out_dir``."""
    labels = _labelmap(labelmap)
    refs = image_refs(images)
    raw = _run_worker(
        {
            "op": "detect",
            "deploy": str(existing_file(deploy_prototxt, "deploy prototxt")),
            "weights": str(existing_file(weights, "weights")),
            "batch": int(batch),
            "images": [[r.image_id, str(r.path)] for r in refs],
            "gpu": _gpu_index(device),
        },
        Path(out_dir),
    )
    return _write_detections(raw["detections"], labels, conf_threshold, Path(out_dir))


class OpenCVSSDNet:
    """An SSD deploy net loaded once in OpenCV DNN with SSD's test-time preprocessing (no Caffe
    needed): the raw DetectionOutput rows per image, as pycaffe's worker returns them."""

    def __init__(self, deploy_prototxt: PathLike, weights: PathLike) -> None:
        import cv2

        self.description = f"OpenCV DNN {cv2.__version__} (Caffe deploy net, CPU)"
        self.net = cv2.dnn.readNetFromCaffe(
            str(existing_file(deploy_prototxt, "deploy prototxt")), str(existing_file(weights, "weights"))
        )
        self.size = deploy_input_size(Path(deploy_prototxt))

    def records(self, images: Iterable[tuple[str, Path]]) -> dict:
        """{image id: {"width", "height", "rows"}} — what ``_write_detections`` takes."""
        records = {}
        for image_id, path in images:
            image = read_image(path)
            self.net.setInput(ssd_blob(image, self.size))
            records[image_id] = {
                "width": image.shape[1],
                "height": image.shape[0],
                "rows": detection_rows(self.net.forward()),
            }
        return records


def detect_opencv_caffe(
    deploy_prototxt: PathLike,
    weights: PathLike,
    images: ImageList,
    labelmap,
    out_dir: PathLike,
    *,
    conf_threshold: float = 0.01,
) -> Path:
    """The same deploy net through OpenCV DNN (no Caffe needed): an independent cross-check."""
    net = OpenCVSSDNet(deploy_prototxt, weights)
    records = net.records((ref.image_id, ref.path) for ref in image_refs(images))
    return _write_detections(records, _labelmap(labelmap), conf_threshold, Path(out_dir))


def deploy_input_size(deploy: Path) -> tuple[int, int]:
    """``(height, width)`` of the deploy net's input: ``input_shape { dim… }``, top-level ``input_dim``s,
    or an ``Input`` layer's ``input_param { shape { dim… } }`` (the harness's rendered SSD deploy nets)."""
    text = re.sub(r"#[^\n]*", "", deploy.read_text())
    for pattern in (r"input_shape\s*\{([^}]*)\}", r"input_param\s*\{\s*shape\s*\{([^}]*)\}"):
        found = re.search(pattern, text)
        if found:
            values = [int(v) for v in re.findall(r"dim\s*:\s*(\d+)", found.group(1))]
            break
    else:
        values = [int(v) for v in re.findall(r"^\s*input_dim\s*:\s*(\d+)", text, flags=re.M)]
    if len(values) != 4:
        raise ValueError(
            f"{deploy}: cannot find a 4-d input (input_shape, input_dim or an Input layer's "
            "input_param { shape }) for the data blob"
        )
    return values[2], values[3]


def read_image(path: Path):
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: not a readable image")
    return image


def ssd_blob(images, size: tuple[int, int]):
    """SSD test-time preprocessing: warp-resize (bilinear) to the net size, BGR minus mean, NCHW."""
    import cv2
    import numpy as np

    if not isinstance(images, list):
        images = [images]
    height, width = size
    batch = np.empty((len(images), 3, height, width), dtype=np.float32)
    for index, image in enumerate(images):
        resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        resized -= np.asarray(SSD_MEAN_BGR, dtype=np.float32)
        batch[index] = resized.transpose(2, 0, 1)
    return batch


def detection_rows(output) -> list[list[float]]:
    """DetectionOutput blob (1,1,N,7: item, label, score, x1, y1, x2, y2) → rows with item ≥ 0."""
    import numpy as np

    rows = np.asarray(output, dtype=np.float64).reshape(-1, 7)
    return rows[rows[:, 0] >= 0].tolist()


def _write_detections(records: dict, labels, conf_threshold: float, out_dir: Path) -> Path:
    from harness.evaluation.detections import Detections, write_voc_detections

    flat: list = []
    skipped: dict[str, int] = {}
    for image_id, record in records.items():
        for row in record["rows"]:
            entry = _row_to_record(image_id, row, record["width"], record["height"], labels)
            if isinstance(entry, str):
                skipped[entry] = skipped.get(entry, 0) + 1
            elif entry["score"] >= conf_threshold:
                flat.append(entry)
    dets = Detections.from_records(flat, source="caffe DetectionOutput")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_voc_detections(dets, out_dir, class_names=labels.names)
    summary = {
        "images": len(records),
        "detections": len(dets),
        "conf_threshold": conf_threshold,
        "skipped": skipped,
        "skipped_by_reader": dets.skipped,
    }
    (out_dir / "detections_summary.json").write_text(json.dumps(summary, indent=2))
    return out_dir


def _row_to_record(image_id: str, row: Sequence[float], width: int, height: int, labels):
    """One DetectionOutput row → a detection record in VOC pixels, or the reason it is skipped."""
    _, label, score, x1, y1, x2, y2 = row
    index = round(label) - 1  # Caffe label 0 is background
    if not 0 <= index < len(labels.names):
        return f"label {int(label)} outside the label map"
    if not all(math.isfinite(v) for v in (score, x1, y1, x2, y2)):
        return "non-finite score or box"
    box = [
        _clamp(x1 * width, width),
        _clamp(y1 * height, height),
        _clamp(x2 * width, width),
        _clamp(y2 * height, height),
    ]
    if box[2] < box[0] or box[3] < box[1]:
        return "inverted box"
    return {"image_id": image_id, "class": labels.names[index], "score": float(score), "bbox": box}


def _clamp(value: float, limit: int) -> float:
    return min(max(value, 0.0), float(limit))


def _labelmap(labelmap):
    from harness.labels import LabelMap

    return labelmap if isinstance(labelmap, LabelMap) else LabelMap.from_file(labelmap)


# ----------------------------------------------------------------------------- timing


def time_caffe(
    deploy: PathLike,
    weights: PathLike,
    images: ImageList,
    n: int = 50,
    warmup: int = 5,
    out_path: Optional[PathLike] = None,
    device: Device = Device("cpu"),
    scratch: Optional[PathLike] = None,
) -> dict:
    """Batch-1 latency of the deploy net via pycaffe over :data:`harness.frameworks.TIMED_SPAN`:
    preprocessing (resize, mean subtraction into the input blob) + forward, whose DetectionOutput
    layer decodes the boxes and runs NMS; ``forward_*`` is ``net.forward()`` alone.

    The worker's job file goes to ``scratch`` (default: beside ``out_path``, else a temp dir) —
    never into the caller's working directory.
    """
    import tempfile

    refs = image_refs(images)
    if not refs:
        raise ValueError("time_caffe needs at least one image")
    job = {
        "op": "time",
        "deploy": str(existing_file(deploy, "deploy prototxt")),
        "weights": str(existing_file(weights, "weights")),
        "gpu": _gpu_index(device),
        "images": [[r.image_id, str(r.path)] for r in refs],
        "n": int(n),
        "warmup": int(warmup),
    }
    if scratch is None and out_path is not None:
        scratch = Path(out_path).parent
    if scratch is None:
        with tempfile.TemporaryDirectory(prefix="harness-caffe-") as tmp:
            raw = _run_worker(job, Path(tmp))
    else:
        raw = _run_worker(job, Path(scratch))
    timing = _timing_summary(raw["milliseconds"], raw["forward_milliseconds"], n, warmup, device)
    if out_path is not None:
        Path(out_path).write_text(json.dumps(timing, indent=2))
    return timing


def _timing_summary(total_ms: list[float], forward_ms: list[float], n: int, warmup: int, device: Device) -> dict:
    import numpy as np

    from harness.frameworks import TIMED_SPAN, TIMED_SPAN_DESCRIPTION

    return {
        "device": describe_device(device),
        "backend": f"caffe-{device.kind}",
        "n_images": n,
        "warmup": warmup,
        "batch": 1,
        "span": TIMED_SPAN,
        "span_description": TIMED_SPAN_DESCRIPTION,
        "median_ms": float(np.median(total_ms)),
        "p90_ms": float(np.percentile(total_ms, 90)),
        "forward_median_ms": float(np.median(forward_ms)),
        "forward_p90_ms": float(np.percentile(forward_ms, 90)),
    }


def _gpu_index(device: Device) -> Optional[int]:
    return device.index if device.gpu else None


# ----------------------------------------------------------------------------- pycaffe worker


def _run_worker(job: dict, scratch: Path) -> dict:
    """Run one job in a child Python with pycaffe; its stderr (glog) is kept for error messages."""
    install = find_caffe()
    scratch.mkdir(parents=True, exist_ok=True)
    job_path = scratch / f".caffe_job_{os.getpid()}.json"
    result_path = job_path.with_suffix(".result.json")
    job["result"] = str(result_path)
    job_path.write_text(json.dumps(job))
    try:
        done = subprocess.run(
            [sys.executable, "-m", "harness.frameworks.caffe.worker", "worker", str(job_path)],
            capture_output=True,
            text=True,
            timeout=WORKER_TIMEOUT_S,
            env={**os.environ, **install.env(quiet=True), "PYTHONPATH": _worker_pythonpath(install)},
        )
        if done.returncode != 0 or not result_path.is_file():
            raise NativeFrameworkError(
                f"pycaffe {job['op']} failed ({describe_returncode(done.returncode)}) for {job['deploy']} "
                f"with weights {job['weights']}",
                (done.stdout + done.stderr)[-4000:],
            )
        return json.loads(result_path.read_text())
    finally:
        job_path.unlink(missing_ok=True)
        result_path.unlink(missing_ok=True)


def _worker_pythonpath(install: CaffeInstall) -> str:
    """pycaffe first, then this checkout (so ``-m harness.frameworks.caffe.worker`` resolves without install)."""
    project = str(Path(__file__).resolve().parents[3])
    return os.pathsep.join(filter(None, [str(install.python_dir), project, os.environ.get("PYTHONPATH", "")]))
