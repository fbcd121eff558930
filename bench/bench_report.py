"""How long ``build_report`` takes and how much memory it needs on a paper-sized run directory.

Paper-sized: the seven Table 1 experiments with the 15-label map, PR curves of up to 2,000 points
per class (the evaluator's cap), and loss.csv files as long as full paper-profile training logs
(SSD: 735,000 iterations logged every 10 → 73,500 rows; YOLOv3: 50,200 rows). Also times the
provenance data hash on BCCD when the dataset is present.

    python bench/bench_report.py [--workdir DIR] [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (first: puts the repository on sys.path)
import numpy as np

from harness.labels import LabelMap
from harness.paper import EXPERIMENTS
from harness.report import build_report
from harness.report.provenance import hash_dataset

BCCD = Path(__file__).resolve().parents[2] / "shared/datasets/bccd"


def _pr(rng: np.random.Generator, points: int) -> dict:
    recall = np.sort(rng.uniform(0, 1, points))
    precision = np.clip(1.0 - recall**3 + rng.normal(0, 0.02, points), 0, 1)
    return {"recall": recall.round(6).tolist(), "precision": precision.round(6).tolist()}


def _write_experiment(model_dir: Path, name: str, framework: str, rng: np.random.Generator) -> None:
    labels = LabelMap.paper()
    model_dir.mkdir(parents=True)
    for protocol in ("voc07", "voc12"):
        classes = {n: {"ap": float(rng.uniform(0.6, 0.99)), "npos": 100, "tp": 90, "fp": 20,
                       "scored": n in labels.scored} for n in labels.names}
        metrics = {"protocol": protocol, "iou": 0.5, "map": float(np.mean([c["ap"] for c in classes.values()])),
                   "classes": classes, "pr": {n: _pr(rng, 2000) for n in labels.names}}
        (model_dir / f"metrics_{protocol}.json").write_text(json.dumps(metrics))
    n = len(labels.names)
    matrix = rng.integers(0, 10, (n, n + 1)) + np.eye(n, n + 1, dtype=int) * 500
    (model_dir / "classification.json").write_text(json.dumps({
        "classes": list(labels.names), "columns": list(labels.names) + ["no detection"],
        "matrix": matrix.tolist(), "per_class_recall": {}, "mean_accuracy": 0.9, "n_images": int(matrix.sum())}))
    rows = 73_500 if framework == "caffe" else 50_200
    iterations = np.arange(1, rows + 1) * (10 if framework == "caffe" else 1)
    loss = 10 * np.exp(-iterations / iterations[-1] * 5) + rng.normal(0, 0.2, rows).clip(-0.5)
    lines = ["iteration,loss,avg_loss,lr,seconds"] + [
        f"{i},{l:.4f},,0.001,{0.5 * i:.1f}" for i, l in zip(iterations, loss)]
    (model_dir / "loss.csv").write_text("\n".join(lines) + "\n")
    (model_dir / "timing.json").write_text(json.dumps({"device": "CPU", "backend": framework, "n_images": 50,
                                                       "warmup": 5, "median_ms": 800.0, "p90_ms": 900.0}))
    (model_dir / "summary.json").write_text(json.dumps({
        "experiment": name, "framework": framework, "profile": "paper", "status": "ok", "message": "",
        "train": {"iterations": int(iterations[-1]), "seconds": 3600.0, "loss_csv": "loss.csv"},
        "metrics": {"voc07": "metrics_voc07.json", "voc12": "metrics_voc12.json"},
        "classification": "classification.json", "timing": "timing.json"}))


def make_paper_sized_run(root: Path) -> Path:
    rng = np.random.default_rng(0)
    run_dir = root / "paper_sized"
    for exp in EXPERIMENTS:
        _write_experiment(run_dir / "models" / exp.name, exp.name, exp.framework, rng)
    return run_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.workdir or Path(tmp)
        run_dir = make_paper_sized_run(root)
        size_mb = sum(p.stat().st_size for p in run_dir.rglob("*") if p.is_file()) / 2**20
        seconds, cpu_seconds = [], []
        for _ in range(args.repeat):
            start, cpu_start = time.perf_counter(), time.process_time()
            outputs = build_report(run_dir)
            seconds.append(time.perf_counter() - start)
            cpu_seconds.append(time.process_time() - cpu_start)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"run dir: {len(EXPERIMENTS)} experiments, 15 classes, {size_mb:.1f} MiB of inputs")
        print(f"build_report: median {statistics.median(seconds):.2f} s over {args.repeat} "
              f"(min {min(seconds):.2f}, max {max(seconds):.2f}) wall, median {statistics.median(cpu_seconds):.2f} s CPU; "
              f"{len(outputs)} files written")
        print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"peak RSS of this process: {peak_mb:.0f} MiB")
    if BCCD.is_dir():
        start = time.perf_counter()
        record = hash_dataset(BCCD)
        print(f"hash_dataset(BCCD): {time.perf_counter() - start:.3f} s, "
              f"{record['content_hashed']} files by content, {record['size_hashed']} by size, "
              f"{record['bytes'] / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
