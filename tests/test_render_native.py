"""Rendered files on real data: BCCD converted by the data stage, read by Darknet and anchors k-means."""
import shutil
import subprocess

import pytest

from harness.frameworks.darknet.cfg import random_weights_bytes
from harness.render.yolo import render_yolo


@pytest.fixture(scope="module")
def bccd_converted(bccd_root, tmp_path_factory):
    from harness.data.convert import convert_dataset

    return convert_dataset(bccd_root, tmp_path_factory.mktemp("bccd") / "converted", progress=False)


def test_anchors_auto_uses_only_the_training_labels(bccd_converted, tmp_path):
    files = render_yolo(tmp_path, model="yolov3", size=416, dataset=bccd_converted.out_dir, anchors="auto")
    note = files["cfg"].read_text().splitlines()[1]
    train_boxes = sum(n for cls, n in bccd_converted.counts["train"]["objects_per_class"].items())
    assert f"on {train_boxes} boxes from {len(bccd_converted.train_ids)} label files" in note
    assert "classes=3" in files["cfg"].read_text()   # the dataset's label map, not the paper's


@pytest.mark.darknet
def test_darknet_validates_with_the_rendered_tiny_cfg(bccd_converted, tmp_path):
    darknet = shutil.which("darknet")
    if darknet is None:
        pytest.skip("darknet not installed (apt-get install darknet)")
    images = (bccd_converted.out_dir / "darknet/valid.txt").read_text().split()[:5]
    valid = tmp_path / "valid.txt"
    valid.write_text("".join(f"{p}\n" for p in images))
    files = render_yolo(tmp_path / "r", model="yolov3-tiny", size=128, dataset=bccd_converted.out_dir,
                        valid_list=valid)
    weights = tmp_path / "random.weights"
    weights.write_bytes(random_weights_bytes(files["cfg"]))
    result = subprocess.run([darknet, "detector", "valid", str(files["data"]), str(files["cfg"]), str(weights)],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    written = sorted(p.name for p in (tmp_path / "r/results").iterdir())
    assert written == [f"comp4_det_test_{n}.txt" for n in sorted(bccd_converted.labelmap.names)]
