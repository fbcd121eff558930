"""The evaluator says what it cannot score: classes without detections, no detections at all,
and which mean-over-classes rule made the mAP (ours, or Caffe's / Darknet's own)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.data.voc import load_voc
from harness.evaluation import EvaluationError, evaluate_detections, read_detections
from harness.evaluation.detections import Detections
from harness.labels import LabelMap
from test_data_voc import make_sample

REPO = Path(__file__).resolve().parents[1]
LABELS = LabelMap.from_names(["cat", "dog", "bird"])          # bird: no ground-truth object
CAT_BOXES = {"a": [5, 5, 20, 20], "b": [30, 5, 50, 20]}


def make_dataset(root: Path) -> None:
    make_sample(root, "a", [("cat", *CAT_BOXES["a"]), ("dog", 30, 20, 50, 40)])
    make_sample(root, "b", [("cat", *CAT_BOXES["b"])])
    (root / "obj.names").write_text("cat\ndog\nbird\n")


def cat_lines() -> str:
    return "".join(f"{image} 0.9 {' '.join(map(str, box))}\n" for image, box in CAT_BOXES.items())


@pytest.fixture
def dataset(tmp_path):
    make_dataset(tmp_path / "voc")
    return load_voc(tmp_path / "voc", labelmap=LABELS)


def evaluate_dir(dataset, directory: Path, **kwargs) -> dict:
    return evaluate_detections(dataset.images, read_detections(directory, class_names=LABELS.names),
                               dataset.labelmap, **kwargs)


def test_class_without_a_file_is_warned_about(dataset, tmp_path):
    (tmp_path / "dets").mkdir()
    (tmp_path / "dets" / "comp4_det_test_cat.txt").write_text(cat_lines())
    metrics = evaluate_dir(dataset, tmp_path / "dets")
    assert metrics["warnings"]["classes_without_detections"] == {"dog": "no detection file"}
    assert "no_detections" not in metrics["warnings"]
    assert metrics["classes"]["dog"]["ap"] == 0.0                         # counts in the mean as 0


def test_empty_file_is_warned_about_with_its_name(dataset, tmp_path):
    (tmp_path / "dets").mkdir()
    (tmp_path / "dets" / "comp4_det_test_cat.txt").write_text(cat_lines())
    (tmp_path / "dets" / "comp4_det_test_dog.txt").write_text("")
    (tmp_path / "dets" / "comp4_det_test_bird.txt").write_text("")     # no objects: nothing to warn about
    warned = evaluate_dir(dataset, tmp_path / "dets")["warnings"]["classes_without_detections"]
    assert list(warned) == ["dog"] and warned["dog"].endswith("comp4_det_test_dog.txt")


def test_no_detections_at_all(dataset):
    metrics = evaluate_detections(dataset.images, Detections.from_records([], source="empty.json"), dataset.labelmap)
    assert "empty.json" in metrics["warnings"]["no_detections"]
    assert metrics["warnings"]["classes_without_detections"] == {"cat": "no detections", "dog": "no detections"}
    assert metrics["map"] == 0.0


def test_full_detections_raise_no_warning(dataset, tmp_path):
    (tmp_path / "dets").mkdir()
    (tmp_path / "dets" / "comp4_det_test_cat.txt").write_text(cat_lines())
    (tmp_path / "dets" / "comp4_det_test_dog.txt").write_text("a 0.7 30 20 50 40\n")
    assert evaluate_dir(dataset, tmp_path / "dets")["warnings"] == {}


@pytest.mark.parametrize("protocol", ["voc07", "voc12", "coco"])
def test_mean_over_present_or_all(dataset, tmp_path, protocol):
    (tmp_path / "dets").mkdir()
    (tmp_path / "dets" / "comp4_det_test_cat.txt").write_text(cat_lines())
    present = evaluate_dir(dataset, tmp_path / "dets", protocol=protocol)
    everything = evaluate_dir(dataset, tmp_path / "dets", protocol=protocol, mean_over="all")
    # cat AP 1, dog AP 0 (no detection), bird: no objects -> undefined, or 0 under "all"
    assert (present["mean_over"], present["map_classes"], present["map"]) == ("present", ["cat", "dog"], pytest.approx(0.5))
    assert (everything["mean_over"], everything["map_classes"]) == ("all", ["cat", "dog", "bird"])
    assert everything["map"] == pytest.approx(1 / 3)
    assert everything["classes"]["bird"]["ap"] is None                   # still undefined per class
    assert "at least one" in present["mean_rule"] and "counts as AP 0" in everything["mean_rule"]


def test_unknown_mean_rule_is_refused(dataset):
    with pytest.raises(EvaluationError, match="mean-over rule 'some'"):
        evaluate_detections(dataset.images, Detections(), dataset.labelmap, mean_over="some")


# --- the CLI as a user runs it: another cwd, relative paths -----------------------------------------
def run_evaluate(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "harness", "evaluate", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_prefix_conflict_warnings_and_mean_rule(tmp_path):
    make_dataset(tmp_path / "voc")
    dets = tmp_path / "voc" / "dets"
    dets.mkdir()
    (dets / "comp4_det_test_cat.txt").write_text(cat_lines())
    (dets / "results_cat.txt").write_text(cat_lines())
    (dets / "results_dog.txt").write_text("")
    work = tmp_path / "work"
    work.mkdir()
    common = ["--gt", "../voc", "--detections", "../voc/dets", "--labelmap", "../voc/obj.names"]

    refused = run_evaluate(work, *common, "--out", "refused")
    assert refused.returncode == 1, refused.stderr
    assert "comp4_det_test_cat.txt" in refused.stderr and "results_cat.txt" in refused.stderr
    assert not (work / "refused").exists()

    picked = run_evaluate(work, *common, "--prefix", "comp4_det_test_", "--mean-over", "all", "--out", "picked")
    assert picked.returncode == 0, picked.stderr
    assert "warning: classes_without_detections" in picked.stderr and '"dog": "no detection file"' in picked.stderr
    metrics = json.loads((work / "picked" / "metrics.json").read_text())
    assert metrics["mean_over"] == "all" and metrics["map"] == pytest.approx(1 / 3)
    assert metrics["inputs"]["prefix"] == "comp4_det_test_"
    assert metrics["warnings"]["classes_without_detections"] == {"dog": "no detection file"}

    other = run_evaluate(work, *common, "--prefix", "results_", "--out", "other")
    assert other.returncode == 0, other.stderr
    warned = json.loads((work / "other" / "metrics.json").read_text())["warnings"]["classes_without_detections"]
    assert warned["dog"].startswith("no detections in")

    usage = run_evaluate(work, *common, "--mean-over", "some", "--out", "usage")
    assert usage.returncode == 2 and "--mean-over" in usage.stderr
