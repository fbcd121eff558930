"""Run a Darknet YOLO cfg/weights through OpenCV DNN, as an independent check on Darknet itself.

Two things make OpenCV differ from ``darknet detector valid`` unless handled: OpenCV zeroes class
scores at the [yolo] ``thresh=`` (default 0.2, Darknet's valid uses 0.005), and
``blobFromImage`` stretches the image where Darknet letterboxes with its own corner-aligned
bilinear resize. Both are reproduced here, so the two implementations should agree closely.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from harness.frameworks.darknet.cfg import DarknetInputError, summarize_cfg, write_cfg_copy
from harness.frameworks.darknet.driver import image_id
from harness.frameworks.darknet.libdarknet import VALID_NMS, VALID_THRESH, RawDetection


def darknet_resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Darknet's resize_image: bilinear with corners aligned, columns first, in float32."""
    columns = _interpolate_axis(image, width, axis=1)
    return _interpolate_axis(columns, height, axis=0)


def _interpolate_axis(image: np.ndarray, size: int, axis: int) -> np.ndarray:
    source = image.shape[axis]
    if size == 1 or source == 1:
        index = np.full(size, source - 1 if size == 1 else 0)
        return np.take(image, index, axis=axis)
    scale = np.float32(source - 1) / np.float32(size - 1)
    position = np.arange(size, dtype=np.float32) * scale
    low = position.astype(np.int64)
    frac = (position - low).astype(np.float32)
    low[-1], frac[-1] = source - 1, 0.0  # Darknet takes the last pixel as is
    high = np.minimum(low + 1, source - 1)
    shape = [1, 1, 1]
    shape[axis] = size
    frac = frac.reshape(shape)
    return (1 - frac) * np.take(image, low, axis=axis) + frac * np.take(image, high, axis=axis)


def letterbox(image_rgb: np.ndarray, width: int, height: int) -> tuple[np.ndarray, int, int]:
    """Darknet's letterbox_image: keep aspect, integer sizes as C computes them, grey (0.5) border."""
    src_h, src_w = image_rgb.shape[:2]
    if width / src_w < height / src_h:
        new_w, new_h = width, (src_h * width) // src_w
    else:
        new_w, new_h = (src_w * height) // src_h, height
    boxed = np.full((height, width, 3), 0.5, dtype=np.float32)
    left, top = (width - new_w) // 2, (height - new_h) // 2
    boxed[top : top + new_h, left : left + new_w] = darknet_resize(image_rgb, new_w, new_h)
    return boxed, new_w, new_h


def opencv_cfg(cfg_path: Path, out_dir: Path, thresh: float = VALID_THRESH) -> Path:
    """Copy of the cfg with ``thresh=`` in every [yolo] section (Darknet itself ignores the key)."""
    return write_cfg_copy(cfg_path, out_dir, {"yolo": {"thresh": str(thresh)}})


class OpenCVDarknetNet:
    """A Darknet cfg/weights loaded once in OpenCV DNN; ``detect`` repeats ``detector valid``'s
    letterbox, thresholds and per-class NMS, so its boxes are Darknet's (tested)."""

    def __init__(
        self, cfg_path: Path, weights: Path, work_dir: Path, thresh: float = VALID_THRESH, nms: float = VALID_NMS
    ) -> None:
        import cv2

        if not hasattr(cv2.dnn, "readNetFromDarknet"):
            raise RuntimeError(
                "this OpenCV has no Darknet importer (removed in 5.x): use libdarknet "
                "(--backend native) or pip install 'opencv-python-headless<5'"
            )
        self.description = f"OpenCV DNN {cv2.__version__} (Darknet cfg, CPU)"
        self.cfg, self.thresh, self.nms = summarize_cfg(cfg_path), thresh, nms
        self.net = cv2.dnn.readNetFromDarknet(str(opencv_cfg(cfg_path, work_dir, thresh)), str(weights))
        self.outputs = self.net.getUnconnectedOutLayersNames()

    def detect(self, image_path: Path, name: str) -> list[RawDetection]:
        import cv2

        bgr = cv2.imread(str(image_path))
        if bgr is None:
            raise DarknetInputError(f"{image_path}: OpenCV cannot read this image")
        boxed, new_w, new_h = letterbox(bgr[:, :, ::-1].astype(np.float32) / 255.0, self.cfg.width, self.cfg.height)
        self.net.setInput(np.ascontiguousarray(boxed.transpose(2, 0, 1)[None]))
        rows = np.concatenate([out.reshape(-1, out.shape[-1]) for out in self.net.forward(self.outputs)])
        return _rows_to_detections(
            rows, name, bgr.shape[1], bgr.shape[0], self.cfg, new_w, new_h, self.thresh, self.nms
        )


