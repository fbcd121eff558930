"""``harness render``: the user's own example, errors as messages, and Table 1 in one go."""
from pathlib import Path

from click.testing import CliRunner

from harness.cli import main
from harness.render.prototxt import first, parse_prototxt


def run(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return CliRunner().invoke(main, args, catch_exceptions=False)


def test_render_ssd_smin01_the_users_example(tmp_path, monkeypatch):
    result = run(["render", "ssd", "--smin", "0.1", "--caffe-dialect", "brocolli"], tmp_path, monkeypatch)
    assert result.exit_code == 0, result.output
    out = Path("rendered/ssd300_smin0.1")
    assert sorted(p.name for p in out.glob("*.prototxt")) == [
        "deploy.prototxt", "labelmap.prototxt", "solver.prototxt", "test.prototxt", "train.prototxt"]
    assert "8732 default boxes" in result.output
    assert "min_size [15.0, 30.0, 90.0, 150.0, 210.0, 270.0]" in result.output


def test_render_ssd_solver_flags(tmp_path, monkeypatch):
    result = run(["render", "ssd", "--size", "512", "--caffe-dialect", "weiliu89", "--max-iter", "100",
                  "--stepvalue", "50,80", "--base-lr", "0.0005", "--test-iter", "4", "--out", "o"],
                 tmp_path, monkeypatch)
    assert result.exit_code == 0, result.output
    solver = parse_prototxt(Path("o/solver.prototxt"))
    assert (first(solver, "max_iter"), solver["stepvalue"], first(solver, "base_lr")) == (100, [50, 80], 0.0005)
    assert first(solver, "test_iter") == 4
    assert "24564 default boxes" in result.output


def test_render_yolov3_bad_size_is_a_clear_error(tmp_path, monkeypatch):
    result = run(["render", "yolov3", "--size", "330"], tmp_path, monkeypatch)
    assert result.exit_code != 0
    assert "multiple of 32" in result.output


def test_render_yolov3_tiny_flags(tmp_path, monkeypatch):
    result = run(["render", "yolov3-tiny", "--classes", "3", "--batch", "4", "--subdivisions", "2",
                  "--steps", "5,9", "--max-batches", "10", "--out", "t"], tmp_path, monkeypatch)
    assert result.exit_code == 0, result.output
    cfg = Path("t/yolov3-tiny.cfg").read_text()
    assert "filters=24" in cfg and "classes=3" in cfg and "steps=5,9" in cfg and "batch=4" in cfg


def test_render_yolo_for_each_darknet(tmp_path):
    """`render yolov3-tiny --darknet alexeyab` (a subprocess, from another folder): the cfg asks AlexeyAB
    to letterbox as pjreddie always does; the pjreddie cfg has no such key; a third name is a usage error."""
    import os
    import subprocess
    import sys

    def render(*extra):
        return subprocess.run([sys.executable, "-m", "harness", "render", "yolov3-tiny", "--classes", "3", *extra],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})

    assert render("--darknet", "alexeyab", "--out", "ab").returncode == 0
    assert render("--out", "pj").returncode == 0
    assert "letter_box=1" in (tmp_path / "ab/yolov3-tiny.cfg").read_text()
    assert "letter_box" not in (tmp_path / "pj/yolov3-tiny.cfg").read_text()
    bad = render("--darknet", "darknet2")
    assert bad.returncode == 2 and "darknet2" in bad.stderr


def test_render_table1_renders_what_reproduce_trains(tmp_path, monkeypatch):
    """Same options and run folder as `reproduce table1`; relative --project from another cwd."""
    (tmp_path / "work").mkdir()
    result = run(["render", "table1", "--profile", "smoke", "--project", "../projects", "--device", "cpu"],
                 tmp_path / "work", monkeypatch)
    assert result.exit_code == 0, result.output
    models = tmp_path / "projects" / "table1-smoke" / "models"
    dirs = sorted(p.name for p in models.iterdir())
    assert dirs == sorted(["ssd300_smin0.2", "ssd300_smin0.1", "ssd512_smin0.2", "yolov3_320", "yolov3_416",
                           "yolov3_608", "yolov3-tiny_416", "learning-check_yolov3-tiny_160",
                           "learning-check_yolov3-tiny_160_alexeyab", "learning-check_ssd160_w0.125"])
    # a check named alone is rendered alone, like reproduce's --only
    named = run(["render", "table1", "--profile", "smoke", "--project", "../projects", "--device", "cpu",
                 "--only", "learning-check_yolov3-tiny_160_alexeyab"], tmp_path / "work", monkeypatch)
    assert named.exit_code == 0, named.output
    cfg = "yolov3-tiny.cfg"
    assert "letter_box=1" in (models / "learning-check_yolov3-tiny_160_alexeyab/rendered" / cfg).read_text()
    assert "letter_box" not in (models / "learning-check_yolov3-tiny_160/rendered" / cfg).read_text()
    assert (models / "yolov3_608/rendered/yolov3.cfg").read_text().count("width=608") == 1
    # Caffe's solver is seeded by the run's --seed (default 0): a CPU training is repeatable
    solver = parse_prototxt(models / "learning-check_ssd160_w0.125/rendered/solver.prototxt")
    assert first(solver, "random_seed") == 0
    priors = [l for l in parse_prototxt(models / "ssd300_smin0.1/rendered/deploy.prototxt")["layer"]
              if first(l, "type") == "PriorBox"]
    assert first(priors[0], "prior_box_param.min_size") == 15
    assert not (tmp_path / "work" / "runs").exists() and not list((tmp_path / "work").iterdir())
