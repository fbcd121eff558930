"""The coco protocol equals pycocotools' COCOeval (bbox, area 'all', maxDets 100) on the same boxes."""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest

from harness.data.annotations import Box, ImageAnnotation
from harness.evaluation import evaluate_detections
from harness.evaluation.detections import Detections
from harness.labels import LabelMap

pytest.importorskip("pycocotools")
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402


def to_coco_box(box) -> list[float]:
    """VOC inclusive 1-based [xmin, ymin, xmax, ymax] -> COCO [x, y, w, h] (no +1 there).

    Inverted boxes (Darknet writes them for boxes off the image) become zero-sized: with a
    negative area pycocotools would drop them as "outside the area range" instead of counting
    the false positive that we (and the VOC devkit) count.
    """
    xmin, ymin, xmax, ymax = box
    return [xmin - 1, ymin - 1, max(xmax - xmin + 1, 0.0), max(ymax - ymin + 1, 0.0)]


def pycocotools_per_class(images, records, labelmap) -> tuple[dict[str, float], dict[str, float]]:
    """AP@[.5:.95] and AP@.5 per class from pycocotools, for classes with ground truth."""
    image_ids = {im.image_id: k + 1 for k, im in enumerate(images)}
    annotations = []
    for im in images:
        for o in im.objects:
            x, y, w, h = to_coco_box((o.xmin, o.ymin, o.xmax, o.ymax))
            annotations.append({"id": len(annotations) + 1, "image_id": image_ids[im.image_id],
                                "category_id": labelmap.index(o.name) + 1, "bbox": [x, y, w, h],
                                "area": w * h, "iscrowd": 0})
    coco_gt = COCO()
    coco_gt.dataset = {
        "images": [{"id": image_ids[im.image_id], "width": im.width, "height": im.height} for im in images],
        "annotations": annotations,
        "categories": [{"id": k + 1, "name": n} for k, n in enumerate(labelmap.names)],
    }
    results = [{"image_id": image_ids[r["image_id"]], "category_id": labelmap.index(r["class"]) + 1,
                "score": r["score"], "bbox": to_coco_box(r["bbox"])} for r in records]
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(results)
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.evaluate()
        ev.accumulate()
    precision = ev.eval["precision"][:, :, :, 0, -1]  # T, R, K at area 'all', maxDets 100
    ap, ap50 = {}, {}
    for k, name in enumerate(labelmap.names):
        if (precision[:, :, k] > -1).all():
            ap[name] = float(precision[:, :, k].mean())
            ap50[name] = float(precision[0, :, k].mean())
    return ap, ap50


def noisy_detections(images, labelmap, seed, per_object=(0, 3), background=(0, 10), wrong_class=0.15):
    rng = np.random.default_rng(seed)
    records = []
    for im in images:
        for o in im.objects:
            for _ in range(rng.integers(*per_object)):
                j = rng.normal(0, 8, 4)
                b = [o.xmin + j[0], o.ymin + j[1], o.xmax + j[2], o.ymax + j[3]]
                b = [min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]), max(b[1], b[3])]
                name = o.name if rng.random() > wrong_class else str(rng.choice(labelmap.names))
                records.append({"image_id": im.image_id, "class": name, "score": float(rng.random()), "bbox": b})
        for _ in range(rng.integers(*background)):
            x, y = rng.uniform(1, im.width - 20), rng.uniform(1, im.height - 20)
            w, h = rng.uniform(10, 150, 2)
            records.append({"image_id": im.image_id, "class": str(rng.choice(labelmap.names)),
                            "score": float(rng.random()), "bbox": [x, y, min(x + w, im.width), min(y + h, im.height)]})
    return records


def assert_same_as_pycocotools(images, records, labelmap):
    ours = evaluate_detections(images, Detections.from_records(records), labelmap, "coco")
    ap, ap50 = pycocotools_per_class(images, records, labelmap)
    assert ap, "no class with ground truth: the comparison would be empty"
    for name in labelmap.names:
        if name in ap:
            assert ours["classes"][name]["ap"] == pytest.approx(ap[name], abs=1e-9), name
            assert ours["classes"][name]["ap50"] == pytest.approx(ap50[name], abs=1e-9), name
        else:
            assert ours["classes"][name]["ap"] is None
    assert ours["map"] == pytest.approx(np.mean(list(ap.values())), abs=1e-9)
    return ours


@pytest.mark.parametrize("seed", [0, 1])
def test_equals_pycocotools_on_bccd(bccd_root, seed):
    from harness.data.voc import load_voc

    dataset = load_voc(bccd_root, "test")
    records = noisy_detections(dataset.images, dataset.labelmap, seed)
    ours = assert_same_as_pycocotools(dataset.images, records, dataset.labelmap)
    assert 0.05 < ours["map"] < 0.95  # a non-trivial case, not all-or-nothing


def test_equals_pycocotools_beyond_100_detections_per_image():
    labelmap = LabelMap.from_names(["A", "B"])
    rng = np.random.default_rng(7)
    images = []
    for k in range(12):
        objs = []
        for _ in range(rng.integers(1, 25)):
            x, y = rng.integers(1, 560), rng.integers(1, 400)
            w, h = rng.integers(10, 80, 2)
            objs.append(Box(str(rng.choice(["A", "B"])), float(x), float(y), float(x + w), float(y + h)))
        images.append(ImageAnnotation(f"img{k}", Path(f"img{k}.jpg"), 640, 480, objs))
    records = noisy_detections(images, labelmap, seed=8, per_object=(2, 6), background=(80, 160), wrong_class=0.3)
    per_image_class = {}
    for r in records:
        per_image_class[(r["image_id"], r["class"])] = per_image_class.get((r["image_id"], r["class"]), 0) + 1
    assert max(per_image_class.values()) > 100  # maxDets truncation is exercised
    ours = assert_same_as_pycocotools(images, records, labelmap)
    assert ours["warnings"]["beyond_max_dets"]


def test_equals_pycocotools_with_integer_boxes_and_exact_hits():
    # SSD writes integer pixels; exact hits make many IoUs land exactly on the thresholds' edges.
    labelmap = LabelMap.from_names(["A"])
    images = [ImageAnnotation("a", Path("a.jpg"), 100, 100, [Box("A", 1, 1, 20, 20), Box("A", 11, 1, 30, 20)]),
              ImageAnnotation("b", Path("b.jpg"), 100, 100, [Box("A", 5, 5, 44, 44)])]
    records = [
        {"image_id": "a", "class": "A", "score": 0.9, "bbox": [1, 1, 20, 20]},
        {"image_id": "a", "class": "A", "score": 0.8, "bbox": [6, 1, 25, 20]},
        {"image_id": "a", "class": "A", "score": 0.7, "bbox": [11, 1, 30, 20]},
        {"image_id": "b", "class": "A", "score": 0.85, "bbox": [5, 5, 44, 40]},
        {"image_id": "b", "class": "A", "score": 0.1, "bbox": [5, 5, 44, 44]},
    ]
    assert_same_as_pycocotools(images, records, labelmap)
