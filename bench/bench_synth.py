#!/usr/bin/env python3
"""Synthetic smear generation speed on one core (target: >= 20 images/s).

Times ``synthesize`` (render, JPEG encode, VOC XML, atomic writes) for N images in this single
process.  Prints wall-clock and CPU-time images/s; on a shared machine the CPU-time figure is
the one-core throughput.  Record the output in docs/benchmarks.md with the command line.

    python bench/bench_synth.py --images 200
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401, E402  (first: puts the repository on sys.path)

from harness.data.synth import synthesize  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench_synth_"))
    try:
        synthesize(scratch / "warmup", 3, seed=args.seed, progress=False)
        wall, cpu = time.perf_counter(), time.process_time()
        synthesize(scratch / "smears", args.images, seed=args.seed, progress=False)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        size = sum(f.stat().st_size for f in (scratch / "smears").rglob("*.jpg"))
        print(f"synthesised {args.images} images (732x574) on one core: {wall:.1f} s wall = "
              f"{args.images / wall:.1f} images/s; {cpu:.1f} s CPU = {args.images / cpu:.1f} images/s "
              f"(load average {os.getloadavg()[0]:.1f}); {size / args.images / 1024:.0f} KiB/image")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
