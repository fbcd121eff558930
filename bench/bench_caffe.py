#!/usr/bin/env python3
"""Caffe-SSD speed on this machine: SSD300 training iterations/s and batch-1 inference ms/image.

Uses the real pieces end to end: BCCD → ``convert_dataset`` (LMDB) → ``render_ssd`` (SSD300,
VGG16 body, random init: no pretrained VGG here) → ``train_caffe`` (``caffe train``) →
``time_caffe`` (pycaffe, deploy net, trained snapshot). Prints the figures and the Caffe build
time from the install stamp; record them in docs/benchmarks.md.

    python bench/bench_caffe.py --iters 6 --batch 1 2 --n 20 --warmup 3
    python bench/bench_caffe.py --iters 6 --batch 2 --threads 1 2 --rounds 2 --n 5   # OpenBLAS threads

``--threads``: training repeated with OPENBLAS_NUM_THREADS set to each value, interleaved over
``--rounds`` (does `caffe train` use both cores, and what does the second one bring?).
"""
from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
from pathlib import Path

from _common import DEFAULT_BCCD  # noqa: E402  (first: puts the repository on sys.path)

from harness.data.convert import convert_dataset  # noqa: E402
from harness.device import describe_device  # noqa: E402
from harness.frameworks.caffe.install import BUILD_STAMP, find_caffe, inspect_caffe  # noqa: E402
from harness.frameworks.caffe.detect import time_caffe  # noqa: E402
from harness.frameworks.caffe.train import train_caffe  # noqa: E402
from harness.render.ssd import render_ssd  # noqa: E402


def mini_voc(bccd: Path, out: Path, n_train: int, n_test: int) -> Path:
    """First BCCD train/test ids, images symlinked: enough LMDB records for a short benchmark."""
    main = out / "ImageSets/Main"
    main.mkdir(parents=True)
    (out / "Annotations").mkdir()
    (out / "JPEGImages").mkdir()
    for split, count in (("train", n_train), ("test", n_test)):
        ids = (bccd / "ImageSets/Main" / f"{split}.txt").read_text().split()[:count]
        (main / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
        for image_id in ids:
            (out / "Annotations" / f"{image_id}.xml").write_bytes((bccd / "Annotations" / f"{image_id}.xml").read_bytes())
            (out / "JPEGImages" / f"{image_id}.jpg").symlink_to(bccd / "JPEGImages" / f"{image_id}.jpg")
    return out


def train_speed(dataset: Path, work: Path, batch: int, iters: int, tag: str = "") -> dict:
    """Seconds per iteration from loss.csv timestamps, first iteration (set-up, warm-up) excluded."""
    work = work / tag if tag else work
    nets = render_ssd(work / f"ssd300_b{batch}", size=300, batch_size=batch, dataset=dataset,
                      solver={"max_iter": iters, "display": 1, "average_loss": 1, "snapshot": iters,
                              "test_interval": 100000})
    result = train_caffe(nets["solver"], work / f"run_b{batch}", progress=False, resume=False)
    with result.loss_csv.open() as handle:
        seconds = [float(r["seconds"]) for r in csv.DictReader(handle) if r["seconds"]]
    steps = [b - a for a, b in zip(seconds[1:], seconds[2:])]
    per_iter = statistics.median(steps) if steps else float("nan")
    return {"batch": batch, "iterations": iters, "median_s_per_iter": per_iter,
            "iter_per_s": 1.0 / per_iter if per_iter else float("nan"),
            "images_per_s": batch / per_iter if per_iter else float("nan"),
            "wall_s": result.seconds, "deploy": nets["deploy"], "weights": result.weights}


def compare_threads(dataset: Path, work: Path, args) -> None:
    """SSD300 training s/it per OPENBLAS_NUM_THREADS value, interleaved rounds, median of all."""
    import os

    batch, saved = args.batch[0], os.environ.get("OPENBLAS_NUM_THREADS")
    steps: dict = {threads: [] for threads in args.threads}
    try:
        for round_ in range(args.rounds):
            for threads in args.threads:
                os.environ["OPENBLAS_NUM_THREADS"] = str(threads)
                result = train_speed(dataset, work, batch, args.iters, tag=f"threads{threads}_round{round_}")
                steps[threads].append(result["median_s_per_iter"])
                print(f"round {round_ + 1} OPENBLAS_NUM_THREADS={threads}: {result['median_s_per_iter']:.2f} s/iter",
                      flush=True)
    finally:
        if saved is None:
            os.environ.pop("OPENBLAS_NUM_THREADS", None)
        else:
            os.environ["OPENBLAS_NUM_THREADS"] = saved
    medians = {threads: statistics.median(values) for threads, values in steps.items()}
    base = medians[args.threads[0]]
    for threads, median in medians.items():
        print(f"SSD300 train batch {batch}, OPENBLAS_NUM_THREADS={threads}: median {median:.2f} s/iter, "
              f"x{base / median:.2f} vs {args.threads[0]} thread(s)")


def build_seconds() -> str:
    stamp = find_caffe().root / BUILD_STAMP
    for line in stamp.read_text().splitlines() if stamp.is_file() else []:
        if line.startswith("build_seconds="):
            return line.split("=", 1)[1]
    return "unknown (no stamp: not built by scripts/install_caffe.sh)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bccd", type=Path, default=DEFAULT_BCCD)
    parser.add_argument("--iters", type=int, default=6, help="training iterations per batch size")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--n", type=int, default=20, help="timed inference images")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=None,
                        help="OPENBLAS_NUM_THREADS values to compare (training), interleaved")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds for --threads")
    parser.add_argument("--keep", type=Path, help="keep the work folder here instead of a temp dir")
    args = parser.parse_args()

    status = inspect_caffe()
    print(f"caffe: {status.location} version {status.version} dialect {status.details.get('dialect')} "
          f"device {status.device}; build time {build_seconds()} s")
    print(f"machine: {describe_device()}")
    with tempfile.TemporaryDirectory() as temp:
        work = args.keep or Path(temp)
        voc = mini_voc(args.bccd, work / "voc", n_train=max(4, 2 * max(args.batch)), n_test=max(4, args.n))
        converted = convert_dataset(voc, work / "converted", progress=False)
        if args.threads:
            compare_threads(converted.out_dir, work, args)
        results = [train_speed(converted.out_dir, work, batch, args.iters) for batch in args.batch]
        for r in results:
            print(f"SSD300 train batch {r['batch']}: {r['median_s_per_iter']:.2f} s/iter = {r['iter_per_s']:.3f} it/s "
                  f"= {r['images_per_s']:.2f} images/s ({r['iterations']} iterations, wall {r['wall_s']:.1f} s)")
        images = [converted.out_dir / "darknet/images" / f"{i}.jpg" for i in converted.test_ids]
        timing = time_caffe(results[0]["deploy"], results[0]["weights"], images, n=args.n, warmup=args.warmup)
        print(f"SSD300 inference batch 1 (pycaffe, preprocessing + forward + DetectionOutput): "
              f"median {timing['median_ms']:.1f} ms, p90 {timing['p90_ms']:.1f} ms; forward only median "
              f"{timing['forward_median_ms']:.1f} ms (n={timing['n_images']}, warmup={timing['warmup']})")
        print(json.dumps({"train": [{k: v for k, v in r.items() if k not in ("deploy", "weights")} for r in results],
                          "timing": timing}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
