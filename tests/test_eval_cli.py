"""``harness evaluate`` end to end: BCCD ground truth, detections from the frameworks' writers."""
from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.evaluation import evaluate_detections, read_detections
from harness.evaluation.detections import Detections, write_voc_detections

BCCD_CLASSES = ("Platelets", "RBC", "WBC")


def run_cli(*args: str):
    try:  # click < 8.2 mixes stderr into output unless told not to; 8.2 keeps them apart
        runner = CliRunner(mix_stderr=False)
    except TypeError:
        runner = CliRunner()
    return runner.invoke(main, ["evaluate", *args], catch_exceptions=False)


def ground_truth_detections(bccd_root: Path, split: str = "test") -> Detections:
    from harness.data.voc import load_voc

    dataset = load_voc(bccd_root, split)
    rng = np.random.default_rng(0)
    return Detections.from_records(
        {"image_id": im.image_id, "class": o.name, "score": float(rng.random()),
         "bbox": [o.xmin, o.ymin, o.xmax, o.ymax]}
        for im in dataset.images for o in im.objects
    )


def test_perfect_detections_score_one(bccd_root, tmp_path):
    write_voc_detections(ground_truth_detections(bccd_root), tmp_path / "dets", class_names=BCCD_CLASSES)
    for protocol in ("voc07", "voc12", "coco"):
        result = run_cli("--gt", str(bccd_root), "--image-set", "test", "--detections", str(tmp_path / "dets"),
                         "--protocol", protocol, "--classification", "--out", str(tmp_path / protocol))
        assert result.exit_code == 0, result.output + result.stderr
        metrics = json.loads((tmp_path / protocol / "metrics.json").read_text())
        assert metrics["protocol"] == protocol
        assert metrics["map"] == pytest.approx(1.0)
        assert set(metrics["classes"]) == set(BCCD_CLASSES)
        assert all(c["fp"] == 0 and c["tp"] == c["npos"] > 0 for c in metrics["classes"].values())
        assert set(metrics["pr"]) == set(BCCD_CLASSES)
        assert metrics["inputs"]["gt_images_kept"] == 72
        classification = json.loads((tmp_path / protocol / "classification.json").read_text())
        assert classification["columns"][-1] == "no detection"
        assert classification["mean_accuracy"] == 1.0


def test_detections_outside_the_split_are_counted_or_refused(bccd_root, tmp_path):
    dets = ground_truth_detections(bccd_root, "trainval")  # none of these images are in 'test'
    write_voc_detections(dets, tmp_path / "dets", class_names=BCCD_CLASSES)
    args = ["--gt", str(bccd_root), "--image-set", "test", "--detections", str(tmp_path / "dets"), "--out", str(tmp_path / "o")]
    result = run_cli(*args)
    assert result.exit_code == 0
    assert "unknown_image_ids" in result.stderr
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["warnings"]["unknown_image_ids"]["detections"] == len(dets)
    assert metrics["map"] == 0.0
    strict = run_cli(*args, "--strict")
    assert strict.exit_code != 0 and "not in the ground truth" in strict.stderr


def test_malformed_detection_file_is_a_clean_cli_error(bccd_root, tmp_path):
    (tmp_path / "dets").mkdir()
    (tmp_path / "dets" / "comp4_det_test_RBC.txt").write_text("BloodImage_00000 0.5 1 2 3\n")
    result = run_cli("--gt", str(bccd_root), "--image-set", "test", "--detections", str(tmp_path / "dets"),
                     "--out", str(tmp_path / "o"))
    assert result.exit_code != 0
    assert "comp4_det_test_RBC.txt:1: expected 6 columns" in result.stderr


def test_unknown_class_file_is_a_clean_cli_error(bccd_root, tmp_path):
    (tmp_path / "dets").mkdir()
    (tmp_path / "dets" / "comp4_det_test_Neutrophil.txt").write_text("")
    result = run_cli("--gt", str(bccd_root), "--image-set", "test", "--detections", str(tmp_path / "dets"),
                     "--out", str(tmp_path / "o"))
    assert result.exit_code != 0 and "matches no class" in result.stderr


# --- the real Darknet writer -----------------------------------------------------------------------
TINY_CFG = Path("/usr/share/darknet/cfg/yolov3-tiny.cfg")


def _tiny_cfg(path: Path, classes: int) -> None:
    text = TINY_CFG.read_text()
    text = re.sub(r"classes=\d+", f"classes={classes}", text)
    text = re.sub(r"filters=255", f"filters={3 * (classes + 5)}", text)
    text = re.sub(r"(?m)^width=\d+", "width=128", text)
    text = re.sub(r"(?m)^height=\d+", "height=128", text)
    path.write_text(text.replace("random=1", "random=0"))


