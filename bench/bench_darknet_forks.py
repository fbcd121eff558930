#!/usr/bin/env python3
"""AlexeyAB's Darknet vs pjreddie's (the harness's OpenBLAS build), interleaved rounds on this machine:

1. YOLOv3-tiny-416 training s/iteration at batch 8 (Darknet's own per-iteration seconds, iteration 1
   left out), the same rendered cfg (with letter_box=1, which pjreddie ignores) and BCCD data;
2. batch-1 forward ms/image for YOLOv3-320 (and YOLOv3-tiny-416) through each build's libdarknet
   (ctypes), random weights, each measurement in its own process.

Builds: ``alexeyab`` (``install_darknet.sh --fork alexeyab``), ``openblas`` (``install_darknet.sh``);
``--extra NAME=BINARY`` adds another build (e.g. an AlexeyAB ``AVX=0`` or ``OPENMP=0`` variant made with
``HARNESS_ALEXEYAB_MAKE=... bash scripts/install_darknet.sh --fork alexeyab`` to measure its knobs).

    python bench/bench_darknet_forks.py --rounds 3 --iters 8 --n 10 --warmup 2
    python bench/bench_darknet_forks.py --rounds 1 --iters 3 --n 2 --warmup 1     # smoke run
Run it on an idle machine; record the printed ratios and the command in docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import _common  # noqa: F401, E402  (first: puts the repository on sys.path)
import bench_darknet  # noqa: E402  (its training/forward loops, interleaving and ratio printing)
from harness.frameworks.darknet.driver import darknet_at, find_darknet  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bccd", type=Path, default=bench_darknet.DEFAULT_BCCD)
    parser.add_argument("--out", type=Path, default=None, help="keep work files here (default: temp dir)")
    parser.add_argument("--size", type=int, default=416, help="YOLOv3-tiny training input size")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--iters", type=int, default=8, help="training iterations per round and build")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds over the builds")
    parser.add_argument("--n", type=int, default=10, help="timed forward passes per model")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--extra", action="append", default=[], metavar="NAME=BINARY",
                        help="another Darknet binary to compare (library beside it)")
    parser.add_argument("--skip-forward", action="store_true")
    return parser.parse_args()


def fork_builds(extra: list[str]) -> dict:
    """alexeyab and pjreddie-OpenBLAS, plus any ``NAME=BINARY`` given."""
    builds = {"alexeyab": find_darknet(fork="alexeyab"), "openblas": bench_darknet.cached_build("openblas")}
    for item in extra:
        name, _, binary = item.partition("=")
        if not binary:
            sys.exit(f"--extra {item!r}: expected NAME=BINARY")
        builds[name] = darknet_at(Path(binary))
    return builds


def main() -> None:
    args = parse_args()
    args.model, args.skip_speed = "yolov3-tiny", False
    work = args.out.resolve() if args.out else Path(tempfile.mkdtemp(prefix="bench-darknet-forks-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"work dir {work}; cores {os.cpu_count()}; load average {os.getloadavg()}; "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    dataset = bench_darknet.converted_dataset(args.bccd, work)
    installs = fork_builds(args.extra)
    for name, install in installs.items():
        print(f"{name}: {install.binary} ({install.backend}, {install.fork}@{(install.commit or '')[:8]}) "
              f"{install.stamp.get('make_args', '')}")
    report: dict = {"cores": os.cpu_count(), "rounds": args.rounds, "batch": args.batch, "size": args.size,
                    "train": bench_darknet.training_speed(installs, dataset, work, args)}
    bench_darknet.print_ratios(f"training yolov3-tiny-{args.size} batch {args.batch} s/it",
                               {k: v["s_per_it"] for k, v in report["train"].items()})
    if not args.skip_forward:
        report["forward"] = bench_darknet.forward_speed(installs, dataset, work, args)
        for model in ("yolov3-320", "yolov3-tiny-416"):
            bench_darknet.print_ratios(f"forward {model} ms", {k.split("/")[1]: v for k, v in report["forward"].items()
                                                               if k.startswith(model + "/")})
    report["load_average_end"] = os.getloadavg()
    (work / "bench_darknet_forks.json").write_text(json.dumps(report, indent=1))
    print(f"load average at end {os.getloadavg()}; figures in {work / 'bench_darknet_forks.json'}")


if __name__ == "__main__":
    main()
