"""Ground truth per class as flat numpy arrays, and the (detection, ground truth) pairs per image.

Every protocol needs, for one class, "the boxes of this image". Keeping each class's objects
sorted by image with ``start``/``count`` offsets lets us build all det×gt pairs of a class with
a few ``np.repeat`` calls instead of a Python loop over detections.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness.data.annotations import ImageAnnotation


@dataclass
class ClassGroundTruth:
    """Objects of one class, sorted by image index (order inside an image kept from the XML)."""

    boxes: np.ndarray  # (M, 4) VOC pixels
    difficult: np.ndarray  # (M,) bool
    start: np.ndarray  # (n_images,) first object index of each image
    count: np.ndarray  # (n_images,) objects of this class in each image

    @property
    def npos(self) -> int:
        """Objects that count for recall: the non-difficult ones (VOC devkit)."""
        return int((~self.difficult).sum())


@dataclass
class GroundTruth:
    image_ids: list[str]
    index_of: dict[str, int]
    by_class: dict[str, ClassGroundTruth]
    outside_labelmap: dict[str, int]  # GT class name -> objects not in the label map


def build_ground_truth(images: Sequence[ImageAnnotation], class_names: Sequence[str]) -> GroundTruth:
    """Index GT by image id; duplicate ids are an error (they would merge two images)."""
    image_ids = [im.image_id for im in images]
    index_of = {image_id: i for i, image_id in enumerate(image_ids)}
    if len(index_of) != len(image_ids):
        counts = Counter(image_ids)
        dups = sorted(i for i, n in counts.items() if n > 1)
        raise ValueError(f"ground truth has duplicate image ids: {dups[:5]}")
    rows: dict[str, tuple[list, list, list]] = {name: ([], [], []) for name in class_names}
    outside: dict[str, int] = {}
    for index, image in enumerate(images):
        for obj in image.objects:
            if obj.name not in rows:
                outside[obj.name] = outside.get(obj.name, 0) + 1
                continue
            img_idx, boxes, difficult = rows[obj.name]
            img_idx.append(index)
            boxes.append((obj.xmin, obj.ymin, obj.xmax, obj.ymax))
            difficult.append(bool(obj.difficult))
    by_class = {name: _class_arrays(*rows[name], len(images)) for name in class_names}
    return GroundTruth(image_ids, index_of, by_class, outside)


def _class_arrays(img_idx: list, boxes: list, difficult: list, n_images: int) -> ClassGroundTruth:
    img = np.asarray(img_idx, dtype=np.int64)
    count = np.bincount(img, minlength=n_images).astype(np.int64)
    start = np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64)
    return ClassGroundTruth(
        boxes=np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
        difficult=np.asarray(difficult, dtype=bool),
        start=start,
        count=count,
    )


def voc_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of (N,4) boxes with the devkit's inclusive-pixel ``+1`` widths.

    Identical to COCO's IoU of the same boxes converted to ``[xmin-1, ymin-1, w+1, h+1]``.
    """
    iw = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]) + 1.0
    ih = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]) + 1.0
    inter = np.where((iw > 0) & (ih > 0), iw * ih, 0.0)
    area_a = (a[:, 2] - a[:, 0] + 1.0) * (a[:, 3] - a[:, 1] + 1.0)
    area_b = (b[:, 2] - b[:, 0] + 1.0) * (b[:, 3] - b[:, 1] + 1.0)
    union = area_a + area_b - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(inter > 0, inter / union, 0.0)


def pairs(
    det_image: np.ndarray, det_boxes: np.ndarray, gt: ClassGroundTruth
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (detection, GT object of the same image) pairs and their IoU, without Python loops."""
    counts = gt.count[det_image]
    total = int(counts.sum())
    det_idx = np.repeat(np.arange(det_image.shape[0]), counts)
    offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    gt_idx = np.repeat(gt.start[det_image], counts) + offsets
    return det_idx, gt_idx, voc_iou(det_boxes[det_idx], gt.boxes[gt_idx])