def _random_weights(cfg: Path, layer_log: str, out: Path, classes: int) -> None:
    """Random conv weights, objectness biased up, so an untrained net still emits boxes."""
    bn = ["batch_normalize=1" in body for name, body in re.findall(r"(?m)^\[(\w+)\]([^\[]*)", cfg.read_text())
          if name == "convolutional"]
    convs = re.findall(r"conv\s+(\d+)\s+(\d+) x\s*\d+ / \d+\s+\d+ x\s*\d+ x\s*(\d+)", layer_log)
    assert len(bn) == len(convs) > 0
    rng = np.random.default_rng(0)
    with out.open("wb") as f:
        f.write(struct.pack("<iiiQ", 0, 2, 0, 0))  # major, minor, revision, seen
        for has_bn, (n, size, c) in zip(bn, convs):
            n, k = int(n), int(size) ** 2 * int(c)
            bias = np.zeros(n, np.float32)
            if not has_bn:
                bias[4::classes + 5] = 2.0
            f.write(bias.tobytes())
            if has_bn:
                f.write(np.ones(n, np.float32).tobytes() + np.zeros(n, np.float32).tobytes() + np.ones(n, np.float32).tobytes())
            f.write(rng.normal(0, (2.0 / k) ** 0.5, n * k).astype(np.float32).tobytes())


@pytest.mark.darknet
def test_real_darknet_valid_output(bccd_root, tmp_path):
    if shutil.which("darknet") is None or not TINY_CFG.is_file():
        pytest.skip("darknet (apt package) not installed")
    ids = (bccd_root / "ImageSets/Main/test.txt").read_text().split()[:6]
    (tmp_path / "valid.txt").write_text("".join(f"{bccd_root}/JPEGImages/{i}.jpg\n" for i in ids))
    (tmp_path / "ids.txt").write_text("\n".join(ids) + "\n")
    (tmp_path / "obj.names").write_text("\n".join(BCCD_CLASSES) + "\n")
    (tmp_path / "results").mkdir()
    (tmp_path / "obj.data").write_text(
        f"classes=3\nvalid={tmp_path}/valid.txt\nnames={tmp_path}/obj.names\nresults={tmp_path}/results\neval=voc\n")
    cfg = tmp_path / "tiny.cfg"
    _tiny_cfg(cfg, 3)
    probe = subprocess.run(["darknet", "detector", "valid", str(tmp_path / "obj.data"), str(cfg)],
                           capture_output=True, text=True, cwd=tmp_path, timeout=120)
    _random_weights(cfg, probe.stderr, tmp_path / "w.weights", 3)
    run = subprocess.run(["darknet", "detector", "valid", str(tmp_path / "obj.data"), str(cfg), str(tmp_path / "w.weights")],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    files = sorted((tmp_path / "results").glob("comp4_det_test_*.txt"))
    assert [f.name for f in files] == [f"comp4_det_test_{c}.txt" for c in BCCD_CLASSES], run.stderr[-2000:]
    lines = sum(len(f.read_text().splitlines()) for f in files)
    assert lines > 0, "darknet wrote no detections; the weights trick no longer works"

    result = run_cli("--gt", str(bccd_root), "--image-set", str(tmp_path / "ids.txt"), "--detections",
                     str(tmp_path / "results"), "--labelmap", str(tmp_path / "obj.names"), "--protocol", "voc12",
                     "--classification", "--out", str(tmp_path / "eval"))
    assert result.exit_code == 0, result.stderr
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["n_detections"] == lines  # every line was scored: nothing dropped
    assert set(metrics["warnings"]) <= {"flagged_detections"}  # inverted off-image boxes: kept, counted
    assert 0.0 <= metrics["map"] <= 1.0

    # The same real detections through the coco protocol agree with pycocotools.
    from harness.data.voc import load_voc
    from test_eval_coco import pycocotools_per_class

    dataset = load_voc(bccd_root, tmp_path / "ids.txt")
    dets = read_detections(tmp_path / "results", class_names=BCCD_CLASSES)
    ours = evaluate_detections(dataset.images, dets, dataset.labelmap, "coco")
    ap, _ = pycocotools_per_class(dataset.images, dets.to_records(), dataset.labelmap)
    for name, value in ap.items():
        assert ours["classes"][name]["ap"] == pytest.approx(value, abs=1e-9)
