#!/usr/bin/env python3
"""Conversion throughput: BCCD repeated to >= 2,000 images → Darknet + Caffe-SSD layouts.

Builds a VOC copy of BCCD repeated R times (images hard-linked, XMLs copied under new ids,
ImageSets repeated), then times ``convert_dataset`` with the default workers, one per core and one (inline)
(interleaved over ``--rounds``, each run into a fresh output), and a resumed re-run.  Prints images/s (wall clock) and CPU seconds per image; record the output in
docs/benchmarks.md together with the command line.

    python bench/bench_convert.py --repeat 6
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from _common import DEFAULT_BCCD, cpu_seconds  # noqa: E402  (first: puts the repository on sys.path)

from harness.data.convert import convert_dataset  # noqa: E402
from harness.data.pool import default_workers  # noqa: E402


def repeated_voc(bccd: Path, out: Path, repeat: int) -> int:
    """BCCD ``repeat`` times under ids ``<id>_r<k>``; returns the number of images."""
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    ids = sorted(p.stem for p in (bccd / "Annotations").glob("*.xml"))
    for k in range(repeat):
        for image_id in ids:
            new = f"{image_id}_r{k}"
            os.link(bccd / "JPEGImages" / f"{image_id}.jpg", out / "JPEGImages" / f"{new}.jpg")
            xml = (bccd / "Annotations" / f"{image_id}.xml").read_text()
            (out / "Annotations" / f"{new}.xml").write_text(xml.replace(f"{image_id}.jpg", f"{new}.jpg"))
    for split in ("trainval", "test"):
        split_ids = (bccd / "ImageSets/Main" / f"{split}.txt").read_text().split()
        lines = "".join(f"{i}_r{k}\n" for k in range(repeat) for i in split_ids)
        (out / "ImageSets/Main" / f"{split}.txt").write_text(lines)
    return len(ids) * repeat


def timed_convert(voc: Path, out: Path, workers: int | None) -> tuple[float, float, dict]:
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = convert_dataset(voc, out, workers=workers, progress=False)
    return time.perf_counter() - wall, cpu_seconds() - cpu, result.work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bccd", type=Path, default=DEFAULT_BCCD)
    parser.add_argument("--repeat", type=int, default=6, help="BCCD copies (6 x 364 = 2,184 images)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds over the settings")
    parser.add_argument("--workdir", type=Path, default=None, help="scratch dir (default: a temp dir)")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="bench_convert_", dir=args.workdir))
    try:
        n = repeated_voc(args.bccd, scratch / "voc", args.repeat)
        cores = os.cpu_count() or 1
        print(f"dataset: BCCD x{args.repeat} = {n} images; cores: {cores}; "
              f"load average before: {os.getloadavg()[0]:.1f}")
        settings = {f"default ({default_workers()} worker(s){' = inline' if default_workers() == 1 else ' + writer'})": None,
                    f"{cores} worker processes + writer": cores, "1 worker (inline)": 1}
        walls: dict = {label: [] for label in settings}
        for round_ in range(args.rounds):
            for label, workers in settings.items():
                out = scratch / f"out_{workers}"
                shutil.rmtree(out, ignore_errors=True)
                wall, cpu, work = timed_convert(scratch / "voc", out, workers)
                walls[label].append(wall)
                print(f"round {round_ + 1} convert, {label}: {wall:.1f} s wall, {n / wall:.0f} images/s, "
                      f"{1000 * cpu / n:.1f} ms CPU/image (converted {work['converted']})", flush=True)
        default = statistics.median(walls[next(iter(settings))])
        for label, values in walls.items():
            median = statistics.median(values)
            print(f"median {label}: {median:.2f} s ({n / median:.0f} images/s), default x{median / default:.2f} faster")
        wall, _, work = timed_convert(scratch / "voc", scratch / "out_None", None)
        print(f"re-run on the finished output: {wall:.2f} s (reused {work['reused']}, converted {work['converted']})")
        size = sum(f.stat().st_size for f in (scratch / "out_None" / "caffe").rglob("*.mdb"))
        print(f"LMDB size: {size / 2**20:.0f} MiB; load average after: {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
