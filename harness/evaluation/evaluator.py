"""``evaluate_detections``: one evaluator, one metrics.json, whichever framework made the boxes.

mAP is the mean AP over the label map's *scored* classes. ``mean_over="present"`` (default)
averages the classes with at least one non-difficult object (``npos > 0``): a class without
objects has an undefined AP (``null``), not zero. ``mean_over="all"`` averages every scored
class with those counted as 0, the rule of Caffe's ``DetectionEvaluate`` (Solver::TestDetection
divides by the number of labels) and of AlexeyAB Darknet's ``detector map``, so either
framework's own number can be reproduced. Unscored classes (the paper's NRBC, gPLT, SM,
Artefact) get their AP reported with ``"scored": false``. The ``alexeyab`` protocol is AlexeyAB
Darknet's ``detector map`` (harness/evaluation/alexeyab.py): its ground truth, matching and
``-points`` rule, and its mean over every class of the label map (``mean_over="network"``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Callable

import numpy as np

from harness.data.annotations import ImageAnnotation
from harness.evaluation import alexeyab, coco, voc
from harness.evaluation.detections import ClassDetections, Detections
from harness.evaluation.ground_truth import GroundTruth, build_ground_truth
from harness.evaluation.protocols import UnknownProtocolError
from harness.evaluation.protocols import protocol as get_protocol
from harness.labels import LabelMap

MEAN_OVER = {
    "network": "mean AP over every class of the label map, scored or not, a class without objects as 0 "
    "(AlexeyAB Darknet 'detector map', which divides by the network's classes; the alexeyab protocol's rule)",
    "present": "mean AP over the scored classes with at least one non-difficult ground-truth object",
    "all": "mean AP over all scored classes; a class without ground-truth objects counts as AP 0 "
    "(Caffe DetectionEvaluate / Darknet 'detector map' rule)",
}
PR_MAX_POINTS = 200
UNKNOWN_ID_EXAMPLES = 5


class EvaluationError(ValueError):
    """Detections that do not fit the ground truth / label map (unknown class, unknown image)."""


class UnknownProtocol(EvaluationError, UnknownProtocolError):
    """A protocol that is not registered in harness.evaluation.protocols."""


def evaluate_detections(
    gt: Sequence[ImageAnnotation],
    dets: Detections,
    labelmap: LabelMap,
    protocol: str = "voc07",
    iou: float = 0.5,
    strict: bool = False,
    mean_over: str = "present",
    points: int = 0,
) -> dict:
    """Score ``dets`` against ``gt``; returns the metrics.json dict (see docs/evaluation.md).

    Unknown class names always raise. Detections on image ids that are not in ``gt`` raise
    with ``strict=True``; otherwise they are left out and counted under ``warnings``.
    ``mean_over`` ("present" | "all") is the mean-over-classes rule, see the module docstring; the
    ``alexeyab`` protocol always uses its own ("network") and ``points`` (detector map's ``-points``:
    0 its area under the curve, 11 VOC2007's 11 points, 101 COCO-style).
    """
    try:
        entry = get_protocol(protocol)
    except UnknownProtocolError as exc:
        raise UnknownProtocol(str(exc)) from None
    if entry.mean_over is not None:
        mean_over = entry.mean_over
    if entry.points and (points < 0 or points == 1):
        raise EvaluationError(f"points must be 0 (area under the curve) or >= 2, got {points}")
    truth_rule = entry.ground_truth()
    if truth_rule is not None:
        gt = truth_rule(gt, labelmap)
    if mean_over not in MEAN_OVER:
        raise EvaluationError(f"unknown mean-over rule {mean_over!r}; choose one of {', '.join(MEAN_OVER)}")
    if not 0.0 < iou <= 1.0:
        raise EvaluationError(f"IoU threshold must be in (0, 1], got {iou}")
    coco_range = entry.iou_rule == "coco-range"
    if coco_range and iou != 0.5:
        raise EvaluationError(f"the {protocol} protocol averages IoU 0.50:0.95; an IoU of {iou} does not apply")
    check_classes(dets, labelmap)
    truth = build_ground_truth(gt, labelmap.names)
    warnings = _reader_warnings(dets, truth)
    classes, pr = {}, {}
    unknown: dict[str, int] = {}
    score_class = entry.score_class()
    for name in labelmap.names:
        image_index, scores, boxes = _resolve_images(dets[name], truth, unknown)
        classes[name], pr[name] = score_class(image_index, scores, boxes, truth, name, iou, points, warnings)
        classes[name]["scored"] = name in labelmap.scored
    _handle_unknown_images(unknown, strict, warnings)
    _warn_missing_detections(dets, labelmap, classes, warnings)
    map_classes = _map_classes(labelmap, classes, mean_over)
    return {
        "protocol": protocol,
        "iou": None if coco_range else float(iou),
        "iou_thresholds": coco.IOU_THRESHOLDS.round(2).tolist() if coco_range else [float(iou)],
        "map": float(np.mean([classes[n]["ap"] or 0.0 for n in map_classes])) if map_classes else None,
        "map_classes": map_classes,
        "mean_over": mean_over,
        "mean_rule": MEAN_OVER[mean_over],
        **({"points": points} if entry.points else {}),
        "n_images": len(truth.image_ids),
        "n_detections": int(sum(c["n_det"] for c in classes.values())),
        "classes": classes,
        "pr": pr,
        "warnings": warnings,
    }


def _map_classes(labelmap: LabelMap, classes: dict, mean_over: str) -> list[str]:
    """The classes the mAP averages: see MEAN_OVER (``ap`` null counts as 0 under "all")."""
    if mean_over == "network":
        return list(labelmap.names)
    if mean_over == "all":
        return list(labelmap.scored_names)
    return [n for n in labelmap.scored_names if classes[n]["npos"] > 0]


def _warn_missing_detections(dets: Detections, labelmap: LabelMap, classes: dict, warnings: dict) -> None:
    """A scored class with objects but nothing detected scores AP 0: say why, since a missing
    file (wrong prefix, crashed writer) and a model that found nothing look the same in the mAP."""
    if not len(dets):
        warnings["no_detections"] = (
            f"the detection input holds no detections at all "
            f"({', '.join(dets.sources[:3]) or '<detections>'}); every AP is 0"
        )
    per_class_files = bool(dets.class_files)
    empty = {}
    for name in labelmap.scored_names:
        if classes[name]["npos"] == 0 or len(dets[name]):
            continue
        if per_class_files and name not in dets.class_files:
            empty[name] = "no detection file"
        else:
            empty[name] = f"no detections in {dets.class_files[name]}" if name in dets.class_files else "no detections"
    if empty:
        warnings["classes_without_detections"] = empty


def check_classes(dets: Detections, labelmap: LabelMap) -> None:
    unknown = [n for n in dets.class_names if n not in labelmap.names]
    if unknown:
        sources = ", ".join(dets.sources[:3]) or "<detections>"
        raise EvaluationError(
            f"detections for class(es) not in the label map: {', '.join(unknown)} "
            f"(label map: {', '.join(labelmap.names)}; from {sources})"
        )


def _reader_warnings(dets: Detections, truth: GroundTruth) -> dict:
    warnings: dict = {}
    if dets.skipped:
        warnings["skipped_detections"] = dets.skipped
    if dets.flagged:
        warnings["flagged_detections"] = dets.flagged
    if truth.outside_labelmap:
        warnings["gt_objects_outside_labelmap"] = truth.outside_labelmap
    return warnings


def _resolve_images(d: ClassDetections, truth: GroundTruth, unknown: dict[str, int]):
    """Map image ids to GT indices (a dict lookup per distinct id, not per detection)."""
    if not len(d):
        return np.empty(0, dtype=np.int64), d.scores, d.boxes
    ids, inverse = np.unique(d.image_ids, return_inverse=True)
    lookup = np.array([truth.index_of.get(i, -1) for i in ids.tolist()], dtype=np.int64)
    image_index = lookup[inverse]
    known = image_index >= 0
    per_id = np.bincount(inverse, minlength=ids.size)
    for i, n in zip(ids[lookup < 0].tolist(), per_id[lookup < 0].tolist()):
        unknown[i] = unknown.get(i, 0) + n
    return image_index[known], d.scores[known], d.boxes[known]


def _handle_unknown_images(unknown: dict[str, int], strict: bool, warnings: dict) -> None:
    if not unknown:
        return
    examples = sorted(unknown)[:UNKNOWN_ID_EXAMPLES]
    if strict:
        raise EvaluationError(
            f"{len(unknown)} image id(s) in the detections are not in the ground truth, e.g. {examples}"
        )
    warnings["unknown_image_ids"] = {
        "images": len(unknown),
        "detections": sum(unknown.values()),
        "examples": examples,
        "action": "left out of the evaluation",
    }


# The registered protocols' per-class scorers (harness.evaluation.protocols): one signature,
# (image_index, scores, boxes, truth, name, iou, points, warnings) -> (class entry, PR curve).


def score_voc07(image_index, scores, boxes, truth: GroundTruth, name: str, iou: float, points: int, warnings: dict):
    return _voc_class(image_index, scores, boxes, truth, name, voc.ap_voc07, iou)


def score_voc12(image_index, scores, boxes, truth: GroundTruth, name: str, iou: float, points: int, warnings: dict):
    return _voc_class(image_index, scores, boxes, truth, name, voc.ap_voc12, iou)


def score_alexeyab(image_index, scores, boxes, truth: GroundTruth, name: str, iou: float, points: int, warnings: dict):
    return _alexeyab_class(image_index, scores, boxes, truth, name, iou, points)


def score_coco(image_index, scores, boxes, truth: GroundTruth, name: str, iou: float, points: int, warnings: dict):
    return _coco_class(image_index, scores, boxes, truth, name, warnings)


def _voc_class(image_index, scores, boxes, truth: GroundTruth, name: str, ap_fn: Callable, iou: float):
    matches = voc.match_voc(image_index, scores, boxes, truth.by_class[name], iou)
    recall, precision = voc.precision_recall(matches)
    ap = ap_fn(recall, precision) if matches.npos > 0 else None
    entry = _counts(ap, matches.npos, matches.tp, matches.fp, recall)
    entry["n_ignored_difficult"] = matches.n_ignored
    return entry, pr_curve(recall, precision, matches.scores, matches.tp)


def _alexeyab_class(image_index, scores, boxes, truth: GroundTruth, name: str, iou: float, points: int):
    """detector map's matching and AP; a class without objects scores 0 (it prints 0.00 %)."""
    matches = alexeyab.match_alexeyab(image_index, scores, boxes, truth.by_class[name], iou)
    recall, precision = voc.precision_recall(matches)
    entry = _counts(alexeyab.ap_alexeyab(recall, precision, points), matches.npos, matches.tp, matches.fp, recall)
    return entry, pr_curve(recall, precision, matches.scores, matches.tp)


def _coco_class(image_index, scores, boxes, truth: GroundTruth, name: str, warnings: dict):
    res = coco.evaluate_class_coco(image_index, scores, boxes, truth.by_class[name])
    ap = float(res.ap_per_iou.mean()) if res.npos > 0 else None
    tp50, fp50 = res.tp[0], res.fp[0]
    keep = tp50 | fp50
    ctp = np.cumsum(tp50[keep], dtype=np.float64)
    recall = ctp / res.npos if res.npos else np.zeros_like(ctp)
    precision = ctp / np.maximum(np.arange(1, ctp.size + 1), 1)
    entry = _counts(ap, res.npos, tp50, fp50, recall)
    if res.npos > 0:
        entry["ap50"] = float(res.ap_per_iou[0])
        entry["ap75"] = float(res.ap_per_iou[5])
    if res.n_truncated:
        warnings.setdefault("beyond_max_dets", {})[name] = res.n_truncated
    return entry, pr_curve(recall, precision, res.scores[keep], tp50[keep])


def _counts(ap, npos: int, tp: np.ndarray, fp: np.ndarray, recall: np.ndarray) -> dict:
    return {
        "ap": None if ap is None or math.isnan(ap) else float(ap),
        "npos": int(npos),
        "tp": int(tp.sum()),
        "fp": int(fp.sum()),
        "n_det": int(tp.sum() + fp.sum()),
        "recall": float(recall[-1]) if recall.size and npos else 0.0,
    }


def pr_curve(
    recall: np.ndarray, precision: np.ndarray, scores: np.ndarray, tp: np.ndarray, max_points: int = PR_MAX_POINTS
) -> dict:
    """Raw PR points at every true positive (where recall steps) plus the last detection,
    thinned evenly to at most ``max_points``; scores let a reader pick an operating point."""
    if recall.size == 0:
        return {"recall": [], "precision": [], "score": []}
    points = np.flatnonzero(tp)
    points = np.union1d(points, [recall.size - 1])
    if points.size > max_points:
        points = points[np.unique(np.linspace(0, points.size - 1, max_points).round().astype(int))]
    return {
        "recall": np.round(recall[points], 6).tolist(),
        "precision": np.round(precision[points], 6).tolist(),
        "score": np.round(scores[points], 6).tolist(),
    }
