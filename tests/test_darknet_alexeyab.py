"""AlexeyAB's Darknet driven like pjreddie's: training on the converted layout, the label-file trap,
resume from its own checkpoints, and libdarknet (ctypes) equal to its own `detector valid`."""
from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.data.darknet import darknet_label_path
from harness.core.process import run_native
from harness.core.types import NativeFrameworkError
from harness.frameworks.darknet.cfg import write_cfg_copy
from harness.frameworks.darknet.driver import (check_training, detect_darknet_valid, plan_training, read_image_list,
                                               train_argv, train_darknet)
from harness.frameworks.darknet.libdarknet import detect_darknet_ctypes
from harness.parse.darknet_log import parse_darknet_line, read_darknet_log
from tests.conftest import render_tiny_yolo
from tests.support.darknet import write_random_weights

pytestmark = pytest.mark.darknet


def sorted_lines(directory: Path, names: list[str]) -> dict[str, list[str]]:
    return {n: sorted((directory / f"comp4_det_test_{n}.txt").read_text().splitlines()) for n in names}


def loss_rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_alexeyab_cpu_build_calls_openblas_for_gemm(alexeyab_install) -> None:
    """Its own CPU gemm vectorises only the untransposed case: training ran 4.9x slower per iteration
    than with OpenBLAS here (docs/benchmarks.md). The default build links OpenBLAS, as pjreddie's does."""
    stamp = alexeyab_install.stamp
    assert stamp["blas"] == "openblas" and "-DHARNESS_CBLAS" in stamp["make_args"], stamp
    for built in (alexeyab_install.binary, alexeyab_install.library):
        ldd = subprocess.run(["ldd", str(built)], capture_output=True, text=True).stdout
        assert "libopenblas" in ldd, ldd


def test_alexeyab_trains_on_the_converted_layout(alexeyab_tiny_model: dict) -> None:
    """Its label rule finds every label of darknet/JPEGImages/ (no "Can't open label file"), its
    iteration lines become loss.csv, and its final weights are where the harness looks."""
    result = alexeyab_tiny_model["result"]
    log = result.log_path.read_text()
    assert "Can't open label file" not in log and "hours left" in log
    assert [int(r["iteration"]) for r in loss_rows(result.loss_csv)] == [1, 2, 3, 4]
    assert result.weights.name == "yolov3-tiny_final.weights" and result.weights.is_file()
    assert "-nogpu" not in log


def test_both_label_rules_map_the_converted_layout_alike(darknet_tiny_dataset: Path) -> None:
    images = read_image_list(darknet_tiny_dataset / "darknet" / "train.txt")
    for image in images:
        label = darknet_label_path(image, fork="pjreddie")
        assert darknet_label_path(image, fork="alexeyab") == label
        assert Path(label).is_file() and Path(label).parent.name == "labels"


def test_alexeyab_label_rule_has_no_images_rule() -> None:
    """The trap the old layout fell into: AlexeyAB leaves .../images/... alone (label beside the image)."""
    assert darknet_label_path("/d/images/a.jpg", fork="pjreddie") == "/d/labels/a.txt"
    assert darknet_label_path("/d/images/a.jpg", fork="alexeyab") == "/d/images/a.txt"
    assert darknet_label_path("/d/JPEGImages/a.jpeg", fork="alexeyab") == "/d/labels/a.txt"
    assert darknet_label_path("/c/images/train2017/a.png", fork="alexeyab") == "/c/labels/train2017/a.txt"


@pytest.mark.parametrize("fork", ["pjreddie", "alexeyab"])
def test_training_whose_log_cannot_open_a_label_is_refused(fork: str, request, darknet_tiny_dataset: Path,
                                                            tmp_path: Path) -> None:
    """A label file removed after the pre-launch check: the real binary runs, and the harness refuses
    the training from its log (AlexeyAB: "Can't open label file", rc 0; pjreddie: "Couldn't open file")."""
    install = request.getfixturevalue("alexeyab_install" if fork == "alexeyab" else "darknet_install")
    dataset = tmp_path / "data"
    shutil.copytree(darknet_tiny_dataset / "darknet", dataset / "darknet")
    train_list = dataset / "darknet" / "train.txt"
    images = [str(dataset / "darknet" / "JPEGImages" / Path(p).name) for p in read_image_list(
        darknet_tiny_dataset / "darknet" / "train.txt")]
    train_list.write_text("\n".join(images) + "\n")
    files = render_tiny_yolo(tmp_path / "rendered", dataset, darknet=fork, max_batches=2)
    plan = plan_training(files["data"], files["cfg"], fork=fork)
    for image in images:                                   # every label gone after the check
        Path(darknet_label_path(image, fork=fork)).unlink()
    log_path = tmp_path / "train.log"
    run = run_native(train_argv(install, plan), log_path, parse_darknet_line, 2, cwd=plan.cwd, show_progress=False,
                     timeout=120)
    with pytest.raises(NativeFrameworkError, match=r"label file\(s\)") as caught:
        check_training(plan, run, read_darknet_log(log_path))
    assert str(log_path) in str(caught.value)


