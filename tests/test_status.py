"""`harness status` reads a run directory: states, progress from the live log, mAP, the lock."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.config import ModelSpec
from harness.core.locks import ExperimentBusy, experiment_lock, is_locked
from harness.core.profiles import SMOKE
from harness.engine.run import RunSettings, write_run_file
from harness.status import run_status

ROOT = Path(__file__).resolve().parents[1]
DARKNET_LINE = "{i}: {loss:.3f}, {avg:.3f} avg, 0.000100 rate, 1.5 seconds, {img} images\n"


def _run(tmp_path: Path):
    settings = RunSettings(tmp_path / "run", SMOKE)
    configs = [settings.config_for(ModelSpec(f"yolov3-tiny_{s}", "darknet", "yolov3-tiny", s), role="custom")
               for s in (128, 160, 192, 224)]
    write_run_file(settings, configs)
    for config in configs:
        config.write()
    return settings.run_dir, configs


def test_states_progress_and_map_from_the_run_directory(tmp_path: Path) -> None:
    run_dir, (running, done, failed, pending) = _run(tmp_path)
    (running.model_dir / "train.log").write_text("".join(DARKNET_LINE.format(i=i, loss=10 - i, avg=11 - i, img=2 * i)
                                                         for i in (1, 2, 3)))
    (done.model_dir / "summary.json").write_text(json.dumps({"status": "ok"}))
    (done.model_dir / "metrics_voc07.json").write_text(json.dumps({"map": 0.25}))
    (failed.model_dir / "summary.json").write_text(json.dumps({"status": "failed", "log": "/x/train.log"}))
    with experiment_lock(running.model_dir):
        rows = {r.name: r for r in run_status(run_dir)}
        with pytest.raises(ExperimentBusy):
            with experiment_lock(running.model_dir):
                pass
    assert rows[running.name].state == "running"
    assert (rows[running.name].iterations, rows[running.name].last_loss) == (3, 8.0)
    assert rows[done.name].state == "done" and rows[done.name].best_map == 0.25
    assert rows[failed.name].state == "failed" and rows[failed.name].log == "/x/train.log"
    assert rows[pending.name].state == "pending" and rows[pending.name].iterations is None
    assert not is_locked(running.model_dir)          # released with the descriptor


def test_status_cli_prints_one_row_per_experiment(tmp_path: Path) -> None:
    run_dir, configs = _run(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "harness", "status", os.path.relpath(run_dir, tmp_path.parent)],
                            cwd=tmp_path.parent, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()[1:]] == [c.name for c in configs]
    missing = subprocess.run([sys.executable, "-m", "harness", "status", str(tmp_path)], env=env,
                             cwd=tmp_path.parent, capture_output=True, text=True)
    assert missing.returncode == 2 and "run.json" in missing.stderr
