"""REAL Darknet training on a tiny BCCD subset (yolov3-tiny 128×128, batch 2, a few iterations).

Also reproduces Darknet's silent failures with real runs and checks that the harness names them.
"""
from __future__ import annotations

import csv
import math
import shutil
from pathlib import Path

import pytest

from conftest import render_tiny_yolo
from harness.frameworks.darknet.cfg import DarknetInputError
from harness.frameworks.darknet.driver import (
    check_training,
    plan_training,
    read_weights_seen,
    train_argv,
    train_darknet,
)
from harness.core.process import run_native
from harness.core.types import NativeFrameworkError
from harness.parse.darknet_log import parse_darknet_line, read_darknet_log

pytestmark = pytest.mark.darknet


def loss_rows(csv_path: Path) -> list[dict]:
    with open(csv_path) as handle:
        return list(csv.DictReader(handle))


def test_tiny_training_writes_weights_and_finite_loss(darknet_tiny_model: dict) -> None:
    result = darknet_tiny_model["result"]
    assert result.iterations == 4
    assert result.weights is not None and result.weights.name == "yolov3-tiny_final.weights"
    assert read_weights_seen(result.weights) == 4 * 2          # 4 iterations × batch 2
    rows = loss_rows(result.loss_csv)
    assert [int(r["iteration"]) for r in rows] == [1, 2, 3, 4]
    assert all(math.isfinite(float(r["loss"])) and float(r["loss"]) > 0 for r in rows)
    assert "Saving weights to" in result.log_path.read_text()
    assert result.seconds > 0 and result.resumed_from is None


def test_resume_from_backup_appends_log(darknet_install, darknet_tiny_dataset: Path, tmp_path: Path) -> None:
    files = render_tiny_yolo(tmp_path / "r", darknet_tiny_dataset, max_batches=2)
    work = tmp_path / "run"
    first = train_darknet(files["data"], files["cfg"], work, install=darknet_install, show_progress=False)
    assert first.iterations == 2
    # Darknet writes <cfgbase>.backup only every 100 iterations; an interrupted long run leaves one.
    shutil.copy(first.weights, first.weights.parent / "yolov3-tiny.backup")
    seen = []
    second = train_darknet(files["data"], files["cfg"], work, install=darknet_install, max_batches=4,
                           progress=seen.append, show_progress=False)
    assert second.resumed_from == first.weights.parent / "yolov3-tiny.backup"
    assert [p.iteration for p in seen] == [3, 4]            # continued, not restarted
    assert [int(r["iteration"]) for r in loss_rows(second.loss_csv)] == [1, 2, 3, 4]
    assert read_weights_seen(second.weights) == 8
    # The newest checkpoint says 4 of 4 iterations (a finished segment or run, resumed for a later
    # step): reported as trained, like Caffe's finished solverstate, without starting Darknet
    # (which would only save _final again).
    shutil.copy(second.weights, second.weights.parent / "yolov3-tiny.backup")
    log_size = second.log_path.stat().st_size
    third = train_darknet(files["data"], work / "cfg" / "yolov3-tiny.cfg", work, install=darknet_install)
    assert (third.iterations, third.weights, third.seconds) == (4, second.weights, 0.0)
    assert second.log_path.stat().st_size == log_size
    # Fine-tuning from such weights without -clear is still refused before launching.
    with pytest.raises(DarknetInputError, match="already seen 4 iterations"):
        train_darknet(files["data"], work / "cfg" / "yolov3-tiny.cfg", tmp_path / "other", install=darknet_install,
                      init_weights=second.weights, resume=False)


def test_fine_tune_with_clear_restarts_iteration_count(darknet_install, darknet_tiny_model: dict,
                                                       darknet_tiny_dataset: Path, tmp_path: Path) -> None:
    files = render_tiny_yolo(tmp_path / "r", darknet_tiny_dataset, max_batches=1)
    result = train_darknet(files["data"], files["cfg"], tmp_path / "run", install=darknet_install,
                           init_weights=darknet_tiny_model["result"].weights, clear=True, show_progress=False)
    assert result.iterations == 1 and read_weights_seen(result.weights) == 2


def _run_unchecked(install, plan, log: Path):
    """Launch Darknet exactly as train_darknet does, after the inputs were broken behind its back."""
    return run_native(train_argv(install, plan), log, parse_darknet_line, plan.cfg.max_batches, cwd=plan.cwd)


def test_missing_backup_dir_is_reported(darknet_install, darknet_tiny_dataset: Path, tmp_path: Path) -> None:
    files = render_tiny_yolo(tmp_path / "r", darknet_tiny_dataset, max_batches=1)
    plan = plan_training(files["data"], files["cfg"])
    shutil.rmtree(plan.backup_dir)
    run = _run_unchecked(darknet_install, plan, tmp_path / "train.log")
    assert run.returncode == 0                                # the trap: Darknet says nothing is wrong
    with pytest.raises(NativeFrameworkError, match="backup directory is missing"):
        check_training(plan, run, read_darknet_log(tmp_path / "train.log"))


def test_missing_labels_are_reported(darknet_install, darknet_tiny_dataset: Path, tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    shutil.copytree(darknet_tiny_dataset / "darknet", dataset)
    train_list = [str(dataset / "JPEGImages" / Path(p).name) for p in (dataset / "train.txt").read_text().split()]
    (dataset / "train.txt").write_text("\n".join(train_list) + "\n")
    from harness.render.yolo import render_yolo

    out = (tmp_path / "r").resolve()
    files = render_yolo(out, model="yolov3-tiny", size=128, labelmap=dataset / "obj.names",
                        train_list=dataset / "train.txt", valid_list=dataset / "valid.txt",
                        backup_dir=out / "backup", results_dir=out / "results",
                        overrides={"batch": 2, "subdivisions": 1, "max_batches": 1, "random": 0, "burn_in": 0})
    plan = plan_training(files["data"], files["cfg"])
    shutil.rmtree(dataset / "labels")
    with pytest.raises(DarknetInputError, match="label files missing"):
        plan_training(files["data"], files["cfg"])
    run = _run_unchecked(darknet_install, plan, tmp_path / "train.log")
    with pytest.raises(NativeFrameworkError, match=r"could not open \d+ label file\(s\)|died with signal"):
        check_training(plan, run, read_darknet_log(tmp_path / "train.log"))


def test_diverged_loss_is_reported(darknet_install, darknet_tiny_dataset: Path, tmp_path: Path) -> None:
    files = render_tiny_yolo(tmp_path / "r", darknet_tiny_dataset, max_batches=4, learning_rate=1e6)
    with pytest.raises(NativeFrameworkError, match=r"loss became nan at iteration \d: training diverged"):
        train_darknet(files["data"], files["cfg"], tmp_path / "run", install=darknet_install, show_progress=False)
    rows = loss_rows(tmp_path / "run" / "loss.csv")
    assert len(rows) == 4 and rows[-1]["loss"] == "nan"       # the evidence is kept
