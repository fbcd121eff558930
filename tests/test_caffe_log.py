"""Caffe glog parser: synthetic lines in the exact solver.cpp formats, and a real captured log."""
from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from harness.parse.caffe_log import (
    CaffeLogParser,
    parse_caffe_log,
    run_marker,
    split_glog,
    write_loss_csv,
)

FIXTURES = Path(__file__).parent / "fixtures" / "caffe_tiny"


def glog(level: str, clock: str, source: str, message: str) -> str:
    return f"{level}1124 {clock}  4242 {source}] {message}"


def block(iteration: int, clock: str, smoothed: str, outputs: list[str], lr: str) -> list[str]:
    lines = [glog("I", clock, "solver.cpp:231", f"Iteration {iteration}, loss = {smoothed}")]
    lines += [glog("I", clock, "solver.cpp:247", f"    Train net output #{i}: {text}") for i, text in enumerate(outputs)]
    lines.append(glog("I", clock, "sgd_solver.cpp:106", f"Iteration {iteration}, lr = {lr}"))
    return lines


def test_split_glog_reads_level_time_and_message():
    level, stamp, message = split_glog("F1124 02:10:11.500000  4242 net.cpp:88] Check failed: x == y (1 vs. 2)")
    assert level == "F"
    assert (stamp.month, stamp.day, stamp.hour, stamp.second, stamp.microsecond) == (11, 24, 2, 11, 500000)
    assert message == "Check failed: x == y (1 vs. 2)"
    assert split_glog("plain text") == ("", None, "plain text")


def test_iteration_block_gives_instant_loss_smoothed_loss_lr_and_seconds():
    lines = [glog("I", "02:00:00.000000", "solver.cpp:282", "Solving tiny")]
    lines += block(0, "02:00:01.000000", "8", ["mbox_loss = 8 (* 1 = 8 loss)"], "0.001")
    lines += block(1, "02:00:03.500000", "6.5", ["mbox_loss = 5 (* 1 = 5 loss)", "acc = 0.25"], "0.001")
    parsed = parse_caffe_log(lines)
    assert [(r.iteration, r.loss, r.avg_loss, r.lr) for r in parsed.rows] == [(0, 8.0, 8.0, 0.001), (1, 5.0, 6.5, 0.001)]
    assert parsed.rows[1].seconds == pytest.approx(3.5)
    assert parsed.net_name == "tiny"
    assert not parsed.fatal and not parsed.nan_iterations


def test_weighted_losses_are_summed_and_bvlc_rate_form_is_read():
    lines = [glog("I", "02:00:00.000000", "solver.cpp:228", "Iteration 20 (2.5 iter/s, 8s/20 iters), loss = 3.25")]
    lines.append(glog("I", "02:00:00.000000", "solver.cpp:247", "    Train net output #0: loc = 2 (* 2 = 4 loss)"))
    lines.append(glog("I", "02:00:00.000000", "solver.cpp:247", "    Train net output #1: conf = 1.5 (* 1 = 1.5 loss)"))
    lines.append(glog("I", "02:00:00.000000", "sgd_solver.cpp:106", "Iteration 20, lr = 1e-05"))
    (row,) = parse_caffe_log(lines).rows
    assert (row.iteration, row.loss, row.avg_loss, row.lr) == (20, 5.5, 3.25, 1e-05)


def test_feed_returns_progress_when_an_iteration_completes():
    parser = CaffeLogParser()
    emitted = [parser.feed(line) for line in block(3, "02:00:00.000000", "2", ["l = 2 (* 1 = 2 loss)"], "0.01")]
    assert emitted[:-1] == [None, None]
    assert emitted[-1].iteration == 3 and emitted[-1].lr == 0.01


def test_final_iteration_line_without_lr_is_kept_at_optimization_done():
    lines = block(0, "02:00:00.000000", "9", ["l = 9 (* 1 = 9 loss)"], "0.1")
    lines.append(glog("I", "02:00:01.000000", "solver.cpp:320", "Iteration 1, loss = 7"))
    lines.append(glog("I", "02:00:01.000000", "solver.cpp:325", "Optimization Done."))
    parser = CaffeLogParser()
    emitted = [p for p in map(parser.feed, lines) if p is not None]
    assert [p.iteration for p in emitted] == [0, 1]            # the bar reaches max_iter
    parsed = parse_caffe_log(lines)
    assert [(r.iteration, r.loss, r.lr) for r in parsed.rows] == [(0, 9.0, 0.1), (1, 7.0, None)]
    assert parsed.optimization_done


