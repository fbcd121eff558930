"""`harness train ... --classes FILE` (issue 23): the class-roles table is checked against the model's
classes before anything trains, copied to MODEL_DIR/class_roles.json and used by `harness count
MODEL_DIR` with no --classes.

The verbs run as subprocesses from a working directory other than their inputs', with relative
paths (as in test_config_paths.py). The model is the cheapest real training: YOLOv3-tiny at 160,
2 iterations, on the embedded synthetic set mapped to a 5-class label set by --class-map (the
paper's neutrophils, lymphocytes, monocytes, eosinophils, basophils; the rest dropped).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.config import ModelSpec
from harness.core.profiles import SMOKE
from harness.device import Device
from harness.frameworks.configs import config_from_json, read_config, resolve_experiment
from test_config_paths import harness, out

FIVE = ["Neutrophil", "Lymphocyte", "Monocyte", "Eosinophil", "Basophil"]
CLASS_MAP = {"sNEU": "Neutrophil", "bNEU": "Neutrophil", "LYM": "Lymphocyte", "rLYM": "Lymphocyte",
             "MO": "Monocyte", "EO": "Eosinophil", "BA": "Basophil"}
DROPPED = ["Blast", "PRO", "MYE", "MET", "NRBC", "gPLT", "SM", "Artefact"]
TRAIN = ["train", "yolov3-tiny", "--profile", "smoke", "--iterations", "2", "--size", "160", "--device", "cpu",
         "--project", "../projects", "--class-map", "../inputs/five.map"]
MODEL = "models/yolov3-tiny_160"


def _table(path: Path, name: str, classes: list[str]) -> Path:
    path.write_text(json.dumps({"name": name, "classes": {c: {"role": "leukocyte", "category": c} for c in classes}},
                               indent=1))
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """ROOT/inputs (the class map and the tables) and ROOT/cwd, where the commands run."""
    root = tmp_path_factory.mktemp("classes")
    (root / "cwd").mkdir()
    (root / "inputs").mkdir()
    rules = [f"{old}: {new}" for old, new in CLASS_MAP.items()] + [f"{name}: <drop>" for name in DROPPED]
    (root / "inputs/five.map").write_text("\n".join(rules) + "\n")
    _table(root / "inputs/five.json", "my-lab-5", FIVE)
    _table(root / "inputs/copy of five.json", "my-lab-5", FIVE)
    _table(root / "inputs/four.json", "my-lab-4", FIVE[1:])  # no Neutrophil, the commonest class
    return root


@pytest.fixture(scope="module")
def trained(inputs: Path, darknet_install) -> Path:
    done = harness([*TRAIN, "--name", "five", "--classes", "../inputs/five.json"], inputs / "cwd")
    assert done.returncode == 0, out(done)[-3000:]
    return inputs / "projects/five"


def test_a_table_that_does_not_load_is_a_usage_error_naming_it(inputs: Path) -> None:
    bad = inputs / "inputs/bad.json"
    bad.write_text(json.dumps({"classes": {"Neutrophil": {"role": "granulocyte"}}}))
    done = harness([*TRAIN, "--name", "bad", "--classes", "../inputs/bad.json"], inputs / "cwd")
    assert done.returncode == 2, out(done)
    assert "--classes" in done.stderr and str(bad) in done.stderr and "'granulocyte'" in done.stderr
    assert not (inputs / "projects/bad").exists()  # refused at the command line, before any work


def test_a_table_missing_a_class_stops_the_run_before_anything_trains(inputs: Path) -> None:
    done = harness([*TRAIN, "--name", "four", "--classes", "../inputs/four.json"], inputs / "cwd")
    assert done.returncode == 2, out(done)[-3000:]
    assert str(inputs / "inputs/four.json") in done.stderr and "['Neutrophil']" in done.stderr, done.stderr
    run = inputs / "projects/four"
    assert not (run / MODEL).exists() and not (run / "run.json").exists()  # no weights, no run to clash with
    assert "[train" not in done.stdout


def test_reproduce_checks_the_table_for_every_experiment_too(inputs: Path) -> None:
    done = harness(["reproduce", "table1", "--profile", "smoke", "--only", "yolov3-tiny_416", "--no-learning-check",
                    "--device", "cpu", "--project", "../projects", "--name", "table1-four",
                    "--class-map", "../inputs/five.map", "--classes", "../inputs/four.json"], inputs / "cwd")
    assert done.returncode == 2, out(done)[-3000:]
    assert str(inputs / "inputs/four.json") in done.stderr and "['Neutrophil']" in done.stderr, done.stderr
    assert not (inputs / "projects/table1-four/models").exists()


@pytest.mark.slow
def test_the_table_lands_in_the_model_dir_and_count_uses_it_without_classes(trained: Path, inputs: Path) -> None:
    model = trained / MODEL
    assert (model / "class_roles.json").read_bytes() == (inputs / "inputs/five.json").read_bytes()
    assert (model / "rendered/obj.names").read_text().split() == sorted(FIVE)  # the 5-class label map
    assert read_config(model).class_roles == inputs / "inputs/five.json"
    summary = json.loads((model / "summary.json").read_text())
    assert summary["class_roles"] == {"name": "my-lab-5", "file": "class_roles.json",
                                      "source": str(inputs / "inputs/five.json")}
    (inputs / "slides/slide 1").mkdir(parents=True)
    for image in sorted((trained / "synthetic/JPEGImages").glob("*.jpg"))[:2]:
        shutil.copy(image, inputs / "slides/slide 1" / image.name)
    done = harness(["count", f"../projects/five/{MODEL}", "--slides", "../slides", "--out", "../counted",
                    "--device", "cpu", "--backend", "opencv", "--quiet"], inputs / "cwd")
    assert done.returncode == 0, out(done)[-3000:]
    assert f"class roles: my-lab-5 ({model / 'class_roles.json'})" in done.stdout
    record = json.loads((inputs / "counted/count.json").read_text())["class_roles"]
    assert record["name"] == "my-lab-5"


@pytest.mark.slow
def test_another_table_under_the_same_run_name_is_a_config_clash(trained: Path, inputs: Path) -> None:
    before = (trained / MODEL / "class_roles.json").read_bytes()
    done = harness([*TRAIN, "--name", "five", "--classes", "../inputs/copy of five.json"], inputs / "cwd")
    assert done.returncode == 2, out(done)[-3000:]
    assert "class_roles: " in done.stderr and "copy of five.json" in done.stderr, done.stderr
    assert "MODEL_DIR/class_roles.json" in done.stderr  # how to change the table without retraining
    assert (trained / MODEL / "class_roles.json").read_bytes() == before


def test_the_config_records_the_table_as_an_absolute_path(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = resolve_experiment(ModelSpec("yolov3-tiny_160", "darknet", "yolov3-tiny", 160), SMOKE,
                                device=Device("cpu"), run_dir=Path("run"), class_roles=Path("t.json"))
    assert config.class_roles == tmp_path / "t.json"
    data = config.to_json()
    assert config_from_json(data) == config and data["class_roles"] == str(tmp_path / "t.json")
    older = {key: value for key, value in data.items() if key != "class_roles"}  # a config.json from before
    assert config_from_json(older).class_roles is None
