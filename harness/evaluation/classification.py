"""The paper's classification test (Fig 10): is the top detection of a one-cell image right?

On every ground-truth image holding exactly one object, the highest-scoring detection of any
class (no IoU requirement, no score floor unless ``min_score`` is given) is the prediction;
an image without detections lands in the "no detection" column. Rows are the label map's
classes (true class), columns the label map's classes plus "no detection".

``mean_accuracy`` is the mean of per-class recall over the *scored* classes that have at least
one single-object image; ``mean_accuracy_all_classes`` takes every class present. Images with
zero or several objects are not used and are counted under ``skipped``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.data.annotations import ImageAnnotation
from harness.evaluation.detections import Detections
from harness.evaluation.evaluator import check_classes
from harness.labels import LabelMap

NO_DETECTION = "no detection"


def classification_report(
    gt: Sequence[ImageAnnotation], dets: Detections, labelmap: LabelMap, min_score: float = 0.0
) -> dict:
    """Confusion matrix of top-1 detections on single-object images; see module docstring."""
    check_classes(dets, labelmap)
    names = list(labelmap.names)
    single = {
        im.image_id: names.index(im.objects[0].name)
        for im in gt
        if len(im.objects) == 1 and im.objects[0].name in labelmap.names
    }
    skipped = _skipped_images(gt, labelmap)
    predicted = _top_class_per_image(dets, names, single, min_score)
    matrix = np.zeros((len(names), len(names) + 1), dtype=np.int64)
    for image_id, true_index in single.items():
        matrix[true_index, predicted.get(image_id, len(names))] += 1
    recall = _per_class_recall(matrix, names)
    scored = [recall[n] for n in labelmap.scored_names if n in recall]
    return {
        "classes": names,
        "columns": [*names, NO_DETECTION],
        "matrix": matrix.tolist(),
        "per_class_recall": recall,
        "mean_accuracy": float(np.mean(scored)) if scored else None,
        "mean_accuracy_all_classes": float(np.mean(list(recall.values()))) if recall else None,
        "n_images": len(single),
        "min_score": float(min_score),
        "skipped": skipped,
    }


def _skipped_images(gt: Sequence[ImageAnnotation], labelmap: LabelMap) -> dict:
    counts = {"no_object": 0, "several_objects": 0, "class_not_in_labelmap": 0}
    for im in gt:
        if not im.objects:
            counts["no_object"] += 1
        elif len(im.objects) > 1:
            counts["several_objects"] += 1
        elif im.objects[0].name not in labelmap.names:
            counts["class_not_in_labelmap"] += 1
    return counts


def _top_class_per_image(
    dets: Detections, names: list[str], wanted: dict[str, int], min_score: float
) -> dict[str, int]:
    """Image id -> class index of its best detection (ties: the earlier class in the label map)."""
    best_score: dict[str, float] = {}
    best_class: dict[str, int] = {}
    for class_index, name in enumerate(names):
        d = dets[name]
        if not len(d):
            continue
        top_ids, top_scores = _max_score_per_image(d.image_ids, d.scores, min_score)
        for image_id, score in zip(top_ids.tolist(), top_scores.tolist()):
            if image_id in wanted and score > best_score.get(image_id, -np.inf):
                best_score[image_id], best_class[image_id] = score, class_index
    return best_class


def _max_score_per_image(image_ids: np.ndarray, scores: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray]:
    keep = scores >= min_score
    ids, inverse = np.unique(image_ids[keep], return_inverse=True)
    top = np.full(ids.size, -np.inf)
    np.maximum.at(top, inverse, scores[keep])
    return ids, top


def _per_class_recall(matrix: np.ndarray, names: list[str]) -> dict[str, float]:
    totals = matrix.sum(axis=1)
    return {n: float(matrix[i, i] / totals[i]) for i, n in enumerate(names) if totals[i] > 0}