def detect_opencv_darknet(
    cfg_path: Path,
    weights: Path,
    images: Sequence[Path],
    *,
    work_dir: Path,
    thresh: float = VALID_THRESH,
    nms: float = VALID_NMS,
) -> list[RawDetection]:
    """Detections like ``detector valid`` (1-based VOC pixels, clamped) computed by OpenCV DNN."""
    net = OpenCVDarknetNet(cfg_path, weights, work_dir, thresh, nms)
    return [d for path in images for d in net.detect(path, image_id(str(path)))]


def _rows_to_detections(
    rows: np.ndarray, name: str, width: int, height: int, cfg, new_w: int, new_h: int, thresh: float, nms: float
) -> list[RawDetection]:
    objectness = rows[:, 4]
    rows = rows[objectness > thresh]
    probs = rows[:, 5 : 5 + cfg.classes].astype(np.float32)
    probs[probs <= thresh] = 0.0
    boxes = _undo_letterbox(rows[:, :4].astype(np.float64), width, height, cfg.width, cfg.height, new_w, new_h)
    for k in range(cfg.classes):
        probs[:, k] = _suppress(boxes, probs[:, k], nms)
    out = []
    for box, obj, prob in zip(boxes, rows[:, 4], probs):
        x, y, w, h = box
        xmin, ymin = float(max(1.0, x - w / 2 + 1)), float(max(1.0, y - h / 2 + 1))
        xmax, ymax = float(min(float(width), x + w / 2 + 1)), float(min(float(height), y + h / 2 + 1))
        out += [
            RawDetection(name, int(k), float(prob[k]), xmin, ymin, xmax, ymax, float(obj)) for k in np.nonzero(prob)[0]
        ]
    return out


def _undo_letterbox(
    boxes: np.ndarray, width: int, height: int, net_w: int, net_h: int, new_w: int, new_h: int
) -> np.ndarray:
    """correct_yolo_boxes: network-relative centre boxes to original-image pixels."""
    out = boxes.copy()
    out[:, 0] = (boxes[:, 0] - (net_w - new_w) / 2.0 / net_w) / (new_w / net_w) * width
    out[:, 1] = (boxes[:, 1] - (net_h - new_h) / 2.0 / net_h) / (new_h / net_h) * height
    out[:, 2] = boxes[:, 2] * net_w / new_w * width
    out[:, 3] = boxes[:, 3] * net_h / new_h * height
    return out


def _suppress(boxes: np.ndarray, scores: np.ndarray, nms: float) -> np.ndarray:
    """Greedy per-class NMS as do_nms_sort does it: IoU > nms zeroes the lower score."""
    scores = scores.copy()
    order = np.argsort(-scores, kind="stable")
    for rank, i in enumerate(order):
        if scores[i] == 0:
            continue
        rest = order[rank + 1 :]
        scores[rest[_iou(boxes[i], boxes[rest]) > nms]] = 0.0
    return scores


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    def overlap(c1, w1, c2, w2):
        left = np.maximum(c1 - w1 / 2, c2 - w2 / 2)
        right = np.minimum(c1 + w1 / 2, c2 + w2 / 2)
        return np.clip(right - left, 0, None)

    with np.errstate(invalid="ignore", over="ignore"):  # inf boxes from exploded w/h: IoU nan, kept
        inter = overlap(box[0], box[2], others[:, 0], others[:, 2]) * overlap(
            box[1], box[3], others[:, 1], others[:, 3]
        )
        union = box[2] * box[3] + others[:, 2] * others[:, 3] - inter
        return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
