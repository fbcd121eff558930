"""YOLO anchors: the stock ones, or k-means (IoU distance) over the training boxes.

YOLOv3's anchors were clustered on COCO; for cells of nearly one size the paper-era practice is to
re-cluster on the training labels. Clustering is seeded so a rendered cfg is reproducible.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np

from harness.data.darknet import darknet_label_path

PathLike = Union[str, Path]

YOLOV3_ANCHORS = (10, 13, 16, 30, 33, 23, 30, 61, 62, 45, 59, 119, 116, 90, 156, 198, 373, 326)
YOLOV3_TINY_ANCHORS = (10, 14, 23, 27, 37, 58, 81, 82, 135, 169, 344, 319)


@dataclass
class LabelBoxes:
    """Normalised (w, h) of every usable box, plus what was skipped and why."""

    wh: np.ndarray
    files: int
    skipped: dict[str, int]


def label_files(
    labels_dir: Optional[PathLike] = None, train_list: Optional[PathLike] = None, base_dir: Optional[PathLike] = None
) -> list[Path]:
    """Label files from a directory of ``*.txt`` or from the image list Darknet trains on
    (relative entries resolved from ``base_dir``, where Darknet will run)."""
    if (labels_dir is None) == (train_list is None):
        raise ValueError("give exactly one of labels_dir or train_list to compute anchors")
    if labels_dir is not None:
        directory = Path(labels_dir)
        if not directory.is_dir():
            raise ValueError(f"{directory}: labels directory does not exist")
        files = sorted(directory.glob("*.txt"))
        if not files:
            raise ValueError(f"{directory}: no *.txt label files")
        return files
    listing = Path(train_list)  # type: ignore[arg-type]
    try:
        images = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
    except OSError as exc:
        raise ValueError(f"{listing}: cannot read train list: {exc}") from exc
    if not images:
        raise ValueError(f"{listing}: train list is empty")
    return [Path(darknet_label_path(image, base_dir)) for image in images]


def read_label_boxes(files: Iterable[Path]) -> LabelBoxes:
    """Collect (w, h); malformed lines are errors naming file and line, empty boxes are counted."""
    wh, skipped, count = [], {"zero-size box": 0, "missing label file": 0}, 0
    for path in files:
        count += 1
        if not path.is_file():
            skipped["missing label file"] += 1
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            try:
                _, _, _, w, h = int(parts[0]), *map(float, parts[1:5])
                if len(parts) != 5:
                    raise ValueError
            except (ValueError, IndexError):
                raise ValueError(f"{path}:{number}: expected 'class cx cy w h', got {line!r}") from None
            if not (0 <= w <= 1 and 0 <= h <= 1):
                raise ValueError(f"{path}:{number}: w/h must be normalised to [0, 1], got {line!r}")
            if w == 0 or h == 0:
                skipped["zero-size box"] += 1
                continue
            wh.append((w, h))
    return LabelBoxes(np.asarray(wh, dtype=np.float64).reshape(-1, 2), count, skipped)


def _iou_wh(boxes: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """IoU of boxes and centroids aligned at a common corner: only shape matters."""
    inter = np.minimum(boxes[:, None, 0], centroids[None, :, 0]) * np.minimum(boxes[:, None, 1], centroids[None, :, 1])
    union = boxes[:, None].prod(-1) + centroids[None, :].prod(-1) - inter
    return inter / union


def kmeans_anchors(wh: np.ndarray, k: int, seed: int = 0, max_iter: int = 300) -> np.ndarray:
    """k centroids under the 1 - IoU distance (k-means++ seeding), sorted by area."""
    if len(wh) < k:
        raise ValueError(f"need at least {k} boxes to cluster {k} anchors, got {len(wh)}")
    rng = np.random.default_rng(seed)
    centroids = wh[[rng.integers(len(wh))]]
    while len(centroids) < k:
        distance = (1 - _iou_wh(wh, centroids)).min(axis=1)
        weights = distance**2
        pick = rng.choice(len(wh), p=weights / weights.sum()) if weights.sum() > 0 else rng.integers(len(wh))
        centroids = np.vstack([centroids, wh[pick]])
    assignment = None
    for _ in range(max_iter):
        new_assignment = (1 - _iou_wh(wh, centroids)).argmin(axis=1)
        if assignment is not None and np.array_equal(new_assignment, assignment):
            break
        assignment = new_assignment
        for j in range(k):
            members = wh[assignment == j]
            if len(members):
                centroids[j] = np.median(members, axis=0)
    return centroids[np.argsort(centroids.prod(axis=1))]


def mean_best_iou(wh: np.ndarray, anchors_wh: np.ndarray) -> float:
    """Average over boxes of the best anchor IoU (the usual anchor-quality figure)."""
    return float(_iou_wh(wh, anchors_wh).max(axis=1).mean())


def anchors_for_size(centroids: np.ndarray, size: int) -> tuple[int, ...]:
    """Darknet's ``w,h, w,h, ...`` in input pixels (at least 1), smallest area first after rounding.

    Masks assign the first anchors to the finest grid, so the order must hold for the integers written.
    """
    pixels = np.maximum(1, np.round(centroids * size)).astype(int)
    pixels = pixels[np.argsort(pixels.prod(axis=1), kind="stable")]
    return tuple(int(v) for v in pixels.ravel())


def parse_anchors(text: Union[str, Sequence[int]], count: int) -> tuple[int, ...]:
    """Anchors given as ``"10,13, 16,30, ..."`` or a sequence: must hold ``count`` (w, h) pairs."""
    values = [v for v in str(text).replace(" ", "").split(",") if v] if isinstance(text, str) else list(text)
    try:
        anchors = tuple(round(float(v)) for v in values)
    except ValueError:
        raise ValueError(f"anchors must be numbers, got {text!r}") from None
    if len(anchors) != 2 * count or min(anchors) < 1:
        raise ValueError(f"need {count} positive (w, h) anchor pairs ({2 * count} numbers), got {len(anchors)}")
    return anchors
