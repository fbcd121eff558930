"""--iterations N keeps the schedule's shape (issue 23): learning-rate steps and burn-in scale with
the run instead of staying at the full run's absolute iterations (never reached) or the smoke
profile's 2 and 3 (the rate at 1e-6 from iteration 3 on)."""
from __future__ import annotations

from pathlib import Path

from harness.config import ModelSpec, scaled_steps
from harness.frameworks.configs import resolve_experiment
from harness.device import Device
from harness.core.profiles import PAPER, SMOKE

YOLO = ModelSpec("yolov3_416", "darknet", "yolov3", 416)
SSD = ModelSpec("ssd300_smin0.2", "caffe", "ssd", 300, 0.2, 0.9)


def resolve(spec: ModelSpec, profile, iterations, tmp_path: Path):
    return resolve_experiment(spec, profile, device=Device("cpu"), run_dir=tmp_path, iterations=iterations)


def test_paper_yolo_shortened_run_decays_at_the_papers_fractions(tmp_path: Path):
    cfg = resolve(YOLO, PAPER, 500, tmp_path).framework_options["cfg"]
    assert cfg["max_batches"] == 500
    assert cfg["steps"] == [100, 349]           # 10,000 and 35,000 of 50,200
    assert cfg["burn_in"] == 10                 # 1,000 of 50,200: not 500 iterations of burn-in


def test_paper_ssd_shortened_run_keeps_every_step_inside_the_run(tmp_path: Path):
    solver = resolve(SSD, PAPER, 500, tmp_path).framework_options["solver"]
    assert solver["max_iter"] == 500 and solver["snapshot"] == 500
    assert solver["stepvalue"] == [10, 100, 200, 500]      # 14.7k, 147k, 294k, 735k of 735k


def test_smoke_profile_lengthened_run_scales_its_steps(tmp_path: Path):
    cfg = resolve(ModelSpec("yolov3-tiny_416", "darknet", "yolov3-tiny", 416), SMOKE, 400, tmp_path).framework_options["cfg"]
    assert cfg["steps"] == [200, 300] and cfg["burn_in"] == 0 and cfg["learning_rate"] == 0.0001


def test_without_iterations_the_schedule_is_untouched(tmp_path: Path):
    assert "steps" not in resolve(YOLO, PAPER, None, tmp_path).framework_options["cfg"]
    assert resolve(ModelSpec("yolov3-tiny_416", "darknet", "yolov3-tiny", 416), SMOKE, None,
                   tmp_path).framework_options["cfg"]["steps"] == [2, 3]


def test_scaled_steps_keep_their_count_for_darknets_scales():
    assert scaled_steps([2, 3], 4, 1) == [1, 1]
    assert scaled_steps([10000, 35000], 50200, 3) == [1, 2]


def test_cpu_profile_is_the_recipe_that_learns_and_scales_with_the_run(tmp_path: Path):
    from harness.core.profiles import profile

    tiny = ModelSpec("yolov3-tiny_320", "darknet", "yolov3-tiny", 320)
    full = resolve(tiny, profile("cpu"), None, tmp_path).framework_options["cfg"]
    assert (full["learning_rate"], full["batch"], full["burn_in"], full["max_batches"], full["steps"]) == \
        (0.001, 8, 50, 500, [400, 450])
    short = resolve(tiny, profile("cpu"), 100, tmp_path).framework_options["cfg"]
    assert (short["max_batches"], short["steps"], short["burn_in"]) == (100, [80, 90], 10)


def test_cpu_profile_fine_tunes_ssd_with_the_papers_sgd_and_keeps_yolos_recipe(tmp_path: Path):
    """Adam at 2e-3 is for random weights; with --init-weights (VGG16) the SSD gets SGD at 1e-3, the
    steps still scaled to the run. YOLO's lr 1e-3 with burn-in is already Darknet's fine-tuning recipe."""
    from harness.core.profiles import profile

    cpu = profile("cpu")
    weights = tmp_path / "VGG_ILSVRC_16_layers_fc_reduced.caffemodel"
    scratch = resolve_experiment(SSD, cpu, device=Device("cpu"), run_dir=tmp_path, iterations=600)
    tuned = resolve_experiment(SSD, cpu, device=Device("cpu"), run_dir=tmp_path, iterations=600, init_weights=weights)
    assert (scratch.framework_options["solver"]["type"], scratch.framework_options["solver"]["base_lr"]) == ("Adam", 0.002)
    solver = tuned.framework_options["solver"]
    assert (solver["type"], solver["base_lr"], solver["max_iter"]) == ("SGD", 0.001, 600)
    assert solver["stepvalue"] == scratch.framework_options["solver"]["stepvalue"]
    tiny = ModelSpec("yolov3-tiny_320", "darknet", "yolov3-tiny", 320)
    assert resolve_experiment(tiny, cpu, device=Device("cpu"), run_dir=tmp_path, init_weights=weights) \
        .framework_options["cfg"] == resolve(tiny, cpu, None, tmp_path).framework_options["cfg"]
    # The paper profile is the paper's whether or not it fine-tunes.
    assert resolve_experiment(SSD, PAPER, device=Device("cpu"), run_dir=tmp_path, init_weights=weights) \
        .framework_options == resolve(SSD, PAPER, None, tmp_path).framework_options


def test_compact_ssd_refuses_vgg_weights_before_anything_runs(tmp_path: Path):
    import os
    import subprocess
    import sys

    weights = tmp_path / "VGG_ILSVRC_16_layers_fc_reduced.caffemodel"
    weights.write_bytes(b"\x0a" * 2048)
    work = tmp_path / "elsewhere"
    work.mkdir()
    done = subprocess.run([sys.executable, "-m", "harness", "train", "ssd", "--size", "160", "--width", "0.125",
                           "--init-weights", str(weights), "--profile", "cpu"], cwd=work, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert done.returncode == 2 and "--width 0.125" in done.stderr and "full-width body" in done.stderr
    assert not (work / "runs").exists()
