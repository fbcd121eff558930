#!/usr/bin/env python3
"""`harness count` throughput: fields/s of each detection backend (opencv, native) on the paper's networks.

YOLOv3-320 (Darknet: OpenCV DNN vs libdarknet) and SSD300 (Caffe: OpenCV DNN vs pycaffe) with
RANDOM, UNTRAINED weights (speed does not depend on them) on N synthetic 732×574 fields. Each run
is one `detect_batches` pass of the framework's detector (`FrameworkBackend.open_detector`) over the
N fields as one batch, exactly what `harness count` does per slide; the network load is excluded,
except for pycaffe, whose child process loads the network in every run (that is what `harness
count` pays once per command). Runs are
interleaved (opencv native opencv native …) so a busy machine slows both alike; the median and
the opencv/native ratio are printed. Run it on an otherwise idle machine:

    python bench/bench_count.py --fields 50 --repeats 5
Record the printed table and the command in docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import ROOT  # noqa: E402  (first: puts the repository on sys.path)

from harness.config import ModelSpec  # noqa: E402
from harness.frameworks.configs import resolve_experiment  # noqa: E402
from harness.device import Device  # noqa: E402
from harness.core.profiles import SMOKE  # noqa: E402
from harness.frameworks import backend_for  # noqa: E402
from harness.labels import LabelMap  # noqa: E402

BACKENDS = ("opencv", "native")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fields", type=int, default=50, help="synthetic 732x574 fields per run")
    parser.add_argument("--repeats", type=int, default=5, help="runs per backend (interleaved)")
    parser.add_argument("--models", nargs="+", default=["yolov3-320", "ssd300"], choices=["yolov3-320", "ssd300"])
    parser.add_argument("--out", type=Path, default=None, help="keep work files here (default: temp dir)")
    return parser.parse_args()


def synthetic_fields(work: Path, n: int) -> list[tuple[str, Path]]:
    """N fields from `harness data synth --slides` (732×574 JPEGs), as (image id, path)."""
    from harness.data.synth import synthesize_slides

    out = synthesize_slides(work / "slides", 1, cells_per_slide=max(4, 4 * n), scenario="normal", progress=False)
    paths = sorted((out / "slide_000" / "JPEGImages").glob("*.jpg"))[:n]
    if len(paths) < n:
        raise SystemExit(f"only {len(paths)} synthetic fields were written (asked for {n})")
    return [(p.stem, p) for p in paths]


def yolov3_model(work: Path, labelmap: LabelMap) -> tuple[ModelSpec, dict, Path]:
    from tests.support.darknet import write_random_weights
    from harness.render.yolo import render_yolo

    files = render_yolo(work / "yolov3-320", model="yolov3", size=320, labelmap=labelmap,
                        train_list=work / "none.txt", valid_list=work / "none.txt", backup_dir=work / "backup",
                        results_dir=work / "results", overrides={"batch": 1, "subdivisions": 1})
    return ModelSpec("yolov3-320", "darknet", "yolov3", 320), files, \
        write_random_weights(files["cfg"], work / "yolov3-320.weights")


def ssd300_model(work: Path, labelmap: LabelMap) -> tuple[ModelSpec, dict, Path]:
    """SSD300 deploy net; its random (xavier-filled) weights saved by pycaffe in a child process."""
    from harness.frameworks.caffe.install import find_caffe
    from harness.render.ssd import render_ssd

    files = render_ssd(work / "ssd300", size=300, labelmap=labelmap)
    weights = work / "ssd300_random.caffemodel"
    install = find_caffe()
    code = ("import sys, caffe; caffe.set_mode_cpu(); "
            "caffe.Net(sys.argv[1], caffe.TEST).save(sys.argv[2])")
    subprocess.run([sys.executable, "-c", code, str(files["deploy"]), str(weights)], check=True,
                   env={**os.environ, **install.env(quiet=True)}, capture_output=True)
    return ModelSpec("ssd300", "caffe", "ssd", 300, 0.2, 0.9), files, weights


def one_run(detector, fields: list[tuple[str, Path]], work: Path) -> float:
    """fields/s of one pass over every field (as one slide)."""
    ((per_image, seconds),) = list(detector.detect_batches([fields], work))
    if isinstance(per_image, Exception):
        raise per_image
    return len(fields) / seconds


def bench_model(name: str, work: Path, fields, labelmap: LabelMap, repeats: int) -> dict[str, list[float]]:
    spec, files, weights = (yolov3_model if name == "yolov3-320" else ssd300_model)(work / name, labelmap)
    framework = backend_for(resolve_experiment(spec, SMOKE, device=Device("cpu"), run_dir=work / name / "run"),
                            labelmap)
    detectors = {b: framework.open_detector(files, weights, b, work / name / b) for b in BACKENDS}
    rates: dict[str, list[float]] = {b: [] for b in BACKENDS}
    try:
        for repeat in range(repeats):
            for backend, detector in detectors.items():
                rates[backend].append(one_run(detector, fields, work / name / f"{backend}_{repeat}"))
                print(f"  {name} {backend} run {repeat + 1}/{repeats}: {rates[backend][-1]:.2f} fields/s "
                      f"({detector.description})", flush=True)
    finally:
        for detector in detectors.values():
            detector.close()
    return rates


def main() -> int:
    args = parse_args()
    labelmap = LabelMap.paper()
    table = []
    with tempfile.TemporaryDirectory(prefix="bench-count-") as tmp:
        work = (args.out or Path(tmp)).resolve()
        fields = synthetic_fields(work, args.fields)
        for name in args.models:
            rates = bench_model(name, work, fields, labelmap, args.repeats)
            medians = {b: statistics.median(v) for b, v in rates.items()}
            table.append((name, medians["opencv"], medians["native"], medians["opencv"] / medians["native"]))
    print(f"\nharness count throughput, {args.fields} synthetic 732x574 fields per run, {args.repeats} interleaved "
          f"run(s) per backend, CPU ({os.cpu_count()} cores), RANDOM untrained weights (speed only)")
    print(f"{'network':<12} {'opencv f/s':>11} {'native f/s':>11} {'opencv/native':>14}")
    for name, opencv, native, ratio in table:
        print(f"{name:<12} {opencv:>11.2f} {native:>11.2f} {ratio:>13.2f}x")
    print("native = libdarknet (YOLOv3) / pycaffe incl. its per-run child process and network load (SSD300)")
    print("command: python " + " ".join(shlex.quote(a) for a in [str(Path(__file__).relative_to(ROOT)), *sys.argv[1:]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
