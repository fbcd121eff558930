"""Issue 8: one resolved config, a path policy that works from any cwd, honest exit status, --device.

The CLI verbs run as subprocesses from a working directory other than their inputs', with
relative paths, the way a user types them. The fresh-clone tests run the README's front door
with *default* paths from the clone's root.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.config import ExperimentConfig, ModelSpec
from harness.frameworks.configs import read_config, resolve_experiment
from harness.device import Device
from harness.core.profiles import SMOKE

REPO = Path(__file__).resolve().parents[1]
PATH_KEYS = ("run_dir", "model_dir")


def harness(args: list[str], cwd: Path, root: Path = REPO, timeout: int = 900, **env) -> subprocess.CompletedProcess:
    """``python -m harness ARGS`` as a user runs it, with ``root``'s code."""
    full_env = {**os.environ, "PYTHONPATH": str(root), **env}
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)


def out(done: subprocess.CompletedProcess) -> str:
    return done.stdout + done.stderr


# ----------------------------------------------------------------------------- the config


def _without_paths(config: ExperimentConfig) -> dict:
    return {k: v for k, v in config.to_json().items() if k not in PATH_KEYS}


def test_train_resolves_the_same_config_as_the_reproduce_row(tmp_path: Path) -> None:
    from harness.engine.reproduce import table1_configs
    from harness.engine.run import RunSettings

    row = next(c for c in table1_configs(RunSettings(tmp_path / "r", SMOKE, device="cpu")) if c.name == "yolov3_320")
    alone = RunSettings(tmp_path / "t", SMOKE, device="cpu").config_for(
        ModelSpec("yolov3_320", "darknet", "yolov3", 320), role="table1")
    assert _without_paths(row) == _without_paths(alone)
    assert row.framework_options["cfg"]["max_batches"] == SMOKE.per_model["yolov3"]["yolo_overrides"]["max_batches"]


def test_config_round_trips_through_json(tmp_path: Path) -> None:
    config = resolve_experiment(ModelSpec("ssd300_smin0.1", "caffe", "ssd", 300, 0.1, 0.9), SMOKE,
                                device=Device("gpu", 1), run_dir=tmp_path / "run", iterations=7)
    config.write()
    again = read_config(config.model_dir)
    assert again == config and again.to_json() == config.to_json()
    assert config.framework_options["solver"]["solver_mode"] == "GPU"
    assert config.framework_options["solver"]["max_iter"] == 7
    assert json.loads((config.model_dir / "config.json").read_text())["device"] == "gpu:1"
    assert config.run_dir.is_absolute() and config.model_dir.is_absolute()


@pytest.mark.parametrize("text, expected", [("cpu", Device("cpu")), ("gpu", Device("gpu", 0)),
                                            ("gpu:3", Device("gpu", 3)), ("GPU:1", Device("gpu", 1))])
def test_device_parses(text: str, expected: Device) -> None:
    assert Device.parse(text) == expected


@pytest.mark.parametrize("bad", ["cuda", "gpu:", "gpu:-1", "tpu:0", ""])
def test_bad_device_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="device must be"):
        Device.parse(bad)


def test_device_reaches_both_frameworks_argv(tmp_path: Path) -> None:
    from harness.frameworks.caffe.install import CaffeInstall
    from harness.frameworks.caffe.train import train_argv as caffe_argv
    from harness.frameworks.darknet.driver import DarknetInstall, TrainPlan, train_argv as darknet_argv, valid_argv

    caffe = CaffeInstall(Path("/c"), Path("/c/caffe"), Path("/c/python"), Path("/c/caffe.proto"), "cache")
    solver = Path("/r/solver.prototxt")
    assert caffe_argv(caffe, solver, None, None, Device("gpu", 2)) == ["/c/caffe", "train", f"--solver={solver}",
                                                                      "--gpu=2"]
    assert caffe_argv(caffe, solver, None, None, Device("cpu")) == ["/c/caffe", "train", f"--solver={solver}"]
    darknet = DarknetInstall(Path("/d/darknet"), None, "omp")
    plan = TrainPlan(Path("/r/obj.data"), Path("/r/y.cfg"), Path("/r"), Path("/r/w"), "y", None, None, False, None, 1)
    assert darknet_argv(darknet, plan, Device("gpu", 1))[-2:] == ["-i", "1"]
    assert darknet_argv(darknet, plan, Device("cpu"))[-1] == "-nogpu"
    assert valid_argv(darknet, Path("/r/v.data"), Path("/r/y.cfg"), Path("/r/w.weights"), Device("gpu", 0)) == [
        "/d/darknet", "detector", "valid", "/r/v.data", "/r/y.cfg", "/r/w.weights", "-i", "0"]


