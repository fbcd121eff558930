"""Real Caffe runs: tiny SSD training on a mini BCCD LMDB, resume, failure detection, detection,
the OpenCV DNN cross-check and timing. Needs the Caffe-SSD build (scripts/install_caffe.sh)."""
from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from harness.frameworks.caffe.detect import detect_caffe, detect_opencv_caffe, time_caffe

from harness.frameworks.caffe.install import inspect_caffe

from harness.frameworks.caffe.train import snapshots, train_caffe
from harness.core.types import NativeFrameworkError
from harness.evaluation.detections import read_detections
from harness.labels import LabelMap
from harness.parse.caffe_log import parse_caffe_log

pytestmark = pytest.mark.caffe

FIXTURES = Path(__file__).parent / "fixtures" / "caffe_tiny"


def mini_voc(bccd_root: Path, out: Path, n_train: int = 6, n_test: int = 4) -> Path:
    """A VOC folder with the first BCCD train/test ids (symlinked images, copied XML)."""
    main = out / "ImageSets" / "Main"
    main.mkdir(parents=True)
    (out / "Annotations").mkdir()
    (out / "JPEGImages").mkdir()
    for split, count in (("train", n_train), ("test", n_test)):
        ids = (bccd_root / "ImageSets/Main" / f"{split}.txt").read_text().split()[:count]
        (main / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
        for image_id in ids:
            (out / "Annotations" / f"{image_id}.xml").write_bytes((bccd_root / "Annotations" / f"{image_id}.xml").read_bytes())
            (out / "JPEGImages" / f"{image_id}.jpg").symlink_to(bccd_root / "JPEGImages" / f"{image_id}.jpg")
    return out


def render_tiny_ssd(out: Path, dataset: Path, num_classes: int, dialect: str, *, max_iter: int = 4,
                    snapshot: int = 2, base_lr: float = 0.001, test_interval: int = 1000) -> dict[str, Path]:
    """Fill the fixture templates; ``num_classes`` includes the background class."""
    out.mkdir(parents=True, exist_ok=True)
    parts = {name: (FIXTURES / f"{name}.inc").read_text() for name in ("body", "head")}
    values = {
        "@BODY@": parts["body"], "@HEAD@": parts["head"],
        "@CONF_OUTPUTS@": str(4 * num_classes), "@NUM_CLASSES@": str(num_classes),
        "@RESIZE_PARAM@": "old_resize_param" if dialect == "brocolli" else "resize_param",
        "@TRAIN_LMDB@": str(dataset / "caffe/train_lmdb"), "@TEST_LMDB@": str(dataset / "caffe/test_lmdb"),
        "@LABELMAP@": str(dataset / "caffe/labelmap.prototxt"),
        "@TRAIN_NET@": str(out / "train.prototxt"), "@TEST_NET@": str(out / "test.prototxt"),
        "@TEST_ITER@": "2", "@TEST_INTERVAL@": str(test_interval), "@BASE_LR@": repr(base_lr),
        "@MAX_ITER@": str(max_iter), "@SNAPSHOT@": str(snapshot),
        "@SNAPSHOT_PREFIX@": str(out / "snapshots" / "tiny"),
    }
    written = {}
    for role in ("train", "test", "deploy", "solver"):
        text = (FIXTURES / f"{role}.prototxt.in").read_text()
        for _ in range(2):                      # body/head contain placeholders themselves
            for key, value in values.items():
                text = text.replace(key, value)
        path = out / f"{role}.prototxt"
        path.write_text(text)
        written[role] = path
    (out / "snapshots").mkdir(exist_ok=True)
    return written


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def dialect(caffe_install) -> str:
    return inspect_caffe().details["dialect"]


@pytest.fixture(scope="module")
def tiny_dataset(bccd_root, tmp_path_factory):
    """6 train + 4 test BCCD images converted by the data stage into LMDBs."""
    from harness.data.convert import convert_dataset

    base = tmp_path_factory.mktemp("caffe_data")
    voc = mini_voc(bccd_root, base / "voc")
    result = convert_dataset(voc, base / "converted", progress=False)
    return result


@pytest.fixture(scope="module")
def trained(caffe_install, tiny_dataset, dialect, tmp_path_factory):
    """One real 4-iteration training (snapshots at 2 and 4) shared by the tests below."""
    work = tmp_path_factory.mktemp("caffe_train")
    nets = render_tiny_ssd(work / "net", tiny_dataset.out_dir, len(tiny_dataset.labelmap) + 1, dialect)
    result = train_caffe(nets["solver"], work / "run", progress=False)
    return nets, result, tiny_dataset


def test_tiny_training_writes_log_loss_csv_and_snapshots(trained):
    nets, result, _ = trained
    assert result.iterations == 4 and result.weights.name == "tiny_iter_4.caffemodel"
    assert result.weights.is_file() and result.resumed_from is None
    with result.loss_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["iteration"]) for r in rows] == [0, 1, 2, 3, 4]
    assert all(math.isfinite(float(r["loss"])) and float(r["loss"]) > 0 for r in rows)
    assert all(r["lr"] == "0.001" for r in rows[:-1])
    log = result.log_path.read_text()
    assert "Optimization Done." in log and "Snapshotting to binary proto file" in log


