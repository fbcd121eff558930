"""docs/architecture.md: "a new framework is one module + one registry line". The fake framework of
tests/support/fake_backend.py is that module, and ``HARNESS_FRAMEWORKS`` the registry line (no edit
of harness/): here it goes render → train → evaluate → report → count through the harness's own
entry points, each verb a child process as a user (or a Slurm array task) runs it."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.config import ModelSpec
from harness.core.errors import HarnessError
from harness.frameworks.configs import read_config
from harness.core.profiles import SMOKE
from harness.frameworks import FRAMEWORKS, PLUGIN_VARIABLE, backend_class, registered_frameworks
from tests.support.fake_backend import NAME, REGISTRATION, FakeBackend

REPO = Path(__file__).resolve().parents[1]


def _harness(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        PLUGIN_VARIABLE: REGISTRATION,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")])),
    }
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )


def test_the_environment_registers_a_framework_without_touching_the_registry(monkeypatch) -> None:
    assert NAME not in registered_frameworks()
    monkeypatch.setenv(PLUGIN_VARIABLE, REGISTRATION)
    assert NAME not in FRAMEWORKS and registered_frameworks()[-1] == NAME
    assert backend_class(NAME) is FakeBackend
    monkeypatch.setenv(PLUGIN_VARIABLE, "broken")
    with pytest.raises(HarnessError, match="name=module:Class"):
        registered_frameworks()


@pytest.mark.parametrize("registration, message", [
    ("broken", "'broken' is not name=module:Class"),
    ("x=no_such_module:Backend", "framework 'x' is registered as 'no_such_module:Backend', which cannot be loaded"),
    ("x=tests.support.fake_backend:NoSuchClass", "which cannot be loaded: module 'tests.support.fake_backend'"),
])
def test_a_bad_plugin_registration_is_one_line_naming_it(tmp_path: Path, registration: str, message: str) -> None:
    done = subprocess.run([sys.executable, "-m", "harness", "doctor"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env={**os.environ, PLUGIN_VARIABLE: registration,
                                            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")]))})
    assert done.returncode == 1 and message in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_a_fake_third_framework_goes_render_train_evaluate_report_count(tmp_path: Path, monkeypatch) -> None:
    from harness.engine.run import RunSettings, write_run_file

    monkeypatch.setenv(PLUGIN_VARIABLE, REGISTRATION)
    spec = ModelSpec("fake_64", NAME, "fake", 64)
    settings = RunSettings(tmp_path / "runs" / "fake", SMOKE, device="auto")
    config = settings.config_for(spec, role="custom", iterations=3)
    settings = settings.sized([config])
    assert str(config.device) == "cpu"  # auto: the backend says its build has no CUDA
    assert config.framework_options == {"iterations": 3, "score": 0.9}
    write_run_file(settings, [config])  # what a submitter writes before its tasks start
    config.write()

    (tmp_path / "cwd").mkdir()
    done = _harness("experiment", "run", str(config.model_dir / "config.json"), cwd=tmp_path / "cwd")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((config.model_dir / "summary.json").read_text())
    assert summary["status"] == "ok", summary.get("message")
    assert summary["framework"] == NAME and summary["framework_build"] == "fake (fixed detections)"
    assert summary["train"]["iterations"] == 3 and summary["train"]["fake_native"] == {"iteration": 3, "score": 0.9}
    assert set(summary["rendered"]) == {"model", "names"}
    metrics = json.loads((config.model_dir / "metrics_voc07.json").read_text())
    assert metrics["map"] > 0.99  # its fixed detections are the annotated boxes
    assert summary["classification"] and summary["timing"]
    assert read_config(config.model_dir) == config
    dataset = settings.run_dir / "dataset"
    assert (dataset / "darknet" / "train.txt").is_file() and not (dataset / "caffe").exists()  # what it reads, only

    status = _harness("status", str(settings.run_dir), cwd=tmp_path / "cwd")
    assert status.returncode == 0 and "fake_64" in status.stdout, status.stdout + status.stderr

    report = _harness("report", str(settings.run_dir), cwd=tmp_path / "cwd")
    assert report.returncode == 0, report.stdout[-3000:] + report.stderr[-3000:]
    assert "fake (fixed detections)" in (settings.run_dir / "report.html").read_text()

    from harness.data.synth import synthesize_slides

    slides = synthesize_slides(tmp_path / "slides", 2, cells_per_slide=10, seed=1, progress=False)
    counted = _harness(
        "count", str(config.model_dir), "--slides", str(slides), "--out", str(tmp_path / "count"),
        "--backend", "native", "--device", "auto", "--quiet", cwd=tmp_path / "cwd",
    )  # fmt: skip
    assert counted.returncode == 0, counted.stdout[-3000:] + counted.stderr[-3000:]
    with (tmp_path / "count" / "differential.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2
    record = json.loads((tmp_path / "count" / "count.json").read_text())
    assert NAME in json.dumps(record)
