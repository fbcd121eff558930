"""Pascal VOC matching and AP (VOC2007 11-point, VOC2010+ area under the envelope).

Devkit conventions (VOCevaldet.m), kept exactly:
- detections of a class are ranked by score, highest first, over the whole test set
  (ties keep file order: a stable sort, where the devkit's order for ties is unspecified);
- each detection takes the GT object of its image with the highest IoU (first one on ties),
  matched or not, difficult or not;
- IoU >= threshold and the object is difficult: the detection is ignored (neither TP nor FP);
- IoU >= threshold and the object is not yet taken: TP, object taken; already taken: FP
  (duplicates are false positives); IoU below threshold: FP.

The greedy pass is vectorised: because each detection only ever looks at its own best object,
"first detection (in rank order) whose best object is j" is the TP for j — a ``np.unique``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.evaluation.ground_truth import ClassGroundTruth, pairs

# 11 recall points written as k/10 so that recall 0.3 (=3/10) reaches the 0.3 point; the
# py-faster-rcnn port's np.arange(0, 1.1, 0.1) gives 0.30000000000000004 and misses it.
VOC07_RECALL_POINTS = np.arange(11) / 10.0


@dataclass
class RankedMatches:
    """Per-class outcome in rank order, ignored (difficult) detections removed."""

    scores: np.ndarray
    tp: np.ndarray  # bool
    fp: np.ndarray  # bool
    npos: int
    n_ignored: int


def rank_order(scores: np.ndarray) -> np.ndarray:
    """Highest score first; ties keep input order."""
    return np.argsort(-scores, kind="stable")


def match_voc(
    det_image: np.ndarray, scores: np.ndarray, boxes: np.ndarray, gt: ClassGroundTruth, iou_threshold: float
) -> RankedMatches:
    order = rank_order(scores)
    det_image, scores, boxes = det_image[order], scores[order], boxes[order]
    best_gt, best_iou = _best_object(det_image, boxes, gt)
    above = best_iou >= iou_threshold
    ignored = np.zeros(scores.shape[0], dtype=bool)
    ignored[above] = gt.difficult[best_gt[above]]  # above threshold implies a best object exists
    candidates = np.flatnonzero(above & ~ignored)
    _, first = np.unique(best_gt[candidates], return_index=True)
    tp = np.zeros(scores.shape[0], dtype=bool)
    tp[candidates[first]] = True
    keep = ~ignored
    return RankedMatches(scores[keep], tp[keep], ~tp[keep], gt.npos, int(ignored.sum()))


def _best_object(det_image: np.ndarray, boxes: np.ndarray, gt: ClassGroundTruth) -> tuple[np.ndarray, np.ndarray]:
    """Index and IoU of each detection's highest-IoU object in its image (-1, -inf if none)."""
    n = det_image.shape[0]
    best_gt = np.full(n, -1, dtype=np.int64)
    best_iou = np.full(n, -np.inf)
    det_idx, gt_idx, iou = pairs(det_image, boxes, gt)
    if det_idx.size:
        order = np.lexsort((gt_idx, -iou, det_idx))
        dets_with_gt, first = np.unique(det_idx[order], return_index=True)
        best_gt[dets_with_gt] = gt_idx[order][first]
        best_iou[dets_with_gt] = iou[order][first]
    return best_gt, best_iou


def precision_recall(m: RankedMatches) -> tuple[np.ndarray, np.ndarray]:
    ctp = np.cumsum(m.tp, dtype=np.float64)
    cfp = np.cumsum(m.fp, dtype=np.float64)
    recall = ctp / m.npos if m.npos > 0 else np.zeros_like(ctp)
    precision = ctp / np.maximum(ctp + cfp, np.finfo(np.float64).eps)
    return recall, precision


def ap_voc07(recall: np.ndarray, precision: np.ndarray) -> float:
    """Mean over recall points t in {0, .1, …, 1} of the best precision at recall >= t (0 if none)."""
    if recall.size == 0:
        return 0.0
    envelope = np.maximum.accumulate(precision[::-1])[::-1]  # best precision at this rank or later
    first_reaching = np.searchsorted(recall, VOC07_RECALL_POINTS, side="left")  # recall is non-decreasing
    reached = first_reaching < recall.size
    values = np.where(reached, envelope[np.minimum(first_reaching, recall.size - 1)], 0.0)
    return float(values.mean())


def ap_voc12(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the monotone (right-to-left max) precision envelope, recall from 0 to 1."""
    if recall.size == 0:
        return 0.0
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[steps] - mrec[steps - 1]) * mpre[steps]))