def test_alexeyab_pre_launch_check_uses_its_own_label_rule(alexeyab_install, darknet_tiny_dataset: Path,
                                                           tmp_path: Path) -> None:
    """A list in pjreddie's old images/ layout trains fine there but not on AlexeyAB: refused before launch."""
    old = tmp_path / "old" / "darknet"
    (old / "images").mkdir(parents=True)
    shutil.copytree(darknet_tiny_dataset / "darknet" / "labels", old / "labels")
    images = []
    for image in read_image_list(darknet_tiny_dataset / "darknet" / "train.txt"):
        target = old / "images" / Path(image).name
        target.symlink_to(image)
        images.append(str(target))
    (old / "train.txt").write_text("\n".join(images) + "\n")
    files = render_tiny_yolo(tmp_path / "rendered", tmp_path / "old", darknet="alexeyab")
    plan_training(files["data"], files["cfg"], fork="pjreddie")          # pjreddie reads it
    with pytest.raises(Exception, match="alexeyab's label-path rule"):
        plan_training(files["data"], files["cfg"], fork="alexeyab")


def test_alexeyab_resumes_from_its_checkpoint(alexeyab_install, darknet_tiny_dataset: Path, tmp_path: Path) -> None:
    """Segment training (periodic evaluation): 2 iterations, then on to 4 from its own _final weights."""
    files = render_tiny_yolo(tmp_path / "rendered", darknet_tiny_dataset, darknet="alexeyab")
    first = train_darknet(files["data"], files["cfg"], tmp_path / "run", install=alexeyab_install,
                          max_batches=2, show_progress=False)
    second = train_darknet(files["data"], files["cfg"], tmp_path / "run", install=alexeyab_install,
                           max_batches=4, show_progress=False)
    assert first.iterations == 2 and second.resumed_from is not None
    assert [int(r["iteration"]) for r in loss_rows(second.loss_csv)] == [1, 2, 3, 4]


