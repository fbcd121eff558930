"""Darknet inference three ways — `detector valid`, libdarknet via ctypes, OpenCV DNN — must agree."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.frameworks.darknet.cfg import DarknetInputError
from harness.frameworks.darknet.driver import detect_darknet_valid
from harness.frameworks.darknet.libdarknet import DarknetNetwork, detect_darknet_ctypes, time_darknet
from harness.frameworks.darknet.opencv import detect_opencv_darknet
from tests.support.darknet import match_detections, write_random_weights
from harness.core.process import run_native
from harness.frameworks import TIMED_SPAN

pytestmark = pytest.mark.darknet


@pytest.fixture(scope="module")
def random_weights(darknet_tiny_model: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Well-conditioned random weights: scores spread over (0, 1), unlike a 4-iteration net's."""
    return write_random_weights(darknet_tiny_model["files"]["cfg"], tmp_path_factory.mktemp("rw") / "r.weights")


def sorted_lines(directory: Path, names: list[str]) -> dict[str, list[str]]:
    return {n: sorted((directory / f"comp4_det_test_{n}.txt").read_text().splitlines()) for n in names}


def test_valid_writes_one_file_per_class(darknet_install, darknet_tiny_model: dict, tmp_path: Path) -> None:
    files, names = darknet_tiny_model["files"], darknet_tiny_model["names"]
    out = detect_darknet_valid(files["data"], files["cfg"], darknet_tiny_model["result"].weights, tmp_path / "d",
                               install=darknet_install, show_progress=False)
    for name in names:
        lines = (out / f"comp4_det_test_{name}.txt").read_text().splitlines()
        for line in lines:
            image_id, score, *box = line.split()
            assert image_id.startswith("BloodImage_") and 0 < float(score) <= 1 and len(box) == 4
    assert (out / "valid.log").is_file()


def test_ctypes_matches_detector_valid_exactly(darknet_install, darknet_tiny_model: dict, random_weights: Path,
                                               tmp_path: Path) -> None:
    files, names = darknet_tiny_model["files"], darknet_tiny_model["names"]
    valid = detect_darknet_valid(files["data"], files["cfg"], random_weights, tmp_path / "valid",
                                 install=darknet_install, show_progress=False)
    dets = detect_darknet_ctypes(files["cfg"], random_weights, darknet_tiny_model["images"], names,
                                 tmp_path / "ctypes", install=darknet_install)
    assert len(dets) > 100
    assert sorted_lines(tmp_path / "ctypes", names) == sorted_lines(valid, names)


def test_opencv_dnn_agrees_with_darknet(darknet_install, darknet_tiny_model: dict, random_weights: Path,
                                        tmp_path: Path) -> None:
    cfg, names, images = darknet_tiny_model["files"]["cfg"], darknet_tiny_model["names"], darknet_tiny_model["images"]
    darknet = detect_darknet_ctypes(cfg, random_weights, images, names, install=darknet_install)
    opencv = detect_opencv_darknet(cfg, random_weights, images, work_dir=tmp_path)
    matched, problems = match_detections(darknet, opencv, max_box_px=1.0, max_score=1e-3)
    assert problems == []
    assert matched == len(darknet) == len(opencv) > 100


def test_ctypes_guards_keep_python_alive(darknet_install, darknet_tiny_model: dict, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)   # libdarknet appends unreadable image paths to ./bad.list
    cfg, weights = darknet_tiny_model["files"]["cfg"], darknet_tiny_model["result"].weights
    with pytest.raises(DarknetInputError, match="cfg file not found"):
        DarknetNetwork(tmp_path / "missing.cfg", weights, darknet_install)   # libdarknet would exit(0)
    with pytest.raises(DarknetInputError, match="weights file not found"):
        DarknetNetwork(cfg, tmp_path / "missing.weights", darknet_install)
    broken = tmp_path / "broken.jpg"
    broken.write_text("not a jpeg")
    with DarknetNetwork(cfg, weights, darknet_install) as net:
        with pytest.raises(DarknetInputError, match="image not found"):
            net.detect(tmp_path / "missing.jpg")
        with pytest.raises(DarknetInputError, match="could not decode"):  # libdarknet: blank 10×10
            net.detect(broken)
        assert isinstance(net.detect(darknet_tiny_model["images"][0]), list)


def test_time_darknet_reports_timing_json_fields(darknet_install, darknet_tiny_model: dict) -> None:
    timing = time_darknet(darknet_tiny_model["files"]["cfg"], darknet_tiny_model["result"].weights,
                          darknet_tiny_model["images"][:2], n=6, warmup=1, install=darknet_install)
    assert {"device", "backend", "n_images", "warmup", "median_ms", "p90_ms"} <= set(timing)
    assert timing["n_images"] == 6 and timing["warmup"] == 1
    assert 0 < timing["median_ms"] <= timing["p90_ms"]
    assert timing["backend"] == darknet_install.backend
    assert timing["span"] == TIMED_SPAN and 0 < timing["forward_median_ms"] <= timing["median_ms"]
    assert time_darknet(darknet_tiny_model["files"]["cfg"], None, darknet_tiny_model["images"][:1],
                        n=1, warmup=0, install=darknet_install)["n_images"] == 1


def test_short_valid_list_runs_in_process(darknet_install, darknet_tiny_model: dict, random_weights: Path,
                                          tmp_path: Path) -> None:
    """< 4 images: detect_darknet_valid falls back to libdarknet and writes the same files."""
    files, names, images = darknet_tiny_model["files"], darknet_tiny_model["names"], darknet_tiny_model["images"][:3]
    (tmp_path / "valid.txt").write_text("\n".join(map(str, images)) + "\n")
    data = tmp_path / "short.data"
    data.write_text(f"valid={tmp_path}/valid.txt\nnames={files['names']}\n")
    out = detect_darknet_valid(data, files["cfg"], random_weights, tmp_path / "short", install=darknet_install)
    assert "in-process" in (out / "valid.log").read_text()
    detect_darknet_ctypes(files["cfg"], random_weights, images, names, tmp_path / "ref", install=darknet_install)
    assert sorted_lines(out, names) == sorted_lines(tmp_path / "ref", names)
    assert sum(len(v) for v in sorted_lines(out, names).values()) > 50


def test_valid_with_three_images_really_crashes(darknet_install, darknet_tiny_model: dict, tmp_path: Path) -> None:
    """Why detect_darknet_valid refuses short lists: pjreddie's valid segfaults on them."""
    images = darknet_tiny_model["images"][:3]
    (tmp_path / "valid.txt").write_text("\n".join(map(str, images)) + "\n")
    (tmp_path / "results").mkdir()
    names = darknet_tiny_model["files"]["names"]
    (tmp_path / "v.data").write_text(f"valid={tmp_path}/valid.txt\nnames={names}\nresults={tmp_path}/results\n")
    run = run_native([str(darknet_install.binary), "detector", "valid", str(tmp_path / "v.data"),
                      str(darknet_tiny_model["files"]["cfg"]), str(darknet_tiny_model["result"].weights)],
                     tmp_path / "valid.log", lambda line: None, None, cwd=tmp_path)
    assert run.crashed, f"expected a crash, got {run.describe_returncode()}"
