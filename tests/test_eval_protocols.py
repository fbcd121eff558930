"""VOC07 / VOC12 / COCO AP against values worked out by hand, and a plain-loop devkit reference."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from harness.data.annotations import Box, ImageAnnotation
from harness.evaluation import EvaluationError, evaluate_detections
from harness.evaluation.detections import Detections
from harness.labels import LabelMap

LABELS = LabelMap.from_names(["A", "B", "C"])


def image(image_id: str, *objects: Box) -> ImageAnnotation:
    return ImageAnnotation(image_id, Path(f"{image_id}.jpg"), 640, 480, list(objects))


def det(image_id: str, name: str, score: float, box) -> dict:
    return {"image_id": image_id, "class": name, "score": score, "bbox": list(box)}


def evaluate(gt, records, protocol, labelmap=LABELS, **kw):
    return evaluate_detections(gt, Detections.from_records(records), labelmap, protocol, **kw)


# --- one image, two objects: TP, duplicate (FP), TP, miss (FP) -------------------------------
DUP_GT = [image("i1", Box("A", 1, 1, 10, 10), Box("A", 101, 101, 150, 150))]
DUP_DETS = [
    det("i1", "A", 0.9, (1, 1, 10, 10)),        # TP on object 1
    det("i1", "A", 0.8, (1, 1, 10, 11)),        # duplicate of object 1 -> FP
    det("i1", "A", 0.7, (101, 101, 150, 150)),  # TP on object 2
    det("i1", "A", 0.6, (300, 300, 320, 320)),  # nothing there -> FP
]
# rank:      1    2    3    4
# recall:    .5   .5   1    1
# precision: 1    1/2  2/3  1/2


def test_voc07_duplicates_by_hand():
    m = evaluate(DUP_GT, DUP_DETS, "voc07")
    # recall points 0,.1,.2,.3,.4,.5 -> best precision 1; .6,.7,.8,.9,1 -> 2/3
    assert m["classes"]["A"]["ap"] == pytest.approx((6 * 1 + 5 * 2 / 3) / 11, abs=1e-12)
    assert (m["classes"]["A"]["tp"], m["classes"]["A"]["fp"], m["classes"]["A"]["npos"]) == (2, 2, 2)


def test_voc12_duplicates_by_hand():
    m = evaluate(DUP_GT, DUP_DETS, "voc12")
    # envelope: precision 1 on recall (0, .5], 2/3 on (.5, 1]
    assert m["classes"]["A"]["ap"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3, abs=1e-12)


# --- difficult objects are neither TP nor FP, and do not count as positives -------------------
DIFF_GT = [image("i1", Box("A", 1, 1, 10, 10), Box("A", 51, 51, 80, 80, difficult=True))]
DIFF_DETS = [
    det("i1", "A", 0.95, (51, 51, 80, 80)),  # on the difficult object: ignored
    det("i1", "A", 0.9, (51, 51, 80, 81)),   # again on it: still ignored (not a duplicate FP)
    det("i1", "A", 0.5, (1, 1, 10, 10)),     # TP
]


@pytest.mark.parametrize("protocol", ["voc07", "voc12"])
def test_difficult_is_ignored(protocol):
    a = evaluate(DIFF_GT, DIFF_DETS, protocol)["classes"]["A"]
    assert (a["ap"], a["npos"], a["tp"], a["fp"], a["n_ignored_difficult"]) == (1.0, 1, 1, 0, 2)


def test_difficult_counts_against_when_flag_is_off():
    gt = [image("i1", Box("A", 1, 1, 10, 10), Box("A", 51, 51, 80, 80))]
    a = evaluate(gt, DIFF_DETS, "voc12")["classes"]["A"]
    # TP, FP (duplicate), TP: recall .5 .5 1, precision 1 .5 2/3
    assert (a["npos"], a["tp"], a["fp"]) == (2, 2, 1)
    assert a["ap"] == pytest.approx(0.5 + 0.5 * 2 / 3)


# --- best-IoU object already taken: VOC says FP, COCO falls back to the next free object -------
TAKEN_GT = [image("i1", Box("A", 1, 1, 10, 10), Box("A", 4, 1, 13, 10))]
TAKEN_DETS = [
    det("i1", "A", 0.9, (1, 1, 10, 10)),  # IoU 1 with object 1
    det("i1", "A", 0.8, (2, 1, 11, 10)),  # IoU 90/110=.818 with object 1 (taken), 80/120=.667 with object 2
]


def test_voc_does_not_fall_back_to_second_best_object():
    m07 = evaluate(TAKEN_GT, TAKEN_DETS, "voc07")["classes"]["A"]
    m12 = evaluate(TAKEN_GT, TAKEN_DETS, "voc12")["classes"]["A"]
    # TP, FP: recall .5 .5, precision 1 .5
    assert (m07["tp"], m07["fp"]) == (1, 1)
    assert m07["ap"] == pytest.approx(6 / 11)
    assert m12["ap"] == pytest.approx(0.5)


def test_coco_by_hand():
    a = evaluate(TAKEN_GT, TAKEN_DETS, "coco")["classes"]["A"]
    # IoU thresholds .50 .55 .60 .65: second detection takes object 2 (IoU .667): AP 1.
    # .70 … .95 (6 thresholds): TP, FP -> precision 1 up to recall .5: 51 of 101 recall points.
    assert a["ap"] == pytest.approx((4 * 1 + 6 * 51 / 101) / 10, abs=1e-12)
    assert a["ap50"] == pytest.approx(1.0)
    assert a["ap75"] == pytest.approx(51 / 101)
    assert (a["tp"], a["fp"]) == (2, 0)  # counted at IoU .5


def test_iou_threshold_is_inclusive_and_uses_plus_one_widths():
    gt = [image("i1", Box("A", 1, 1, 10, 10))]  # 10x10 = 100 pixels
    # (1,1)-(10,5) is 10x5 = 50 pixels inside the object: IoU exactly 0.5 -> TP
    assert evaluate(gt, [det("i1", "A", 1.0, (1, 1, 10, 5))], "voc12")["classes"]["A"]["tp"] == 1
    # (1,1)-(10,4) is 40 pixels: IoU .4 -> FP
    assert evaluate(gt, [det("i1", "A", 1.0, (1, 1, 10, 4))], "voc12")["classes"]["A"]["fp"] == 1


def test_voc07_recall_point_exactly_reached():
    # 10 objects, 3 found: recall .1 .2 .3 at precision 1. Points 0, .1, .2, .3 -> 4/11.
    gt = [image(f"i{k}", Box("A", 1, 1, 10, 10)) for k in range(10)]
    dets = [det(f"i{k}", "A", 1 - k / 10, (1, 1, 10, 10)) for k in range(3)]
    assert evaluate(gt, dets, "voc07")["classes"]["A"]["ap"] == pytest.approx(4 / 11, abs=1e-12)
    assert evaluate(gt, dets, "voc12")["classes"]["A"]["ap"] == pytest.approx(0.3, abs=1e-12)


# --- empty classes and the mean -----------------------------------------------------------------
def test_empty_classes_and_scored_mean():
    labelmap = LabelMap.from_names(["A", "B", "C", "D"], scored=["A", "B", "C"])
    gt = [image("i1", Box("A", 1, 1, 10, 10), Box("B", 20, 20, 40, 40), Box("D", 50, 50, 60, 60))]
    records = [
        det("i1", "A", 0.9, (1, 1, 10, 10)),      # A: AP 1
        det("i1", "C", 0.9, (100, 100, 120, 120)),  # C: no objects -> AP undefined
        det("i1", "D", 0.9, (50, 50, 60, 60)),    # D: AP 1 but not scored
    ]                                              # B: objects but no detections -> AP 0
    m = evaluate(gt, records, "voc07", labelmap=labelmap)
    assert m["classes"]["A"]["ap"] == 1.0
    assert m["classes"]["B"]["ap"] == 0.0 and m["classes"]["B"]["npos"] == 1
    assert m["classes"]["C"]["ap"] is None and m["classes"]["C"]["fp"] == 1
    assert m["classes"]["D"]["ap"] == 1.0 and m["classes"]["D"]["scored"] is False
    assert m["map_classes"] == ["A", "B"]
    assert m["map"] == pytest.approx(0.5)


def test_no_scored_class_with_objects_gives_null_map():
    m = evaluate([image("i1")], [det("i1", "A", 0.5, (1, 1, 5, 5))], "voc12")
    assert m["map"] is None and m["map_classes"] == []


# --- bad input ----------------------------------------------------------------------------------
def test_unknown_class_is_an_error():
    with pytest.raises(EvaluationError, match="not in the label map: Z"):
        evaluate(DUP_GT, [det("i1", "Z", 0.5, (1, 1, 5, 5))], "voc07")


def test_unknown_image_ids_are_counted_or_refused():
    records = DUP_DETS + [det("ghost", "A", 0.99, (1, 1, 10, 10)), det("ghost", "B", 0.5, (1, 1, 10, 10))]
    m = evaluate(DUP_GT, records, "voc07")
    assert m["warnings"]["unknown_image_ids"]["images"] == 1
    assert m["warnings"]["unknown_image_ids"]["detections"] == 2
    assert m["classes"]["A"]["ap"] == pytest.approx(evaluate(DUP_GT, DUP_DETS, "voc07")["classes"]["A"]["ap"])
    with pytest.raises(EvaluationError, match="ghost"):
        evaluate(DUP_GT, records, "voc07", strict=True)


def test_bad_protocol_and_iou():
    with pytest.raises(EvaluationError, match="unknown protocol"):
        evaluate(DUP_GT, DUP_DETS, "voc10")
    with pytest.raises(EvaluationError, match="IoU threshold"):
        evaluate(DUP_GT, DUP_DETS, "voc07", iou=1.5)
    with pytest.raises(EvaluationError, match="0.50:0.95"):
        evaluate(DUP_GT, DUP_DETS, "coco", iou=0.7)


def test_reader_skips_are_reported():
    dets = Detections.from_records(DUP_DETS + [det("i1", "A", float("nan"), (1, 1, 2, 2))])
    m = evaluate_detections(DUP_GT, dets, LABELS, "voc07")
    assert m["warnings"]["skipped_detections"]["non-finite value"]["count"] == 1


def test_pr_curve_is_thinned_and_ends_at_last_detection():
    rng = np.random.default_rng(0)
    gt = [image(f"i{k}", Box("A", 1, 1, 50, 50)) for k in range(600)]
    records = [det(f"i{k}", "A", float(rng.random()), (1, 1, 50, 50 if rng.random() < 0.7 else 20)) for k in range(600)]
    m = evaluate(gt, records, "voc12")
    pr = m["pr"]["A"]
    assert len(pr["recall"]) == len(pr["precision"]) == len(pr["score"]) <= 200
    assert pr["recall"][-1] == pytest.approx(m["classes"]["A"]["recall"], abs=1e-6)
    assert np.all(np.diff(pr["recall"]) >= 0) and np.all(np.diff(pr["score"]) <= 0)


# --- a plain, loop-per-detection transcription of the devkit rules as a reference ---------------
def reference_voc_ap(gt, records, name, iou_thr, use_07):
    objects = {im.image_id: [o for o in im.objects if o.name == name] for im in gt}
    taken = {k: [False] * len(v) for k, v in objects.items()}
    npos = sum(not o.difficult for v in objects.values() for o in v)
    mine = sorted((r for r in records if r["class"] == name), key=lambda r: -r["score"])
    tp, fp = [], []
    for r in mine:
        best, best_j = -math.inf, -1
        for j, o in enumerate(objects[r["image_id"]]):
            x0, y0, x1, y1 = r["bbox"]
            iw = min(x1, o.xmax) - max(x0, o.xmin) + 1
            ih = min(y1, o.ymax) - max(y0, o.ymin) + 1
            if iw > 0 and ih > 0:
                union = (x1 - x0 + 1) * (y1 - y0 + 1) + (o.xmax - o.xmin + 1) * (o.ymax - o.ymin + 1) - iw * ih
                if iw * ih / union > best:
                    best, best_j = iw * ih / union, j
        if best >= iou_thr:
            if objects[r["image_id"]][best_j].difficult:
                continue
            if not taken[r["image_id"]][best_j]:
                taken[r["image_id"]][best_j] = True
                tp.append(1), fp.append(0)
            else:
                tp.append(0), fp.append(1)
        else:
            tp.append(0), fp.append(1)
    ctp, cfp = np.cumsum(tp), np.cumsum(fp)
    rec = ctp / npos
    prec = ctp / np.maximum(ctp + cfp, 1e-300)
    if use_07:
        return sum(max([p for p, q in zip(prec, rec) if q >= t / 10] or [0]) for t in range(11)) / 11
    mrec, mpre = [0.0, *rec, 1.0], [0.0, *prec, 0.0]
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    return sum((mrec[i + 1] - mrec[i]) * mpre[i + 1] for i in range(len(mrec) - 1) if mrec[i + 1] != mrec[i])


def random_scene(seed, n_images=40):
    rng = np.random.default_rng(seed)
    gt, records = [], []
    for k in range(n_images):
        objs = []
        for _ in range(rng.integers(0, 6)):
            x, y = rng.integers(1, 500), rng.integers(1, 380)
            w, h = rng.integers(8, 120, 2)
            objs.append(Box(str(rng.choice(["A", "B", "C"])), x, y, x + w, y + h, difficult=bool(rng.random() < 0.15)))
        gt.append(image(f"im{k}", *objs))
        for o in objs:  # noisy hits and duplicates
            for _ in range(rng.integers(0, 3)):
                j = rng.normal(0, 6, 4)
                box = (o.xmin + j[0], o.ymin + j[1], o.xmax + j[2], o.ymax + j[3])
                box = (min(box[0], box[2]), min(box[1], box[3]), max(box[0], box[2]), max(box[1], box[3]))
                records.append(det(f"im{k}", o.name, float(rng.random()), box))
        for _ in range(rng.integers(0, 8)):  # background
            x, y = rng.uniform(1, 500), rng.uniform(1, 380)
            w, h = rng.uniform(5, 120, 2)
            records.append(det(f"im{k}", str(rng.choice(["A", "B", "C"])), float(rng.random()), (x, y, x + w, y + h)))
    return gt, records


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("protocol, iou", [("voc07", 0.5), ("voc12", 0.5), ("voc12", 0.7)])
def test_matches_plain_loop_reference(seed, protocol, iou):
    gt, records = random_scene(seed)
    m = evaluate(gt, records, protocol, iou=iou)
    for name in "ABC":
        expected = reference_voc_ap(gt, records, name, iou, protocol == "voc07")
        assert m["classes"][name]["ap"] == pytest.approx(expected, abs=1e-12), name
