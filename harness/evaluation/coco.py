"""COCO-style AP: mean over IoU 0.50:0.05:0.95 of the 101-recall-point interpolated precision.

Designed to give pycocotools' ``COCOeval`` (iouType "bbox", area range "all", maxDets 100)
numbers for the same boxes converted to COCO ``[xmin-1, ymin-1, w+1, h+1]``:
- per image and class, detections sorted by score (stable) and cut to the best ``max_dets``;
- each detection, in that order, takes the *unmatched* object with the highest IoU >= t
  (last one on ties, as COCOeval's scan does), preferring non-ignored objects;
- VOC "difficult" objects play COCO's ignore role: a detection matched to one is dropped from
  the ranking, and they do not count in the number of positives. (pycocotools only reaches
  "ignore" through iscrowd, which also changes the IoU; we keep the plain IoU.)
- per class the kept detections of all images are ranked by score (stable, image order first),
  precision = tp / (tp + fp + spacing(1)), made monotone, sampled at recall 0, .01, …, 1.

The greedy matching is inherently sequential within an image, so we step over the detection
*rank* (at most ``max_dets`` steps) and handle every image and IoU threshold at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.evaluation.ground_truth import ClassGroundTruth, pairs

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)
MAX_DETS = 100


@dataclass
class CocoClassResult:
    ap_per_iou: np.ndarray  # (T,)
    scores: np.ndarray  # kept detections, rank order
    tp: np.ndarray  # (T, N) bool
    fp: np.ndarray  # (T, N) bool
    npos: int
    n_truncated: int  # detections beyond max_dets per image


def evaluate_class_coco(
    det_image: np.ndarray,
    scores: np.ndarray,
    boxes: np.ndarray,
    gt: ClassGroundTruth,
    thresholds: np.ndarray = IOU_THRESHOLDS,
    max_dets: int = MAX_DETS,
) -> CocoClassResult:
    det_image, scores, boxes, rank, n_truncated = _top_per_image(det_image, scores, boxes, max_dets)
    state = _match(det_image, boxes, rank, gt, thresholds)  # (T, N): 1 tp, 0 fp, -1 ignored
    order = np.argsort(-scores, kind="stable")  # input is image-major, so ties keep image order
    state, scores = state[:, order], scores[order]
    tp, fp = state == 1, state == 0
    npos = gt.npos
    ap = np.array([_ap_101(tp[t], fp[t], npos) for t in range(len(thresholds))])
    return CocoClassResult(ap, scores, tp, fp, npos, n_truncated)


def _top_per_image(det_image, scores, boxes, max_dets):
    """Sort by (image, -score) stably and keep the first ``max_dets`` of each image."""
    order = np.lexsort((-scores, det_image))
    det_image, scores, boxes = det_image[order], scores[order], boxes[order]
    group_start = np.flatnonzero(np.r_[True, det_image[1:] != det_image[:-1]]) if det_image.size else np.empty(0, int)
    sizes = np.diff(np.r_[group_start, det_image.size])
    rank = np.arange(det_image.size) - np.repeat(group_start, sizes)
    keep = rank < max_dets
    return det_image[keep], scores[keep], boxes[keep], rank[keep], int((~keep).sum())


def _match(det_image, boxes, rank, gt: ClassGroundTruth, thresholds) -> np.ndarray:
    """Greedy COCO matching for every image and threshold at once; returns (T, N) states."""
    n_thr, n = len(thresholds), det_image.size
    state = np.zeros((n_thr, n), dtype=np.int8)
    det_idx, gt_idx, iou = pairs(det_image, boxes, gt)
    if det_idx.size == 0:
        return state
    # Dense (image, rank, object) IoU table over images that have both detections and objects.
    images, img_slot = np.unique(det_image[det_idx], return_inverse=True)
    local_gt = gt_idx - gt.start[det_image[det_idx]]
    n_rank, n_obj = int(rank[det_idx].max()) + 1, int(gt.count[images].max())
    table = np.full((images.size, n_rank, n_obj), -1.0)
    table[img_slot, rank[det_idx], local_gt] = iou
    exists = np.arange(n_obj)[None, :] < gt.count[images][:, None]
    obj_index = np.minimum(gt.start[images][:, None] + np.arange(n_obj)[None, :], max(gt.boxes.shape[0] - 1, 0))
    ignored = exists & gt.difficult[obj_index]
    det_at = np.full((images.size, n_rank), -1, dtype=np.int64)
    det_at[img_slot, rank[det_idx]] = det_idx
    taken = np.zeros((n_thr, images.size, n_obj), dtype=bool)
    thr = np.minimum(thresholds, 1 - 1e-10)[:, None, None]
    for r in range(n_rank):
        _match_rank(table[:, r, :], det_at[:, r], exists, ignored, taken, thr, state)
    return state


def _match_rank(iou_r, dets, exists, ignored, taken, thr, state) -> None:
    """One greedy step: the rank-r detection of every image takes its best free object."""
    free = (iou_r[None] >= thr) & exists[None] & ~taken  # (T, G, M)
    obj_ok, hit_ok = _last_argmax(np.where(free & ~ignored[None], iou_r[None], -np.inf))
    obj_ig, hit_ig = _last_argmax(np.where(free & ignored[None], iou_r[None], -np.inf))
    obj = np.where(hit_ok, obj_ok, obj_ig)
    hit = hit_ok | hit_ig
    t_idx, g_idx = np.nonzero(hit)
    taken[t_idx, g_idx, obj[t_idx, g_idx]] = True
    present = dets >= 0
    outcome = np.where(hit_ok, 1, np.where(hit_ig, -1, 0)).astype(np.int8)  # (T, G)
    state[:, dets[present]] = outcome[:, present]


def _last_argmax(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the last maximum along the object axis, and whether it is finite."""
    m = values.shape[-1]
    idx = m - 1 - np.argmax(values[..., ::-1], axis=-1)
    best = np.take_along_axis(values, idx[..., None], axis=-1)[..., 0]
    return idx, np.isfinite(best)


def _ap_101(tp: np.ndarray, fp: np.ndarray, npos: int) -> float:
    if npos == 0:
        return float("nan")
    ctp = np.cumsum(tp, dtype=np.float64)
    cfp = np.cumsum(fp, dtype=np.float64)
    recall = ctp / npos
    precision = ctp / (ctp + cfp + np.spacing(1))
    if recall.size == 0:
        return 0.0
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    idx = np.searchsorted(recall, RECALL_POINTS, side="left")
    sampled = np.where(idx < recall.size, precision[np.minimum(idx, recall.size - 1)], 0.0)
    return float(sampled.mean())
