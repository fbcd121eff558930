"""``reproduce table1 --jobs N``: experiments side by side as child processes, on the real frameworks.

Run as users run it (the CLI in a subprocess, from a cwd of its own, default relative --project),
with one Caffe and one Darknet row of the smoke profile.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.config import ExperimentConfig, ModelSpec
from harness.frameworks.configs import resolve_experiment
from harness.device import Device
from harness.core.profiles import SMOKE
from harness.runners.local import child_environment, start_order, threads_per_job

ROWS = ("--only", "yolov3-tiny_416", "--only", "ssd300_smin0.2", "--no-learning-check")


def test_threads_split_the_cores_between_jobs() -> None:
    assert threads_per_job(2, cores=2) == 1
    assert threads_per_job(3, cores=16) == 5
    assert threads_per_job(4, cores=2) == 1          # never zero
    env = child_environment(2)
    assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == str(threads_per_job(2))
    assert env["HARNESS_CONCURRENT_EXPERIMENTS"] == "2"


def _config(tmp_path: Path, name: str, role: str) -> ExperimentConfig:
    spec = ModelSpec(name, "darknet", "yolov3-tiny", 160, None, None)
    return resolve_experiment(spec, SMOKE, device=Device("cpu"), run_dir=tmp_path, role=role)


def test_learning_checks_start_first_and_rows_keep_their_order(tmp_path: Path) -> None:
    configs = [_config(tmp_path, "a", "table1"), _config(tmp_path, "check", "learning-check"),
               _config(tmp_path, "b", "table1")]
    assert [c.name for c in start_order(configs)] == ["check", "a", "b"]


@pytest.mark.parametrize("extra, message", [(("--jobs", "0"), "--jobs"),
                                            (("--jobs", "2", "--runner", "slurm"), "--max-parallel")])
def test_bad_jobs_are_usage_errors(tmp_path: Path, extra: tuple, message: str) -> None:
    done = subprocess.run([sys.executable, "-m", "harness", "reproduce", "table1", "--profile", "smoke", *extra],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert not (tmp_path / "runs").exists()                                      # nothing started


def _reproduce(cwd: Path, *extra: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "harness", "reproduce", "table1", "--profile", "smoke",
                             *ROWS, *extra], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "HARNESS_PROGRESS_SECONDS": "5", **(env or {})}, **kwargs)


def _summary(model_dir: Path) -> dict:
    return json.loads((model_dir / "summary.json").read_text())


@pytest.mark.slow
@pytest.mark.caffe
@pytest.mark.darknet
def test_two_jobs_run_both_frameworks_and_report(tmp_path: Path, caffe_install, darknet_install) -> None:
    run = _reproduce(tmp_path, "--jobs", "2")
    out, _ = run.communicate(timeout=900)
    assert run.returncode == 0, out[-3000:]
    models = tmp_path / "runs" / "table1-smoke" / "models"
    for name in ("yolov3-tiny_416", "ssd300_smin0.2"):
        model_dir = models / name
        assert _summary(model_dir)["status"] == "ok"
        log = (model_dir / "experiment.log").read_text()
        assert "[train" in log and "[time] done" in log and "\r" not in log      # the child's whole output
        timing = json.loads((model_dir / "timing.json").read_text())
        assert timing["concurrent_experiments"] == 2 and timing["threads"] == str(threads_per_job(2))
        assert (model_dir / "results.csv").read_text().count("\n") == 2          # header + the final row
        assert f"=== {name}: ok" in out and str(model_dir / "experiment.log") in out
    assert "2 experiment(s), 2 at a time" in out and "2/2 experiments ok" in out
    assert (tmp_path / "runs" / "table1-smoke" / "report.html").is_file()
    with (tmp_path / "runs" / "table1-smoke" / "table2.csv").open(newline="") as handle:
        devices = {row["experiment"]: row["device"] for row in csv.DictReader(handle)}
    assert all(text.endswith("under load: 2 experiments at once") for text in devices.values()), devices

    again = _reproduce(tmp_path, "--jobs", "2")
    out, _ = again.communicate(timeout=300)
    assert again.returncode == 0, out[-3000:]
    assert "2/2 experiments ok (2 reused)" in out and "at a time" not in out     # nothing started again


@pytest.mark.slow
@pytest.mark.caffe
def test_a_failing_child_fails_the_run_and_shows_its_log(tmp_path: Path, caffe_install) -> None:
    run = _reproduce(tmp_path, "--jobs", "2", env={"HARNESS_DARKNET": str(tmp_path / "no-such-darknet")})
    out, _ = run.communicate(timeout=900)
    assert run.returncode == 1, out[-3000:]
    assert "=== yolov3-tiny_416: FAILED" in out and "    | " in out             # the child's log tail
    assert "=== ssd300_smin0.2: ok" in out                                        # the other one finished
    assert "1 of 2 experiments failed" in out
    failed = _summary(tmp_path / "runs" / "table1-smoke" / "models" / "yolov3-tiny_416")
    assert failed["status"] == "failed" and failed["message"]


def _pids_running(pattern: str) -> list[str]:
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return found.stdout.split()


@pytest.mark.slow
@pytest.mark.caffe
@pytest.mark.darknet
def test_ctrl_c_stops_every_child_and_each_records_it(tmp_path: Path, caffe_install, darknet_install) -> None:
    models = tmp_path / "runs" / "table1-smoke" / "models"
    run = _reproduce(tmp_path, "--jobs", "2")
    logs = [models / name / "experiment.log" for name in ("yolov3-tiny_416", "ssd300_smin0.2")]
    deadline = time.monotonic() + 600
    while not all(log.is_file() and "[train" in log.read_text() for log in logs):
        assert run.poll() is None and time.monotonic() < deadline, run.communicate()[0][-3000:]
        time.sleep(0.5)
    run.send_signal(signal.SIGINT)
    out, _ = run.communicate(timeout=300)
    assert run.returncode != 0, out[-3000:]
    for log in logs:
        summary = _summary(log.parent)
        assert summary["status"] == "failed" and "interrupted" in summary["message"], summary
    assert not _pids_running(str(models)), "a child or native process outlived the interrupted run"