@pytest.mark.parametrize("device, mode", [("gpu", "GPU"), ("gpu:1", "GPU"), ("cpu", "CPU")])
def test_render_ssd_writes_the_devices_solver_mode(tmp_path: Path, device: str, mode: str) -> None:
    (tmp_path / "cwd").mkdir()
    done = harness(["render", "ssd", "--device", device, "--caffe-dialect", "brocolli", "--out", "../net"],
                   tmp_path / "cwd")
    assert done.returncode == 0, out(done)
    solver = (tmp_path / "net" / "solver.prototxt").read_text()
    assert f"solver_mode: {mode}" in solver
    # every path in the rendered files is absolute (or a data/ placeholder relative to the file's folder)
    assert f'snapshot_prefix: "{tmp_path / "net"}' in solver


def test_caffe_refuses_a_solver_rendered_for_another_device(tmp_path: Path, caffe_install) -> None:
    from harness.frameworks.caffe.train import train_caffe
    from harness.core.types import NativeFrameworkError
    from harness.render.ssd import render_ssd

    files = render_ssd(tmp_path / "net", classes=2, solver={"solver_mode": "CPU"})
    with pytest.raises(NativeFrameworkError, match="solver_mode CPU but the device is gpu:0"):
        train_caffe(files["solver"], tmp_path / "work", device=Device("gpu", 0))


def test_resumed_training_time_is_the_sum_of_its_segments(tmp_path: Path) -> None:
    """The accounting itself (each framework's resume is tested against the real binaries)."""
    from harness.engine.experiment import SEGMENTS_FILE, _timed_training, read_segments
    from harness.core.types import TrainResult

    class Interrupted:
        def train(self, files, until=None, **display):
            raise KeyboardInterrupt

    class Resumes:
        def train(self, files, until=None, **display):
            return TrainResult(tmp_path / "log", tmp_path / "loss.csv", tmp_path / "w", 10, 3.0, tmp_path / "w.backup")

    with pytest.raises(KeyboardInterrupt):
        _timed_training(Interrupted(), {}, tmp_path)
    _timed_training(Resumes(), {}, tmp_path)
    segments = read_segments(tmp_path)
    assert [s["outcome"] for s in segments] == ["interrupted", "resumed"]
    assert json.loads((tmp_path / SEGMENTS_FILE).read_text()) == segments


# ----------------------------------------------------------------------------- the front door


