"""Render-stage timings: rendering Table 1, and the OpenCV structure checks, as printed figures.

Run: python bench/bench_render.py [--repeat 5]
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import median_and_max  # first: puts the repository on sys.path

from harness import paper
from harness.render.table1 import render_table1
from harness.render.verify import run_ssd_deploy, yolo_output_rows


def timed(func, repeat: int) -> tuple[float, float]:
    return median_and_max(func, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        median, worst = timed(lambda: render_table1(out / "t1", dialect="weiliu89"), args.repeat)
        print(f"render table1 (7 experiments, {sum(1 for _ in (out / 't1').rglob('*.*'))} files): "
              f"median {median * 1000:.0f} ms, max {worst * 1000:.0f} ms over {args.repeat} runs")
        for exp in paper.EXPERIMENTS:
            directory = out / "t1" / exp.name
            if exp.framework == "caffe":
                check = lambda: run_ssd_deploy(directory / "deploy.prototxt", exp.size)  # noqa: E731
                what = "OpenCV deploy forward, random weights"
            else:
                check = lambda: yolo_output_rows(directory / f"{exp.model}.cfg", exp.size)  # noqa: E731
                what = "OpenCV cfg forward, random weights"
            median, worst = timed(check, 1)
            print(f"{exp.name:<16} {what}: {median:.1f} s")


if __name__ == "__main__":
    main()