def test_resume_continues_from_the_last_solverstate(trained, tmp_path):
    nets, first, _ = trained
    net_dir = tmp_path / "net"
    shutil.copytree(nets["solver"].parent, net_dir)
    solver = net_dir / "solver.prototxt"
    solver.write_text(solver.read_text().replace(str(nets["solver"].parent), str(net_dir)))
    for state in (net_dir / "snapshots").glob("tiny_iter_4.*"):
        state.unlink()                                     # pretend the run stopped after iteration 2
    resumed = train_caffe(solver, tmp_path / "run", max_iter=6, progress=False)
    assert resumed.resumed_from.name == "tiny_iter_2.solverstate"
    assert resumed.iterations == 6
    assert [n for n, _ in snapshots(net_dir / "snapshots" / "tiny", ".caffemodel")] == [2, 4, 6]
    assert parse_caffe_log(tmp_path / "run" / "train.log").restored_from == [resumed.resumed_from]
    with resumed.loss_csv.open() as handle:
        iterations = [int(r["iteration"]) for r in csv.DictReader(handle)]
    assert iterations[0] == 2 and iterations[-1] == 6
    again = train_caffe(solver, tmp_path / "run", max_iter=6, progress=False)
    assert again.iterations == 6 and again.seconds == 0.0     # nothing left to do: Caffe not re-run


def test_interrupted_run_keeps_log_loss_csv_and_snapshots_and_resumes(trained, tmp_path):
    """Ctrl-C during training: KeyboardInterrupt raised in the progress callback at iteration 5."""
    nets, _, _ = trained
    solver = tmp_path / "solver.prototxt"
    solver.write_text(nets["solver"].read_text().replace(str(nets["solver"].parent / "snapshots"), str(tmp_path / "snaps")))

    def press_ctrl_c(progress):
        if progress.iteration >= 5:
            raise KeyboardInterrupt

    with pytest.raises(NativeFrameworkError, match="interrupted.*run again to resume from .*solverstate"):
        train_caffe(solver, tmp_path / "run", max_iter=1_000_000, progress=press_ctrl_c)
    states = snapshots(tmp_path / "snaps" / "tiny", ".solverstate")
    assert states and (tmp_path / "run" / "loss.csv").read_text().count("\n") > 2
    resumed = train_caffe(solver, tmp_path / "run", max_iter=states[-1][0] + 2, progress=False)
    assert resumed.resumed_from == states[-1][1] and resumed.iterations == states[-1][0] + 2


def test_parse_error_in_the_net_is_a_clear_error_with_log_tail(trained, tmp_path):
    nets, _, _ = trained
    bad_train = tmp_path / "train.prototxt"
    bad_train.write_text(nets["train"].read_text().replace('type: "ReLU"', 'type: "ReLU" no_such_field: 1', 1))
    solver = tmp_path / "solver.prototxt"
    solver.write_text(nets["solver"].read_text().replace(str(nets["train"]), str(bad_train))
                      .replace(str(nets["solver"].parent / "snapshots"), str(tmp_path / "snaps")))
    with pytest.raises(NativeFrameworkError, match="no_such_field|Check failed") as caught:
        train_caffe(solver, tmp_path / "run", progress=False)
    assert "last lines of the native log" in str(caught.value)
    assert (tmp_path / "run" / "train.log").read_text()       # the log is kept


def test_nan_loss_is_reported_even_though_caffe_exits_0(trained, tmp_path):
    nets, _, _ = trained
    solver = tmp_path / "solver.prototxt"
    solver.write_text(nets["solver"].read_text().replace("base_lr: 0.001", "base_lr: 1e+30")
                      .replace(str(nets["solver"].parent / "snapshots"), str(tmp_path / "snaps")))
    with pytest.raises(NativeFrameworkError, match="NaN"):
        train_caffe(solver, tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "loss.csv").is_file()          # what was parsed is still written


def test_missing_solver_names_the_file(caffe_install, tmp_path):
    with pytest.raises(NativeFrameworkError, match="nope.prototxt"):
        train_caffe(tmp_path / "nope.prototxt", tmp_path / "run")


@pytest.fixture(scope="module")
def detections(trained, tmp_path_factory):
    nets, result, dataset = trained
    test_ids = dataset.test_ids
    images = [dataset.out_dir / "darknet/JPEGImages" / f"{i}.jpg" for i in test_ids]
    labels = LabelMap.from_file(dataset.out_dir / "caffe/labelmap.prototxt")
    out = tmp_path_factory.mktemp("caffe_det")
    pycaffe_dir = detect_caffe(nets["deploy"], result.weights, images, labels, out / "pycaffe")
    opencv_dir = detect_opencv_caffe(nets["deploy"], result.weights, images, labels, out / "opencv")
    return labels, images, pycaffe_dir, opencv_dir


