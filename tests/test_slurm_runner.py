"""`--runner slurm` against a real single-node Slurm cluster started by the fixture (no mocks).

The fixture runs scripts/slurm_local.sh (munged + slurmctld + slurmd, as root) and stops the
daemons by pid afterwards. Without the Slurm packages or root the tests skip, unless
HARNESS_REQUIRE_SLURM=1 (CI) makes that a failure.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["reproduce", "table1", "--profile", "smoke", "--only", "yolov3-tiny_416", "--no-learning-check",
         "--project", "runs"]
pytestmark = [pytest.mark.slow, pytest.mark.darknet]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory) -> dict:
    """A running cluster; yields the environment its clients need."""
    if not Path("/usr/sbin/slurmctld").exists() or os.geteuid() != 0:
        reason = "Slurm not installed or not root (HARNESS_WITH_SLURM=1 scripts/setup.sh)"
        if os.environ.get("HARNESS_REQUIRE_SLURM") == "1":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    state = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "SLURM_LOCAL_PORT": str(_free_port()), "SLURM_LOCAL_KILLWAIT": "10",
           "SLURM_LOCAL_CPUS": "2", "PYTHONPATH": str(ROOT)}
    subprocess.run(["bash", str(ROOT / "scripts/slurm_local.sh"), "start", str(state)], env=env, check=True)
    try:
        yield {**env, "SLURM_CONF": str(state / "slurm.conf")}
    finally:
        subprocess.run(["bash", str(ROOT / "scripts/slurm_local.sh"), "stop", str(state)], env=env, check=False)


def harness(args: list[str], env: dict, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def _summary(run_dir: Path, name: str) -> dict:
    return json.loads((run_dir / "models" / name / "summary.json").read_text())


def _structure(run_dir: Path) -> set[str]:
    """Relative paths a run leaves, minus what is runner-specific (slurm/, locks) or volatile."""
    relative = (p.relative_to(run_dir) for p in run_dir.rglob("*"))
    return {str(r) for r in relative if r.parts[0] != "slurm" and r.name not in (".lock", ".prepare.lock")}


def test_array_tasks_then_report_and_same_structure_as_local(slurm_cluster, tmp_path, caffe_install,
                                                             darknet_install) -> None:
    work = tmp_path / "work"
    work.mkdir()
    args = [*SMALL, "--only", "ssd300_smin0.2"]
    slurm = harness([*args, "--name", "s", "--runner", "slurm", "--cpus-per-task", "1", "--wait"],
                    slurm_cluster, work)
    assert slurm.returncode == 0, slurm.stdout[-3000:] + slurm.stderr[-3000:]
    run_dir = work / "runs" / "s"
    jobs = json.loads((run_dir / "slurm" / "jobs.json").read_text())
    assert len(jobs) == 1 and jobs[0]["experiments"] == ["yolov3-tiny_416", "ssd300_smin0.2"]
    tasks = {_summary(run_dir, n)["scheduler"]["array_task_id"] for n in jobs[0]["experiments"]}
    assert tasks == {"0", "1"}
    assert all(_summary(run_dir, n)["scheduler"]["array_job_id"] == jobs[0]["array"] for n in jobs[0]["experiments"])
    report_log = run_dir / "slurm" / "logs" / f"report_{jobs[0]['report']}.out"
    assert report_log.is_file() and (run_dir / "report.html").is_file()
    last_summary = max((run_dir / "models" / n / "summary.json").stat().st_mtime for n in jobs[0]["experiments"])
    assert (run_dir / "report.html").stat().st_mtime >= last_summary     # the report ran after the tasks
    assert "--array=0-1" in (run_dir / "slurm" / "array.sbatch").read_text()

    status = harness(["status", str(run_dir)], slurm_cluster, work)
    assert status.returncode == 0 and status.stdout.count(" done ") == 2, status.stdout
    assert json.loads((run_dir / "run.json").read_text())["runner"] == "slurm"     # status asks that runner
    assert f"{jobs[0]['array']}_0 -" in status.stdout and f"{jobs[0]['array']}_1 -" in status.stdout

    local = harness([*args, "--name", "l"], {k: v for k, v in slurm_cluster.items()}, work)
    assert local.returncode == 0, local.stdout[-3000:] + local.stderr[-3000:]
    assert _structure(run_dir) == _structure(work / "runs" / "l")
    assert _summary(work / "runs" / "l", "ssd300_smin0.2")["scheduler"] is None
    local_status = harness(["status", str(work / "runs" / "l")], slurm_cluster, work)
    assert local_status.stdout.count(" done ") == 2 and "slurm" not in local_status.stdout.split("\n", 1)[1]


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def test_scancel_mid_training_then_rerun_resubmits_only_that_one_which_resumes(slurm_cluster, tmp_path,
                                                                               darknet_install) -> None:
    work = tmp_path / "work"
    work.mkdir()
    # yolov3-tiny_416 is quick; the YOLO learning check (Darknet backup every 100 batches) is the one killed.
    args = ["reproduce", "table1", "--profile", "smoke", "--only", "yolov3-tiny_416", "--only",
            "learning-check_yolov3-tiny_160", "--project", "runs", "--name", "k", "--runner", "slurm",
            "--cpus-per-task", "1"]
    first = harness(args, slurm_cluster, work)
    assert first.returncode == 0, first.stdout + first.stderr
    run_dir = work / "runs" / "k"
    check = run_dir / "models" / "learning-check_yolov3-tiny_160"
    _wait_for(lambda: (check / "weights").is_dir() and any((check / "weights").glob("*.backup")), 900,
              "the learning check's first Darknet backup")
    jobs = json.loads((run_dir / "slurm" / "jobs.json").read_text())
    task = f"{jobs[0]['array']}_{jobs[0]['experiments'].index(check.name)}"
    subprocess.run(["scancel", task], env=slurm_cluster, check=True)
    _wait_for(lambda: (check / "summary.json").is_file(), 120, "the cancelled task's summary")
    assert _summary(run_dir, check.name)["status"] == "failed"
    _wait_for(lambda: (run_dir / "models" / "yolov3-tiny_416" / "summary.json").is_file()
              and subprocess.run(["squeue", "-h", "-j", f"{jobs[0]['array']},{jobs[0]['report']}"],
                                 env=slurm_cluster, capture_output=True, text=True).stdout.strip() == "",
              900, "the first submission to leave the queue")

    second = harness([*args, "--wait"], slurm_cluster, work)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    jobs = json.loads((run_dir / "slurm" / "jobs.json").read_text())
    assert len(jobs) == 2 and jobs[1]["experiments"] == [check.name]    # only the unfinished one
    segments = json.loads((check / "train_segments.json").read_text())
    # SIGTERM reaches Darknet and Python together: the first segment ends interrupted or failed.
    # Later segments resume (periodic evaluation splits the rest at its evaluation points).
    assert len(segments) >= 2 and segments[0]["outcome"] in ("interrupted", "failed")
    assert all(s["outcome"] == "resumed" for s in segments[1:])
    assert _summary(run_dir, check.name)["train"]["resumed_from"]
