"""The report on outputs of the real upstream stages: BCCD ground truth, the evaluation stage's
metrics/classification JSON and the parse stage's loss.csv writer, in the engine's summary format.

This checks the contract between stages, not just hand-written files."""
from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest

from harness.labels import LabelMap
from harness.report import build_report

voc = pytest.importorskip("harness.data.voc")
evaluation = pytest.importorskip("harness.evaluation")
classification = pytest.importorskip("harness.evaluation.classification")
detections_io = pytest.importorskip("harness.evaluation.detections")
caffe_log = pytest.importorskip("harness.parse.caffe_log")
from harness.core.types import Progress  # noqa: E402

LABELS = LabelMap.from_names(["Platelets", "RBC", "WBC"])


def _jittered_detections(images, rng, hit_rate=0.85):
    records = []
    for image in images:
        for obj in image.objects:
            if rng.random() < hit_rate:
                box = np.array([obj.xmin, obj.ymin, obj.xmax, obj.ymax]) + rng.normal(0, 3, 4)
                records.append({"image_id": image.image_id, "class": obj.name,
                                "score": float(rng.uniform(0.3, 1.0)), "bbox": box.round(1).tolist()})
        x, y = rng.uniform(1, 500), rng.uniform(1, 350)
        records.append({"image_id": image.image_id, "class": str(rng.choice(LABELS.names)),
                        "score": float(rng.uniform(0.0, 0.6)), "bbox": [x, y, x + 60, y + 60]})
    return records


def _single_cell_images(images):
    """One WBC per image: the Fig 10 classification setting on BCCD."""
    singles = []
    for image in images:
        wbc = [o for o in image.objects if o.name == "WBC"]
        if wbc:
            singles.append(dataclasses.replace(image, objects=wbc[:1]))
    return singles


def _write_json(path, data):
    path.write_text(json.dumps(data, indent=2, default=str))
    return path.name


def _experiment_dir(run_dir, name, bccd_root, seed):
    model_dir = run_dir / "models" / name
    model_dir.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    gt = voc.load_voc(bccd_root, image_set="test", labelmap=LABELS).images
    dets_path = model_dir / "detections.json"
    dets_path.write_text(json.dumps(_jittered_detections(gt, rng)))
    dets = detections_io.read_detections(dets_path, class_names=LABELS.names)
    metrics = {p: evaluation.evaluate_detections(gt, dets, LABELS, protocol=p) for p in ("voc07", "voc12")}
    names = {p: _write_json(model_dir / f"metrics_{p}.json", m) for p, m in metrics.items()}
    singles = _single_cell_images(gt)
    cls_path = model_dir / "cls_detections.json"
    cls_path.write_text(json.dumps(_jittered_detections(singles, rng, hit_rate=0.7)))
    cls = classification.classification_report(
        singles, detections_io.read_detections(cls_path, class_names=LABELS.names), LABELS)
    steps = [Progress(i, 50.0 / i + 1.0, 40.0 / i + 2.0, 0.001, 1.5 * i) for i in range(1, 31)]
    caffe_log.write_loss_csv(steps, model_dir / "loss.csv")
    timing = {"device": "CPU", "backend": "darknet (Debian, 1 thread)", "n_images": 10, "warmup": 2,
              "median_ms": 512.0, "p90_ms": 530.0}
    summary = {"experiment": name, "framework": "darknet", "model": "yolov3-tiny", "size": 416,
               "profile": "smoke", "comparable_with_paper": False, "status": "ok", "message": "",
               "train": {"iterations": 30, "seconds": 45.0, "loss_csv": "loss.csv", "weights": None},
               "metrics": names, "classification": _write_json(model_dir / "classification.json", cls),
               "timing": _write_json(model_dir / "timing.json", timing)}
    _write_json(model_dir / "summary.json", summary)
    return metrics, cls


def test_report_on_real_stage_outputs(bccd_root, tmp_path):
    run_dir = tmp_path / "run"
    metrics, cls = _experiment_dir(run_dir, "yolov3-tiny_416", bccd_root, seed=5)
    check_metrics, _ = _experiment_dir(run_dir, "learning-check_yolov3-tiny_224", bccd_root, seed=6)
    interrupted = run_dir / "models" / "yolov3_608"
    interrupted.mkdir()
    _write_json(interrupted / "summary.json", {"experiment": "yolov3_608", "framework": "darknet",
                                                "profile": "smoke", "status": "running", "message": ""})
    outputs = build_report(run_dir)

    with outputs["table1"].open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    tiny = {r["row"]: r for r in rows if r["experiment"] == "yolov3-tiny_416"}
    for protocol in ("voc07", "voc12"):
        assert float(tiny["mAP"][f"ours_{protocol}_pct"]) == pytest.approx(metrics[protocol]["map"] * 100, abs=1e-7)
        for name in LABELS.names:
            assert float(tiny[name][f"ours_{protocol}_pct"]) == pytest.approx(
                metrics[protocol]["classes"][name]["ap"] * 100, abs=1e-7)
    # a pipeline check: the paper's number is shown, no difference is computed
    assert tiny["mAP"]["not_comparable_because"] == "pipeline check: smoke profile, 30 iterations"
    assert float(tiny["mAP"]["paper_pct"]) == pytest.approx(77.2)                 # Table 1, YOLOv3-tiny 416
    assert tiny["mAP"]["diff_voc07_pp"] == "" and tiny["mAP"]["diff_voc12_pp"] == ""
    check = {r["row"]: r for r in rows if r["experiment"] == "learning-check_yolov3-tiny_224"}
    assert check["mAP"]["not_comparable_because"] == "not a paper experiment"
    assert check["mAP"]["paper_note"] == "—"
    assert float(check["mAP"]["ours_voc12_pct"]) == pytest.approx(check_metrics["voc12"]["map"] * 100, abs=1e-7)
    running = [r for r in rows if r["experiment"] == "yolov3_608"]
    assert running and running[0]["status"] == "running"

    md = outputs["md"].read_text()
    assert "status 'running' — the experiment never finished" in md
    fig10_section = md.split("## Fig 10")[1].split("## Figures")[0]
    accuracy_line = next(l for l in fig10_section.splitlines() if l.startswith("| yolov3-tiny_416 | smoke | "))
    assert f"{cls['mean_accuracy'] * 100:.2f}" in accuracy_line
    assert accuracy_line.rstrip().endswith("| — | — |")                  # Fig 10 has no tiny model; no Δ
    assert "- present: mean AP over the scored classes with at least one" in md
    assert {"fig7", "fig8_yolov3-tiny_416", "fig10_yolov3-tiny_416"} <= set(outputs)
