"""The whole pipeline on the real frameworks: synthetic set → both native trainers → evaluation → report.

This is the issue's "CI really trains each framework for a few iterations on a tiny synthetic set,
detects, evaluates and builds the report". Nothing is mocked; the profile is only made tiny.
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.core.profiles import SMOKE, LearningCheck, limit
from harness.engine.reproduce import reproduce_table1

pytestmark = [pytest.mark.slow, pytest.mark.caffe, pytest.mark.darknet]

TINY = replace(
    SMOKE,
    name="smoke",
    synthetic_images=60,
    synthetic_classification_images=6,
    pipeline_synthetic=None,
    test_images=4,
    classification_images=4,
    timing_images=2,
    timing_warmup=1,
    ssd_batch_size=1,
    ssd_solver={**SMOKE.ssd_solver, "max_iter": 2, "stepvalue": [1], "snapshot": 2},
    yolo_overrides={**SMOKE.yolo_overrides, "max_batches": 2, "steps": [1, 2]},
    per_model={},
    learning_checks=(),          # the smoke profile's own checks train for minutes: this one is tiny
    learning_check=LearningCheck("learning-check_yolov3-tiny_128", "yolov3-tiny", 128,
                                 {"batch": 2, "subdivisions": 1, "max_batches": 3, "steps": [2, 3],
                                  "scales": [0.1, 0.1], "learning_rate": 0.001, "burn_in": 0}),
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, caffe_install, darknet_install) -> Path:
    run_dir = tmp_path_factory.mktemp("pipeline") / "run"
    reproduce_table1(run_dir, TINY, only=["ssd300_smin0.2", "yolov3-tiny_416"], seed=3)
    return run_dir


def _summary(run_dir: Path, name: str) -> dict:
    return json.loads((run_dir / "models" / name / "summary.json").read_text())


@pytest.mark.parametrize("name", ["ssd300_smin0.2", "yolov3-tiny_416", "learning-check_yolov3-tiny_128"])
def test_each_framework_trains_detects_and_is_scored(tiny_run: Path, name: str) -> None:
    summary = _summary(tiny_run, name)
    assert summary["status"] == "ok", summary.get("message")
    assert summary["profile"] == "smoke" and summary["comparable_with_paper"] is False
    model_dir = tiny_run / "models" / name
    assert not Path(summary["train"]["weights"]).is_absolute()     # relative to summary.json's folder
    assert (model_dir / summary["train"]["weights"]).is_file()
    rows = list(csv.DictReader((model_dir / summary["train"]["loss_csv"]).open()))
    assert rows and all(math.isfinite(float(r["loss"])) for r in rows)
    for protocol in ("voc07", "voc12"):
        metrics = json.loads((model_dir / summary["metrics"][protocol]).read_text())
        assert metrics["protocol"] == protocol
        assert metrics["n_images"] == TINY.test_images
        aps = [c["ap"] for c in metrics["classes"].values() if c["ap"] is not None]
        assert aps and all(0.0 <= ap <= 1.0 for ap in aps)
    classification = json.loads((model_dir / summary["classification"]).read_text())
    assert classification["n_images"] == TINY.classification_images
    assert sum(map(sum, classification["matrix"])) == TINY.classification_images
    timing = json.loads((model_dir / summary["timing"]).read_text())
    assert timing["n_images"] == TINY.timing_images and timing["median_ms"] > 0
    assert timing["p90_ms"] >= timing["median_ms"]


def test_report_and_provenance_cover_the_run(tiny_run: Path) -> None:
    for name in ("report.html", "report.md", "table1.csv", "table2.csv", "fig7_loss.png", "provenance.json"):
        assert (tiny_run / name).is_file(), name
    provenance = json.loads((tiny_run / "provenance.json").read_text())
    assert provenance["profile"] == "smoke" and provenance["synthetic_data"] is True
    assert provenance["initialisation_note"]            # trained from scratch, and says so
    assert {f["name"] for f in provenance["frameworks"]} == {"caffe", "darknet"}
    table1 = list(csv.DictReader((tiny_run / "table1.csv").open()))
    assert {r["experiment"] for r in table1} >= {"ssd300_smin0.2", "yolov3-tiny_416"}
    assert "NOT COMPARABLE" in (tiny_run / "report.md").read_text().upper()


def test_detect_verb_reruns_a_trained_model(tiny_run: Path, tmp_path: Path) -> None:
    model_dir = tiny_run / "models" / "yolov3-tiny_416"
    result = CliRunner().invoke(main, ["detect", str(model_dir), "--images", str(tiny_run / "synthetic"),
                                       "--image-set", "test", "--out", str(tmp_path / "dets")])
    assert result.exit_code == 0, result.output
    files = sorted((tmp_path / "dets").glob("comp4_det_test_*.txt"))
    assert len(files) == 15


def test_limits_follow_the_experiment_then_the_model() -> None:
    ssd512 = type("Spec", (), {"name": "ssd512_smin0.2", "model": "ssd"})()
    tiny = type("Spec", (), {"name": "yolov3-tiny_416", "model": "yolov3-tiny"})()
    assert limit(SMOKE, ssd512, "test_images") == SMOKE.per_model["ssd"]["test_images"]
    assert limit(SMOKE, tiny, "test_images") == SMOKE.test_images
