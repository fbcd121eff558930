"""`harness count` on a Caffe-SSD model: ``--backend opencv`` (OpenCV DNN) gives the cells of pycaffe.

pycaffe is Caffe's own forward pass, the native reference for this fork (its DetectionOutput
writes no files). The model is a 1-iteration smoke training of SSD300: near-random weights, but
their scores reach the count threshold, so hundreds of real cells are compared.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.count.rules import load_thresholds
from test_config_paths import harness, out
from test_count_cli import assert_same_cells, cell_rows

pytestmark = [pytest.mark.slow, pytest.mark.caffe]
MODEL = "../projects/ssd300_smin0.2/models/ssd300_smin0.2"


@pytest.fixture(scope="module")
def counted(caffe_install, tmp_path_factory):
    """Train SSD300 for one iteration, synthesise one slide, count it with both backends."""
    root = tmp_path_factory.mktemp("count_caffe")
    (root / "cwd").mkdir()
    done = harness(["train", "ssd", "--profile", "smoke", "--iterations", "1", "--batch-size", "1",
                    "--eval-interval", "0", "--project", "../projects", "--device", "cpu"], root / "cwd")
    assert done.returncode == 0, out(done)[-3000:]
    done = harness(["data", "synth", "--out", "../slides", "--slides", "1", "--cells-per-slide", "8", "--quiet"],
                   root / "cwd")
    assert done.returncode == 0, out(done)[-2000:]
    runs = {}
    for backend in ("opencv", "native"):
        runs[backend] = harness(["count", MODEL, "--slides", "../slides", "--out", f"../{backend}", "--device", "cpu",
                                 "--quiet", "--backend", backend], root / "cwd")
    return root, runs


def test_opencv_cells_equal_pycaffe_cells(counted) -> None:
    root, runs = counted
    for backend, done in runs.items():
        assert done.returncode == 0, (backend, out(done)[-3000:])
        assert f"backend: {backend}" in done.stdout and "fields/s" in done.stdout
    native = cell_rows(root / "native" / "cells.csv", "slide_000")
    assert len(native) >= 10, "too few cells to compare"
    assert_same_cells(cell_rows(root / "opencv" / "cells.csv", "slide_000"), native, load_thresholds()["detection"]["min_score"])


def test_count_json_records_the_backend(counted) -> None:
    root, _ = counted
    for backend, detail in (("opencv", "OpenCV DNN"), ("native", "pycaffe")):
        record = json.loads((root / backend / "count.json").read_text())
        assert record["backend"] == backend and detail in record["backend_detail"] and record["framework"] == "caffe"
        assert record["device"] == "cpu" and record["network_loads"] == 1 and record["fields"] > 0
        assert Path(record["model_dir"]).is_dir() and Path(record["thresholds"]).is_file()