@pytest.fixture(scope="module")
def alexeyab_random_weights(alexeyab_tiny_model: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_weights(alexeyab_tiny_model["files"]["cfg"], tmp_path_factory.mktemp("abrw") / "r.weights")


@pytest.mark.parametrize("letter_box", [1, 0])
def test_alexeyab_ctypes_equals_its_detector_valid(letter_box: int, alexeyab_install, alexeyab_tiny_model: dict,
                                                   alexeyab_random_weights: Path, tmp_path: Path) -> None:
    """Byte-equal files: AlexeyAB's libdarknet (its structs, threshold 0.001, NMS 0.6, letterbox or
    stretch as the cfg says) against its own `detector valid` on the same seeded random weights."""
    files, names = alexeyab_tiny_model["files"], alexeyab_tiny_model["names"]
    cfg = write_cfg_copy(files["cfg"], tmp_path / "cfg", {"net": {"letter_box": str(letter_box)}})
    valid = detect_darknet_valid(files["data"], cfg, alexeyab_random_weights, tmp_path / "valid",
                                 install=alexeyab_install, show_progress=False)
    dets = detect_darknet_ctypes(cfg, alexeyab_random_weights, alexeyab_tiny_model["images"], names,
                                 tmp_path / "ctypes", install=alexeyab_install)
    assert len(dets) > 100
    assert sorted_lines(tmp_path / "ctypes", names) == sorted_lines(valid, names)


# ----------------------------------------------------------------------------- its own evaluator


@pytest.fixture(scope="module")
def map_setup(alexeyab_tiny_model: dict, alexeyab_random_weights: Path, bccd_root: Path,
              tmp_path_factory: pytest.TempPathFactory) -> dict:
    """All 12 tiny-set BCCD images as detector map's valid list, and their VOC ids file."""
    root = tmp_path_factory.mktemp("abmap")
    darknet = Path(alexeyab_tiny_model["files"]["data"]).parent
    dataset = alexeyab_tiny_model["images"][0].parent.parent
    images = read_image_list(dataset / "train.txt") + read_image_list(dataset / "valid.txt")
    (root / "all.txt").write_text("\n".join(images) + "\n")
    data = root / "map.data"
    text = Path(alexeyab_tiny_model["files"]["data"]).read_text()
    data.write_text("".join(f"valid={root / 'all.txt'}\n" if line.startswith("valid=") else line + "\n"
                            for line in text.splitlines()))
    (root / "ids.txt").write_text("".join(Path(i).stem + "\n" for i in images))
    return {"data": data, "cfg": alexeyab_tiny_model["files"]["cfg"], "images": [Path(i) for i in images],
            "ids": root / "ids.txt", "names": alexeyab_tiny_model["names"], "root": root, "bccd": bccd_root,
            "cwd_for_data": darknet}


@pytest.mark.parametrize("points", [11, 0])
def test_detector_map_equals_harness_alexeyab_protocol(points: int, alexeyab_install, map_setup: dict,
                                                       alexeyab_random_weights: Path, tmp_path: Path) -> None:
    """AlexeyAB's `detector map -points N` and `harness evaluate --protocol alexeyab --points N` on the
    detections detector map itself scores (its libdarknet: threshold 0.005, NMS 0.45, letterbox, boxes
    unclipped): |Δ mAP| <= 0.001, per class within its printed precision."""
    from harness.data.voc import load_voc
    from harness.evaluation import evaluate_detections, read_detections
    from harness.frameworks.darknet.driver import darknet_map
    from harness.frameworks.darknet.libdarknet import ALEXEYAB_MAP
    from harness.labels import LabelMap

    ours_dir = tmp_path / "map_detections"
    dets = detect_darknet_ctypes(map_setup["cfg"], alexeyab_random_weights, map_setup["images"], map_setup["names"],
                                 ours_dir, install=alexeyab_install, rules=ALEXEYAB_MAP)
    assert len(dets) > 100
    theirs = darknet_map(map_setup["data"], map_setup["cfg"], alexeyab_random_weights, tmp_path / "map",
                         install=alexeyab_install, points=points)
    labelmap = LabelMap.from_names(map_setup["names"])
    truth = load_voc(map_setup["bccd"], map_setup["ids"], labelmap)
    ours = evaluate_detections(truth.images, read_detections(ours_dir, class_names=labelmap.names), labelmap,
                               "alexeyab", points=points)
    assert theirs["map"] > 0.0
    assert abs(ours["map"] - theirs["map"]) <= 0.001, (ours["map"], theirs)
    for name, ap in theirs["classes"].items():
        assert abs(ours["classes"][name]["ap"] - ap) <= 0.0001, (name, ours["classes"][name], ap)


# ----------------------------------------------------------------------------- the option, end to end


@pytest.mark.slow
def test_train_with_darknet_alexeyab_records_it_everywhere(alexeyab_install, bccd_root: Path, tmp_path: Path) -> None:
    """`harness train yolov3-tiny --darknet alexeyab` as a subprocess from another folder: config.json,
    summary.json, Table 1/2 and provenance say AlexeyAB; its training log became loss.csv/results.csv."""
    import json
    import os
    import subprocess
    import sys

    voc = tmp_path / "voc"
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (voc / sub).mkdir(parents=True)
    for split, count in (("trainval", 8), ("test", 4)):
        ids = (bccd_root / f"ImageSets/Main/{split}.txt").read_text().split()[:count]
        (voc / f"ImageSets/Main/{split}.txt").write_text("\n".join(ids) + "\n")
        for image_id in ids:
            shutil.copy(bccd_root / "Annotations" / f"{image_id}.xml", voc / "Annotations")
            (voc / "JPEGImages" / f"{image_id}.jpg").symlink_to(bccd_root / "JPEGImages" / f"{image_id}.jpg")
    (tmp_path / "cwd").mkdir()
    done = subprocess.run([sys.executable, "-m", "harness", "train", "yolov3-tiny", "--size", "128", "--profile", "smoke",
                           "--data", "../voc", "--project", "../runs", "--name", "ab", "--device", "cpu",
                           "--darknet", "alexeyab", "--iterations", "4", "--batch-size", "2"],
                          cwd=tmp_path / "cwd", capture_output=True, text=True, timeout=1200,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = tmp_path / "runs" / "ab"
    model = run / "models" / "yolov3-tiny_128"
    assert json.loads((model / "config.json").read_text())["framework_options"]["fork"] == "alexeyab"
    assert json.loads((model / "summary.json").read_text())["darknet"] == "alexeyab"
    assert "letter_box=1" in (model / "rendered" / "yolov3-tiny.cfg").read_text()
    assert [r["iteration"] for r in loss_rows(model / "results.csv")] == ["4"]
    assert "darknet (alexeyab)" in (run / "table1.csv").read_text()
    table2 = (run / "table2.csv").read_text()
    assert "darknet (alexeyab)" in table2 and "darknet-alexeyab-cpu" in table2
