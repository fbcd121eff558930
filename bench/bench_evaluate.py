"""Evaluation speed: harness evaluator vs pycocotools (and faster-coco-eval) on the same input.

1,120 images x 15 classes (the paper's test-set size and label count), ~5 objects and ~100
detections per image (most near objects, the rest background). Prints seconds per protocol.

Like for like: the COCO comparison averages the same 15 classes on both sides, gives the COCO
tools the one area range ("all") and one maxDets (100) that the harness computes (their default
is 4 area ranges x 3 maxDets, 12x the work), and times both from the same detection records
(``Detections.from_records`` vs ``loadRes``) to ``mAP``; repeats are interleaved.

    python bench/bench_evaluate.py [--images 1120] [--repeat 3]
    (pip install faster-coco-eval, or .[bench], to include it)
"""
from __future__ import annotations

import argparse
import contextlib
import io
import time
from pathlib import Path

import _common  # first: puts the repository on sys.path
import numpy as np

from harness.data.annotations import Box, ImageAnnotation
from harness.evaluation import evaluate_detections
from harness.evaluation.detections import Detections
from harness.labels import LabelMap


def synthetic(n_images: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    labelmap = LabelMap.paper()
    names = labelmap.names
    images, records = [], []
    for k in range(n_images):
        image_id = f"img{k:05d}"
        objects = []
        for _ in range(rng.poisson(5)):
            x, y = rng.uniform(1, 560), rng.uniform(1, 400)
            w, h = rng.uniform(30, 80, 2)
            objects.append(Box(str(rng.choice(names)), x, y, min(x + w, 640), min(y + h, 480),
                               difficult=bool(rng.random() < 0.05)))
        images.append(ImageAnnotation(image_id, Path(f"{image_id}.jpg"), 640, 480, objects))
        n_det = rng.poisson(100)
        near = min(n_det, 6 * len(objects))
        for i in range(n_det):
            if i < near:
                o = objects[i % len(objects)]
                j = rng.normal(0, 6, 4)
                box = [o.xmin + j[0], o.ymin + j[1], o.xmax + j[2], o.ymax + j[3]]
                name = o.name if rng.random() < 0.6 else str(rng.choice(names))
            else:
                x, y = rng.uniform(1, 560), rng.uniform(1, 400)
                w, h = rng.uniform(20, 90, 2)
                box = [x, y, x + w, y + h]
                name = str(rng.choice(names))
            box = [min(box[0], box[2]), min(box[1], box[3]), max(box[0], box[2]), max(box[1], box[3])]
            records.append({"image_id": image_id, "class": name, "score": float(rng.random()), "bbox": box})
    return images, records, labelmap


def timed(fn, repeat: int) -> tuple[float, object]:
    return _common.best_of(fn, repeat)


def coco_tool_map(images, records, labelmap, tool: str) -> float:
    """mAP@[.5:.95] from pycocotools or faster-coco-eval, restricted to area "all" and maxDets 100."""
    if tool == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    else:
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as COCOeval

    ids = {im.image_id: k + 1 for k, im in enumerate(images)}
    anns = []
    for im in images:
        for o in im.objects:
            w, h = o.xmax - o.xmin + 1, o.ymax - o.ymin + 1
            anns.append({"id": len(anns) + 1, "image_id": ids[im.image_id], "category_id": labelmap.index(o.name) + 1,
                         "bbox": [o.xmin - 1, o.ymin - 1, w, h], "area": w * h, "iscrowd": 0})
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": [{"id": v} for v in ids.values()], "annotations": anns,
                      "categories": [{"id": k + 1, "name": n} for k, n in enumerate(labelmap.names)]}
        gt.createIndex()
        dt = gt.loadRes([{"image_id": ids[r["image_id"]], "category_id": labelmap.index(r["class"]) + 1,
                          "score": r["score"], "bbox": [r["bbox"][0] - 1, r["bbox"][1] - 1,
                                                        r["bbox"][2] - r["bbox"][0] + 1, r["bbox"][3] - r["bbox"][1] + 1]}
                         for r in records])
        ev = COCOeval(gt, dt, "bbox")
        ev.params.areaRng, ev.params.areaRngLbl, ev.params.maxDets = [[0, 1e10]], ["all"], [100]
        ev.evaluate()
        ev.accumulate()
    p = np.asarray(ev.eval["precision"])[:, :, :, 0, -1]
    return float(np.mean(p[p > -1]))


def available_tools(skip_pycocotools: bool) -> list[str]:
    import importlib.util

    tools = [] if skip_pycocotools else ["pycocotools"]
    if importlib.util.find_spec("faster_coco_eval") is not None:
        tools.append("faster-coco-eval")
    else:
        print("faster-coco-eval not installed: skipped (pip install faster-coco-eval)")
    return tools


def compare_with_coco_tools(images, records, labelmap, tools: list[str], repeat: int) -> None:
    """Interleaved runs (ours, tool A, tool B, ours, ...): best time of each, |delta mAP|."""
    plain = [ImageAnnotation(im.image_id, im.image_path, im.width, im.height,
                             [Box(o.name, o.xmin, o.ymin, o.xmax, o.ymax) for o in im.objects]) for im in images]
    all_scored = LabelMap.from_names(labelmap.names, scored=labelmap.names)   # the 15 classes COCO averages
    runners = {"harness": lambda: evaluate_detections(plain, Detections.from_records(records), all_scored,
                                                      "coco")["map"]}
    runners.update({tool: (lambda t=tool: coco_tool_map(plain, records, all_scored, t)) for tool in tools})
    best = {name: float("inf") for name in runners}
    maps: dict = {}
    for _ in range(repeat):
        for name, run in runners.items():
            start = time.perf_counter()
            maps[name] = run()
            best[name] = min(best[name], time.perf_counter() - start)
    print("COCO mAP@[.5:.95], 15 classes, area all, maxDets 100, from detection records (best of "
          f"{repeat} interleaved runs):")
    for name in runners:
        extra = "" if name == "harness" else (f"   |delta| vs harness {abs(maps[name] - maps['harness']):.1e}; "
                                              f"harness x{best[name] / best['harness']:.1f} faster")
        print(f"  {name:17s} {best[name]:6.2f} s   mAP {maps[name]:.6f}{extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1120)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-pycocotools", action="store_true")
    args = parser.parse_args()

    images, records, labelmap = synthetic(args.images)
    n_obj = sum(len(im.objects) for im in images)
    print(f"input: {len(images)} images, {len(labelmap)} classes, {n_obj} objects, {len(records)} detections")
    t_build, dets = timed(lambda: Detections.from_records(records), 1)
    print(f"Detections.from_records: {t_build:.2f} s")
    import tempfile

    from harness.evaluation.detections import read_detections, write_voc_detections

    with tempfile.TemporaryDirectory() as tmp:
        write_voc_detections(dets, tmp, class_names=labelmap.names)
        t_read, _ = timed(lambda: read_detections(tmp, class_names=labelmap.names), 1)
    print(f"read_detections (15 comp4_det_test_*.txt files): {t_read:.2f} s")
    for protocol in ("voc07", "voc12", "coco"):
        seconds, metrics = timed(lambda: evaluate_detections(images, dets, labelmap, protocol), args.repeat)
        print(f"harness {protocol:5s}: {seconds:6.2f} s   mAP {metrics['map']:.4f}")
    compare_with_coco_tools(images, records, labelmap, available_tools(args.skip_pycocotools), args.repeat)


if __name__ == "__main__":
    main()