def test_detect_caffe_writes_per_class_voc_files_that_parse(detections):
    labels, images, pycaffe_dir, _ = detections
    assert sorted(p.name for p in pycaffe_dir.glob("*.txt")) == sorted(f"comp4_det_test_{n}.txt" for n in labels.names)
    dets = read_detections(pycaffe_dir, class_names=labels.names)
    assert len(dets) > 0                                       # random-ish weights still give boxes over 0.01
    ids = {Path(p).stem for p in images}
    for name in labels.names:
        d = dets[name]
        assert set(d.image_ids.tolist()) <= ids
        assert np.all(d.boxes >= 0) and np.all(d.boxes[:, 2] <= 640) and np.all(d.boxes[:, 3] <= 480)
        assert np.all(d.scores >= 0.01)
    summary = json.loads((pycaffe_dir / "detections_summary.json").read_text())
    assert summary["images"] == len(images) and summary["detections"] == len(dets)


def test_opencv_dnn_agrees_with_pycaffe(detections):
    """Two independent implementations of the same deploy net: same detections to 1e-4.

    Scores to 1e-4 absolute, boxes to 1e-4 of the image width (normalised coordinates). The
    two backends list detections in different orders, so each pycaffe row is matched to one
    OpenCV row of the same image.
    """
    labels, _, pycaffe_dir, opencv_dir = detections
    ours = read_detections(pycaffe_dir, class_names=labels.names)
    theirs = read_detections(opencv_dir, class_names=labels.names)
    assert len(ours) == len(theirs) > 0
    for name in labels.names:
        unmatched = _rows(theirs[name])
        for row in _rows(ours[name]):
            match = next((other for other in unmatched if _same_detection(row, other)), None)
            assert match is not None, f"{name}: pycaffe detection {row} has no OpenCV counterpart"
            unmatched.remove(match)
        assert not unmatched, f"{name}: OpenCV-only detections {unmatched[:3]}"


def _rows(d) -> list[tuple]:
    return [(i, s, *b) for i, s, b in zip(d.image_ids.tolist(), d.scores.tolist(), d.boxes.tolist())]


def _same_detection(a: tuple, b: tuple) -> bool:
    return (a[0] == b[0] and abs(a[1] - b[1]) <= 1e-4
            and all(abs(x - y) <= 1e-4 * 640 for x, y in zip(a[2:], b[2:])))


def test_batched_detection_matches_batch_1(trained, detections, tmp_path):
    nets, result, _ = trained
    labels, images, pycaffe_dir, _ = detections
    batched = detect_caffe(nets["deploy"], result.weights, images, labels, tmp_path / "b3", batch=3)
    single = read_detections(pycaffe_dir, class_names=labels.names)
    several = read_detections(batched, class_names=labels.names)
    for name in labels.names:
        unmatched = _rows(several[name])
        for row in _rows(single[name]):
            match = next((other for other in unmatched if _same_detection(row, other)), None)
            assert match is not None, f"{name}: {row} missing from the batch-3 run"
            unmatched.remove(match)
        assert not unmatched


def test_detect_caffe_rejects_missing_images_and_weights(trained, detections, tmp_path):
    nets, result, _ = trained
    labels = detections[0]
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        detect_caffe(nets["deploy"], result.weights, [tmp_path / "nope.jpg"], labels, tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="missing.caffemodel: weights not found"):
        detect_caffe(nets["deploy"], tmp_path / "missing.caffemodel", detections[1][:1], labels, tmp_path / "y")
    garbage = tmp_path / "garbage.caffemodel"
    garbage.write_bytes(b"not a caffemodel")
    with pytest.raises(NativeFrameworkError, match="pycaffe detect failed") as caught:
        detect_caffe(nets["deploy"], garbage, detections[1][:1], labels, tmp_path / "z")
    assert caught.value.log_tail                       # Caffe's own complaint comes along


def test_time_caffe_reports_batch1_latency(trained, tmp_path):
    nets, result, dataset = trained
    images = [dataset.out_dir / "darknet/JPEGImages" / f"{i}.jpg" for i in dataset.test_ids]
    timing = time_caffe(nets["deploy"], result.weights, images, n=5, warmup=1, out_path=tmp_path / "timing.json")
    assert timing["backend"] == "caffe-cpu" and timing["n_images"] == 5 and timing["warmup"] == 1
    assert 0 < timing["median_ms"] <= timing["p90_ms"]
    assert json.loads((tmp_path / "timing.json").read_text())["median_ms"] == timing["median_ms"]
