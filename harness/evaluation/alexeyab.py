"""AlexeyAB Darknet's ``detector map`` (src/detector.c ``validate_detector_map``, commit 59596d78) as a
protocol, so its own number can be reproduced from the detections it scores.

Where it differs from the VOC devkit (voc.py), each kept here exactly as detector map does it:
- ground truth is the YOLO label file (``cx cy w h`` normalised, 6 decimals), not the XML: boxes
  pass through :func:`harness.data.darknet.yolo_line` and back;
- no difficult objects (``difficult=`` in the .data is not used): every labelled object counts;
- IoU on continuous boxes (no inclusive-pixel ``+1``), detection boxes unclipped;
- a detection matches when IoU is *strictly* above the threshold (the devkit: ``>=``);
- ``points`` N > 0: mean over N recall points k/(N−1) of the best precision at recall ≥ the point
  (11 = VOC2007, 101 = COCO-style); 0 (its default): area under its precision envelope, walked
  from the last rank to the first (``avg_precision += Δrecall × max precision so far``);
- every class of the network counts in the mean, a class without objects as AP 0.
Detections are ranked by score over all classes with ``qsort``; ties keep input order here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from harness.data.annotations import ImageAnnotation
from harness.data.darknet import parse_yolo_labels, yolo_label_text
from harness.evaluation.ground_truth import ClassGroundTruth
from harness.evaluation.voc import RankedMatches, rank_order
from harness.labels import LabelMap


def label_file_truth(images: Sequence[ImageAnnotation], labelmap: LabelMap) -> list[ImageAnnotation]:
    """The ground truth ``detector map`` reads: each image's label file contents (rounded as written),
    every object non-difficult, objects outside the label map absent (they are not in label files)."""
    out = []
    for image in images:
        kept = replace(image, objects=[o for o in image.objects if o.name in labelmap.names])
        boxes = parse_yolo_labels(yolo_label_text(kept, labelmap), image.width, image.height, labelmap)
        out.append(replace(kept, objects=boxes))
    return out


def continuous_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of (N,4) corner boxes without the ``+1`` (box_iou of centre boxes in Darknet)."""
    iw = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    ih = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    inter = np.where((iw > 0) & (ih > 0), iw * ih, 0.0)
    union = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(inter > 0, inter / union, 0.0)


def match_alexeyab(
    det_image: np.ndarray, scores: np.ndarray, boxes: np.ndarray, gt: ClassGroundTruth, iou_threshold: float
) -> RankedMatches:
    """Each detection takes the object of its image with the highest IoU > threshold (first on ties);
    in rank order the first detection of an object is a TP, later ones and unmatched ones FPs."""
    order = rank_order(scores)
    det_image, scores, boxes = det_image[order], scores[order], boxes[order]
    best = np.full(scores.shape[0], -1, dtype=np.int64)
    for k in range(scores.shape[0]):
        start, count = gt.start[det_image[k]], gt.count[det_image[k]]
        if count == 0:
            continue
        ious = continuous_iou(np.repeat(boxes[k : k + 1], count, axis=0), gt.boxes[start : start + count])
        j = int(np.argmax(ious))
        if ious[j] > iou_threshold:
            best[k] = start + j
    tp = np.zeros(scores.shape[0], dtype=bool)
    matched = np.flatnonzero(best >= 0)
    _, first = np.unique(best[matched], return_index=True)
    tp[matched[first]] = True
    return RankedMatches(scores, tp, ~tp, int(gt.boxes.shape[0]), 0)


def ap_alexeyab(recall: np.ndarray, precision: np.ndarray, points: int) -> float:
    """AP as detector map computes it with ``-points points`` (see the module docstring)."""
    if recall.size == 0:
        return 0.0
    if points > 0:
        values = []
        for point in range(points):
            reached = recall >= point / (points - 1)
            values.append(float(precision[reached].max()) if reached.any() else 0.0)
        return float(np.mean(values))
    area, last_recall, last_precision = 0.0, float(recall[-1]), float(precision[-1])
    for rank in range(recall.size - 2, -1, -1):
        area += (last_recall - recall[rank]) * max(last_precision, precision[rank])
        last_recall, last_precision = float(recall[rank]), max(last_precision, float(precision[rank]))
    return area + last_recall * last_precision
