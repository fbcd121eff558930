"""Darknet training-log parsing (pure Python, no Darknet needed)."""
from __future__ import annotations

import csv
import math
from pathlib import Path

from harness.parse.darknet_log import (
    latest_per_iteration,
    log_to_loss_csv,
    parse_darknet_line,
    scan_darknet_log,
)

# Lines as pjreddie Darknet prints them (printf "%ld: %f, %f avg, %f rate, %lf seconds, %d images").
LOG = """yolov3-tiny
Learning Rate: 0.001, Momentum: 0.9, Decay: 0.0005
Loaded: 0.000065 seconds
Region 16 Avg IOU: -nan, Class: -nan, Obj: -nan, No Obj: 0.523, .5R: -nan, .75R: -nan,  count: 0
Region 23 Avg IOU: 0.208772, Class: 0.850866, Obj: 0.130069, No Obj: 0.036748, .5R: 0.073171, .75R: 0.000000,  count: 41
1: 91.789017, 91.789017 avg, 0.001000 rate, 1.689680 seconds, 2 images
Loaded: 0.000098 seconds
2: 101.974693, 92.807587 avg, 0.001000 rate, 2.277341 seconds, 4 images
3: -nan, -nan avg, 0.001000 rate, 2.561935 seconds, 6 images
Saving weights to /tmp/backup/yolov3-tiny_final.weights
Couldn't open file: /tmp/missing/yolov3-tiny_final.weights
"""


def test_iteration_line_parsed_exactly() -> None:
    step = parse_darknet_line("2: 101.974693, 92.807587 avg, 0.001000 rate, 2.277341 seconds, 4 images")
    assert step is not None
    assert (step.iteration, step.loss, step.avg_loss, step.lr, step.seconds, step.images) == (
        2, 101.974693, 92.807587, 0.001, 2.277341, 4)


def test_nan_loss_is_kept_not_dropped() -> None:
    step = parse_darknet_line("3: -nan, -nan avg, 0.001000 rate, 2.561935 seconds, 6 images")
    assert step is not None and math.isnan(step.loss) and math.isnan(step.avg_loss)
    inf = parse_darknet_line("4: inf, inf avg, 0.001000 rate, 2.0 seconds, 8 images")
    assert inf is not None and math.isinf(inf.loss)


def test_other_lines_are_not_iterations() -> None:
    for line in LOG.splitlines():
        if not line[:1].isdigit():
            assert parse_darknet_line(line) is None, line
    assert parse_darknet_line("12") is None            # `detector valid` progress counter
    assert parse_darknet_line("1: garbage, x avg") is None


def test_scan_collects_steps_failures_and_saves() -> None:
    findings = scan_darknet_log(LOG.splitlines())
    assert [s.iteration for s in findings.steps] == [1, 2, 3]
    assert findings.last_iteration == 3
    assert findings.first_nonfinite is not None and findings.first_nonfinite.iteration == 3
    assert findings.saved_weights == ["/tmp/backup/yolov3-tiny_final.weights"]
    assert findings.could_not_open == ["/tmp/missing/yolov3-tiny_final.weights"]


def test_loss_csv_columns_and_nan(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_text(LOG)
    log_to_loss_csv(log, tmp_path / "loss.csv")
    rows = list(csv.reader((tmp_path / "loss.csv").open()))
    assert rows[0] == ["iteration", "loss", "avg_loss", "lr", "seconds"]
    assert rows[1] == ["1", "91.789017", "91.789017", "0.001", "1.68968"]
    assert rows[3][1] == "nan"
    assert len(rows) == 4


def test_resumed_log_keeps_the_rerun_iterations() -> None:
    first = scan_darknet_log([
        "1: 5.0, 5.0 avg, 0.001 rate, 1.0 seconds, 2 images",
        "2: 4.0, 4.9 avg, 0.001 rate, 1.0 seconds, 4 images",
        "3: 3.0, 4.7 avg, 0.001 rate, 1.0 seconds, 6 images",
        # resumed from the backup taken at iteration 2: iteration 3 is trained again
        "3: 2.5, 2.5 avg, 0.001 rate, 1.0 seconds, 6 images",
        "4: 2.0, 2.45 avg, 0.001 rate, 1.0 seconds, 8 images",
    ]).steps
    kept = latest_per_iteration(first)
    assert [(s.iteration, s.loss) for s in kept] == [(1, 5.0), (2, 4.0), (3, 2.5), (4, 2.0)]


def test_alexeyab_iteration_line_also_parsed() -> None:
    line = " 12: 3.504211, 3.817902 avg loss, 0.000010 rate, 1.930000 seconds, 768 images, 5.123 hours left"
    step = parse_darknet_line(line)
    assert step is not None and (step.iteration, step.avg_loss, step.images) == (12, 3.817902, 768)
    assert parse_darknet_line("\x1b[H\x1b[J12/4000: loss=3.5 hours left=5.1\x07") is None