def _fresh_clone(tmp_path: Path) -> Path:
    """A clone of this repository with the working tree's uncommitted changes laid over it."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    diff = subprocess.run(["git", "-C", str(REPO), "diff", "HEAD", "--binary"], capture_output=True, check=True).stdout
    if diff.strip():
        subprocess.run(["git", "-C", str(clone), "apply", "--whitespace=nowarn", "-"], input=diff, check=True)
    untracked = subprocess.run(["git", "-C", str(REPO), "ls-files", "--others", "--exclude-standard"],
                               capture_output=True, text=True, check=True).stdout.split()
    for name in untracked:
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, clone / name)
    return clone


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    return _fresh_clone(tmp_path_factory.mktemp("fresh"))


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["yolov3-tiny_416", "ssd300_smin0.2"])
def test_reproduce_from_a_fresh_clone_with_default_paths(clone: Path, experiment: str, caffe_install,
                                                        darknet_install) -> None:
    done = harness(["reproduce", "table1", "--profile", "smoke", "--only", experiment, "--no-learning-check"],
                   clone, root=clone)
    assert done.returncode == 0, out(done)[-3000:]
    assert "1/1 experiments ok" in done.stdout
    run_dir = clone / "runs" / "table1-smoke"
    assert (run_dir / "report.html").is_file() and (run_dir / "run.json").is_file()
    summary = json.loads((run_dir / "models" / experiment / "summary.json").read_text())
    assert summary["status"] == "ok" and summary["device"] == "cpu"
    for value in (*summary["rendered"].values(), summary["train"]["weights"], summary["train"]["loss_csv"]):
        assert not Path(value).is_absolute(), f"summary.json path {value} must be relative to its folder"
    # the user's own slides: a plain folder, names with spaces, dots and quotes, from another cwd
    slides = clone / "my slides"
    slides.mkdir(exist_ok=True)
    for name, image in zip(["field 1 (copy).v2.jpg", "it's.jpg"], sorted((run_dir / "synthetic/JPEGImages").glob("*.jpg"))):
        shutil.copy(image, slides / name)
    (clone / "elsewhere").mkdir(exist_ok=True)
    done = harness(["detect", f"../runs/table1-smoke/models/{experiment}", "--images", "../my slides",
                    "--out", f"../dets {experiment}"], clone / "elsewhere", root=clone)
    assert done.returncode == 0, out(done)[-3000:]
    index = {r["image_id"]: r["file"] for r in csv.DictReader((clone / f"dets {experiment}" / "images.csv").open())}
    assert sorted(index.values()) == ["field 1 (copy).v2.jpg", "it's.jpg"]
    rows = list(csv.DictReader((clone / f"dets {experiment}" / "detections.csv").open()))
    assert {r["file"] for r in rows} <= set(index.values())


@pytest.mark.slow
def test_a_failed_experiment_makes_reproduce_exit_1_and_names_it(tmp_path: Path, darknet_install) -> None:
    (tmp_path / "cwd").mkdir()
    broken = tmp_path / "no-caffe-here"
    broken.mkdir()
    done = harness(["reproduce", "table1", "--profile", "smoke", "--only", "ssd300_smin0.2", "--no-learning-check",
                    "--project", "../p", "--device", "cpu"], tmp_path / "cwd", HARNESS_CAFFE_ROOT=str(broken))
    assert done.returncode == 1, out(done)[-3000:]
    assert "FAILED ssd300_smin0.2" in done.stderr and "0/1 experiments ok" in done.stdout
    assert not list((tmp_path / "cwd").iterdir()), "nothing may be written into the caller's cwd"


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    done = harness(["reproduce", "table1", "--profile", "smoke", "--only", "nonsense"], tmp_path)
    assert done.returncode == 2 and "nonsense" in out(done)
    done = harness(["train", "yolov3", "--device", "cuda"], tmp_path)
    assert done.returncode == 2 and "device must be" in out(done)


# ----------------------------------------------------------------------------- verbs from another cwd


@pytest.fixture(scope="module")
def trained_tiny(tmp_path_factory, darknet_install) -> Path:
    """`harness train` with relative paths from a cwd that holds nothing of the run."""
    root = tmp_path_factory.mktemp("verbs")
    (root / "cwd").mkdir()
    done = harness(["train", "yolov3-tiny", "--profile", "smoke", "--iterations", "2", "--project", "../projects",
                    "--device", "cpu"], root / "cwd")
    assert done.returncode == 0, out(done)[-3000:]
    assert not list((root / "cwd").iterdir()), "train wrote into the caller's cwd"
    return root


@pytest.mark.slow
def test_rerunning_a_finished_training_reuses_it(trained_tiny: Path) -> None:
    model_dir = trained_tiny / "projects" / "yolov3-tiny_416" / "models" / "yolov3-tiny_416"
    before = (model_dir / "weights" / "yolov3-tiny_final.weights").stat().st_mtime_ns
    done = harness(["train", "yolov3-tiny", "--profile", "smoke", "--iterations", "2", "--project", "../projects",
                    "--device", "cpu"], trained_tiny / "cwd")
    assert done.returncode == 0 and "reusing" in done.stdout, out(done)[-2000:]
    assert (model_dir / "weights" / "yolov3-tiny_final.weights").stat().st_mtime_ns == before
    changed = harness(["train", "yolov3-tiny", "--profile", "smoke", "--iterations", "3", "--project", "../projects",
                       "--device", "cpu"], trained_tiny / "cwd")
    assert changed.returncode == 2 and "cfg.max_batches: 2 -> 3" in out(changed) and "--overwrite" in out(changed)
    reseeded = harness(["train", "yolov3-tiny", "--profile", "smoke", "--iterations", "2", "--seed", "5",
                        "--project", "../projects"], trained_tiny / "cwd")
    assert reseeded.returncode == 2 and "seed 0 (now 5)" in out(reseeded)
    assert (model_dir / "summary.json").is_file()


@pytest.mark.slow
def test_detect_evaluate_report_from_elsewhere_with_relative_paths(trained_tiny: Path) -> None:
    run = "../projects/yolov3-tiny_416"
    model = f"{run}/models/yolov3-tiny_416"
    elsewhere = trained_tiny / "elsewhere"
    elsewhere.mkdir()
    done = harness(["detect", model, "--images", f"{run}/synthetic", "--image-set", "test", "--out", "../dets"],
                   elsewhere)
    assert done.returncode == 0, out(done)[-2000:]
    assert len(list((trained_tiny / "dets").glob("comp4_det_test_*.txt"))) == 15
    done = harness(["evaluate", "--gt", f"{run}/synthetic", "--image-set", "test", "--detections", "../dets",
                    "--protocol", "voc07", "--out", "../eval"], elsewhere)
    assert done.returncode == 0, out(done)[-2000:]
    assert any((trained_tiny / "eval").iterdir())
    done = harness(["report", run], elsewhere)
    assert done.returncode == 0, out(done)[-2000:]
    assert not list(elsewhere.iterdir()), "a verb wrote into the caller's cwd"


@pytest.mark.slow
def test_detect_on_a_plain_folder_with_awkward_file_names(trained_tiny: Path) -> None:
    slides = trained_tiny / "my slides"
    slides.mkdir()
    source = sorted((trained_tiny / "projects/yolov3-tiny_416/synthetic/JPEGImages").glob("*.jpg"))
    names = ["field 1 (copy).v2.jpg", "it's here.jpg", "field_1_copy_v2.jpg"]
    for name, image in zip(names, source):
        shutil.copy(image, slides / name)
    done = harness(["detect", "../projects/yolov3-tiny_416/models/yolov3-tiny_416", "--images", "../my slides",
                    "--out", "../slide dets"], trained_tiny / "cwd")
    assert done.returncode == 0, out(done)[-2000:]
    index = list(csv.DictReader((trained_tiny / "slide dets" / "images.csv").open()))
    assert sorted(r["file"] for r in index) == sorted(names)
    assert len({r["image_id"] for r in index}) == 3
    rows = list(csv.DictReader((trained_tiny / "slide dets" / "detections.csv").open()))
    assert rows and {r["file"] for r in rows} <= set(names)
    (slides / "broken.png").write_text("not an image")
    done = harness(["detect", "../projects/yolov3-tiny_416/models/yolov3-tiny_416", "--images", "../my slides",
                    "--out", "../slide dets 2"], trained_tiny / "cwd")
    assert done.returncode == 1 and "broken.png" in (trained_tiny / "slide dets 2" / "images.csv").read_text()
    assert "1 image(s) could not be read" in out(done)


@pytest.mark.slow
def test_data_convert_with_relative_paths_from_elsewhere(tmp_path: Path, bccd_root: Path) -> None:
    (tmp_path / "cwd").mkdir()
    os.symlink(bccd_root, tmp_path / "bccd")
    done = harness(["data", "convert", "--voc", "../bccd", "--out", "../converted"], tmp_path / "cwd")
    assert done.returncode == 0, out(done)[-2000:]
    assert (tmp_path / "converted" / "darknet" / "train.txt").is_file()
    assert not list((tmp_path / "cwd").iterdir())


def test_only_runs_with_a_learning_check_synthesise_the_full_set(tmp_path: Path) -> None:
    from harness.engine.reproduce import table1_configs
    from harness.engine.run import RunSettings

    settings = RunSettings(tmp_path / "r", SMOKE, device="cpu")
    with_checks = settings.sized(table1_configs(settings))
    without = settings.sized(table1_configs(settings, learning_check=False))
    assert with_checks.synthetic == (SMOKE.synthetic_images, SMOKE.synthetic_classification_images)
    assert without.synthetic == tuple(SMOKE.pipeline_synthetic)
    assert with_checks.identity() != without.identity()     # one run folder cannot mix the two sets