def test_nan_loss_fatal_lines_protobuf_errors_and_snapshots_are_collected():
    lines = block(0, "02:00:00.000000", "-nan", ["mbox_loss = -nan (* 1 = -nan loss)"], "0.1")
    lines.append(glog("I", "02:00:00.000000", "solver.cpp:581", "Snapshotting to binary proto file /w/s_iter_1.caffemodel"))
    lines.append(glog("I", "02:00:00.000000", "sgd_solver.cpp:274",
                      "Snapshotting solver state to binary proto file /w/s_iter_1.solverstate"))
    lines.append("[libprotobuf ERROR google/protobuf/text_format.cc:335] Error parsing text-format caffe.NetParameter: "
                 "7:17: Message type \"caffe.TransformationParameter\" has no field named \"resize_param\".")
    lines.append(glog("F", "02:00:02.000000", "upgrade_proto.cpp:88", "Check failed: ReadProtoFromTextFile(param_file, param)"))
    lines.append("*** Check failure stack trace: ***")
    parsed = parse_caffe_log(lines)
    assert parsed.nan_iterations == [0] and math.isnan(parsed.rows[0].loss)
    assert parsed.model_snapshots == [Path("/w/s_iter_1.caffemodel")]
    assert parsed.state_snapshots == [Path("/w/s_iter_1.solverstate")]
    assert any("has no field named" in f for f in parsed.fatal)
    assert any(f.startswith("Check failed") for f in parsed.fatal)


def test_test_net_outputs_are_recorded():
    lines = [glog("I", "02:00:00.000000", "solver.cpp:421", "Iteration 10, Testing net (#0)"),
             glog("I", "02:00:00.000000", "solver.cpp:531", "    Test net output #0: detection_eval = 0.125")]
    (out,) = parse_caffe_log(lines).test_outputs
    assert (out.iteration, out.net, out.name, out.value) == (10, 0, "detection_eval", 0.125)


def test_resumed_log_sums_training_time_without_the_pause_and_latest_block_wins():
    lines = [run_marker("fresh start")]
    lines += block(0, "02:00:00.000000", "9", ["l = 9 (* 1 = 9 loss)"], "0.1")
    lines += block(1, "02:00:10.000000", "8", ["l = 8 (* 1 = 8 loss)"], "0.1")
    lines.append("*** SIGTERM (@0x613d) received by PID 1 (TID 0x7f) from PID 2; stack trace: ***")
    lines.append(run_marker("resumed"))   # one hour later; iteration 1 is displayed again
    lines += block(1, "03:00:00.000000", "7", ["l = 7 (* 1 = 7 loss)"], "0.1")
    lines += block(2, "03:00:05.000000", "6", ["l = 6 (* 1 = 6 loss)"], "0.1")
    parsed = parse_caffe_log(lines)
    assert [r.iteration for r in parsed.rows] == [0, 1, 2]
    assert parsed.rows[1].loss == 7.0
    assert parsed.rows[2].seconds == pytest.approx(15.0)
    assert parsed.fatal == [] and parsed.earlier_fatal[0].startswith("*** SIGTERM")  # judged per run


def test_loss_csv_has_the_contract_columns(tmp_path):
    rows = parse_caffe_log(block(5, "02:00:00.000000", "2", ["l = 2 (* 1 = 2 loss)"], "0.5")).rows
    path = write_loss_csv(rows, tmp_path / "loss.csv")
    with path.open() as handle:
        table = list(csv.DictReader(handle))
    assert list(table[0]) == ["iteration", "loss", "avg_loss", "lr", "seconds"]
    assert table[0]["iteration"] == "5" and float(table[0]["lr"]) == 0.5


def test_missing_log_file_names_the_file(tmp_path):
    with pytest.raises(ValueError, match="nope.log"):
        parse_caffe_log(tmp_path / "nope.log")


def test_real_captured_caffe_log():
    """A log captured from a real `caffe train` of the tiny SSD (tests/fixtures/caffe_tiny)."""
    parsed = parse_caffe_log(FIXTURES / "captured_train.log")
    assert parsed.optimization_done and not parsed.fatal
    assert [r.iteration for r in parsed.rows] == list(range(len(parsed.rows)))
    assert len(parsed.rows) == 5 and parsed.rows[-1].lr is None    # final "Iteration 4, loss" line
    assert [(t.iteration, t.name) for t in parsed.test_outputs] == [(2, "detection_eval"), (4, "detection_eval")]
    assert [p.name for p in parsed.model_snapshots] == ["tiny_iter_2.caffemodel", "tiny_iter_4.caffemodel"]
    assert all(math.isfinite(r.loss) and r.lr is not None for r in parsed.rows[:-1])
    assert parsed.model_snapshots and parsed.state_snapshots
    seconds = [r.seconds for r in parsed.rows]
    assert seconds == sorted(seconds)
