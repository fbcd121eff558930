"""A realistic run directory written by hand, as the engine/evaluation stages would leave it.

Other ``test_report_*`` modules import ``make_run``. The tests here check that the loader reads
what the factory wrote, and reports every missing/bad file by name.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from harness.labels import LabelMap
from harness.report.loading import ReportError, load_run, read_loss_csv

PAPER_CLASSES = list(LabelMap.paper().scored_names)        # 11 leukocyte classes
BCCD_CLASSES = ["RBC", "WBC", "Platelets"]


def pr_curve(rng: np.random.Generator, npos: int, n_det: int, quality: float) -> tuple[list, list, int, int]:
    """Recall/precision of a ranked detection list where earlier detections are likelier true."""
    hit_probability = np.clip(quality - np.linspace(0, 0.6, n_det), 0.02, 0.99)
    tp = (rng.random(n_det) < hit_probability).astype(int)
    tp[np.cumsum(tp) > npos] = 0
    ctp, cfp = np.cumsum(tp), np.cumsum(1 - tp)
    recall, precision = ctp / npos, ctp / (ctp + cfp)
    return recall.tolist(), precision.tolist(), int(tp.sum()), int(n_det - tp.sum())


def ap_all_point(recall: list, precision: list) -> float:
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def ap_11_point(recall: list, precision: list) -> float:
    r, p = np.asarray(recall), np.asarray(precision)
    return float(np.mean([p[r >= t].max() if (r >= t).any() else 0.0 for t in np.linspace(0, 1, 11)]))


def write_metrics(directory: Path, classes: list[str], seed: int) -> dict[str, dict]:
    rng = np.random.default_rng(seed)
    per_protocol = {"voc07": {"classes": {}, "pr": {}}, "voc12": {"classes": {}, "pr": {}}}
    for index, name in enumerate(classes):
        npos = 20 + 7 * index
        recall, precision, tp, fp = pr_curve(rng, npos, 3 * npos, 0.95 - 0.03 * index)
        for protocol, ap in (("voc07", ap_11_point(recall, precision)), ("voc12", ap_all_point(recall, precision))):
            per_protocol[protocol]["classes"][name] = {"ap": ap, "npos": npos, "tp": tp, "fp": fp}
            per_protocol[protocol]["pr"][name] = {"recall": recall, "precision": precision}
    for protocol, data in per_protocol.items():
        aps = [c["ap"] for c in data["classes"].values()]
        data.update({"protocol": protocol, "iou": 0.5, "map": float(np.mean(aps))})
        (directory / f"metrics_{protocol}.json").write_text(json.dumps(data))
    return per_protocol


def write_classification(directory: Path, classes: list[str], seed: int) -> dict:
    rng = np.random.default_rng(seed)
    n = len(classes)
    matrix = rng.integers(0, 4, size=(n, n + 1))
    matrix[np.arange(n), np.arange(n)] += rng.integers(20, 60, size=n)
    matrix[-1] = 0                                                  # a class with no test images
    counts = matrix.sum(axis=1)
    recall = {c: (float(matrix[i, i] / counts[i]) if counts[i] else None) for i, c in enumerate(classes)}
    present = [v for v in recall.values() if v is not None]
    data = {"classes": classes, "columns": classes + ["no detection"], "matrix": matrix.tolist(),
            "per_class_recall": recall, "mean_accuracy": float(np.mean(present)), "n_images": int(counts.sum())}
    (directory / "classification.json").write_text(json.dumps(data))
    return data


def write_loss(directory: Path, iterations: int, start: float, with_avg: bool) -> None:
    with (directory / "loss.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["iteration", "loss", "avg_loss", "lr", "seconds"])
        avg = start
        for it in range(1, iterations + 1):
            loss = start * np.exp(-it / (iterations / 3)) + 0.5 + 0.1 * np.sin(it)
            avg = 0.9 * avg + 0.1 * loss
            writer.writerow([it, f"{loss:.4f}", f"{avg:.4f}" if with_avg else "", "0.001", f"{0.4 * it:.2f}"])


def write_summary(directory: Path, **fields) -> dict:
    summary = {"experiment": directory.name, "framework": "caffe", "profile": "paper", "status": "ok",
               "message": "", "train": {"iterations": 0, "seconds": 0.0, "loss_csv": "loss.csv", "init_weights": None},
               "metrics": {"voc07": "metrics_voc07.json", "voc12": "metrics_voc12.json"},
               "classification": "classification.json", "timing": "timing.json"}
    summary.update(fields)
    (directory / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def make_run(root: Path) -> dict:
    """Four experiments: a full paper-profile SSD, a smoke YOLO on BCCD classes, a failed SSD512
    (loss only) and a skipped tiny YOLO. Returns what was written, for the tests to compare."""
    run = root / "runs" / "demo"
    written: dict = {"run_dir": run}
    ssd = run / "models" / "ssd300_smin0.2"
    (ssd / "rendered").mkdir(parents=True)
    (ssd / "rendered" / "train.prototxt").write_text('name: "ssd300"\nlayer { name: "data" }\n')
    (ssd / "rendered" / "solver.prototxt").write_text('base_lr: 0.001\n')
    written["ssd300_smin0.2"] = {
        "metrics": write_metrics(ssd, PAPER_CLASSES, seed=1),
        "classification": write_classification(ssd, PAPER_CLASSES, seed=2),
        "timing": {"device": "CPU (2 cores)", "backend": "caffe-cpu", "n_images": 50, "warmup": 5,
                   "median_ms": 812.5, "p90_ms": 901.25},
        "summary": write_summary(ssd, train={"iterations": 300, "seconds": 5400.0, "loss_csv": "loss.csv",
                                             "init_weights": "VGG_ILSVRC_16_layers_fc_reduced.caffemodel"}),
    }
    (ssd / "timing.json").write_text(json.dumps(written["ssd300_smin0.2"]["timing"]))
    write_loss(ssd, 300, start=20.0, with_avg=False)

    yolo = run / "models" / "yolov3_416"
    yolo.mkdir(parents=True)
    written["yolov3_416"] = {
        "metrics": write_metrics(yolo, BCCD_CLASSES, seed=3),
        "classification": write_classification(yolo, BCCD_CLASSES, seed=4),
        "timing": {"device": "CPU (1 core)", "backend": "darknet", "n_images": 20, "warmup": 2,
                   "median_ms": 5400.0, "p90_ms": 5900.0},
        "summary": write_summary(yolo, framework="darknet", profile="smoke",
                                 train={"iterations": 40, "seconds": 720.0, "loss_csv": "loss.csv", "init_weights": None}),
    }
    (yolo / "timing.json").write_text(json.dumps(written["yolov3_416"]["timing"]))
    write_loss(yolo, 40, start=900.0, with_avg=True)

    failed = run / "models" / "ssd512_smin0.2"
    failed.mkdir(parents=True)
    write_loss(failed, 12, start=30.0, with_avg=False)
    written["ssd512_smin0.2"] = {"summary": write_summary(
        failed, status="failed", message="Caffe aborted: Check failed: error == cudaSuccess (out of memory)",
        train={"iterations": 12, "seconds": 60.0, "loss_csv": "loss.csv", "init_weights": None},
        metrics={}, classification=None, timing=None)}

    skipped = run / "models" / "yolov3-tiny_416"
    skipped.mkdir(parents=True)
    written["yolov3-tiny_416"] = {"summary": write_summary(
        skipped, framework="darknet", status="skipped", message="darknet not usable: /usr/bin/darknet missing",
        train={}, metrics={}, classification=None, timing=None)}
    return written


def test_loader_reads_every_file_the_factory_wrote(tmp_path):
    written = make_run(tmp_path)
    run = load_run(written["run_dir"], order=["ssd300_smin0.2", "yolov3_416"])
    assert [e.name for e in run.experiments] == ["ssd300_smin0.2", "yolov3_416", "ssd512_smin0.2", "yolov3-tiny_416"]
    assert run.all_problems == []
    ssd, yolo, failed, skipped = run.experiments
    assert ssd.comparable and not yolo.comparable and not failed.comparable
    assert ssd.metrics["voc12"]["map"] == written["ssd300_smin0.2"]["metrics"]["voc12"]["map"]
    assert len(ssd.loss) == 300 and all(v != v for v in ssd.loss.avg_loss)       # Caffe: no avg column
    assert yolo.loss.avg_loss[0] > 0
    assert failed.status == "failed" and "out of memory" in failed.message and len(failed.loss) == 12
    assert skipped.status == "skipped" and skipped.loss is None


def test_missing_and_malformed_files_are_named(tmp_path):
    written = make_run(tmp_path)
    run_dir = written["run_dir"]
    (run_dir / "models/ssd300_smin0.2/metrics_voc07.json").unlink()
    (run_dir / "models/yolov3_416/timing.json").write_text("{not json")
    (run_dir / "models/orphan").mkdir()
    interrupted = run_dir / "models/interrupted"
    interrupted.mkdir()
    write_loss(interrupted, 5, start=10.0, with_avg=False)
    run = load_run(run_dir)
    problems = "\n".join(run.all_problems)
    assert "models/ssd300_smin0.2/metrics_voc07.json: file not found" in problems
    assert "models/yolov3_416/timing.json: not valid JSON" in problems
    assert "models/orphan/summary.json: file not found" in problems
    assert next(e for e in run.experiments if e.name == "orphan").status == "missing"
    # an interrupted run's finished work under the standard names is shown, and said so
    interrupted_run = next(e for e in run.experiments if e.name == "interrupted")
    assert interrupted_run.status == "missing" and len(interrupted_run.loss) == 5
    assert "read by their standard names: loss.csv" in problems
    with pytest.raises(ReportError, match="metrics_voc07.json"):
        load_run(run_dir, strict=True)


def test_not_a_run_directory_is_a_clear_error(tmp_path):
    with pytest.raises(ReportError, match="run directory not found"):
        load_run(tmp_path / "nope")
    with pytest.raises(ReportError, match="no models/ directory"):
        load_run(tmp_path)


def test_bad_loss_csv_names_file_and_line(tmp_path):
    path = tmp_path / "loss.csv"
    path.write_text("iteration,loss\n1,2.0\nabc,1.0\n")
    with pytest.raises(ReportError, match=r"loss.csv:3: iteration 'abc'"):
        read_loss_csv(path)
    path.write_text("step,value\n1,2\n")
    with pytest.raises(ReportError, match="lacks column"):
        read_loss_csv(path)


def test_metrics_shape_errors_are_reported(tmp_path):
    written = make_run(tmp_path)
    path = written["run_dir"] / "models/yolov3_416/metrics_voc12.json"
    path.write_text(json.dumps({"protocol": "voc12", "classes": {"RBC": {"npos": 3}}}))
    run = load_run(written["run_dir"])
    yolo = next(e for e in run.experiments if e.name == "yolov3_416")
    assert "voc12" not in yolo.metrics
    assert any("metrics_voc12.json" in p and "'map'" in p for p in yolo.problems)
