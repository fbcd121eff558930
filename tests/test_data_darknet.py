"""Darknet itself finds and reads the converted YOLO labels (one tiny training iteration)."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.data.convert import convert_dataset

from test_data_voc import make_sample

DEBIAN_CFG = Path("/usr/share/darknet/cfg/yolov3-tiny.cfg")


def _tiny_cfg(classes: int) -> str:
    """Debian's yolov3-tiny.cfg shrunk to one 64x64 iteration of batch 4, no augmentation."""
    text = DEBIAN_CFG.read_text()
    for pattern, value in ((r"(?m)^batch=\d+", "batch=4"), (r"(?m)^subdivisions=\d+", "subdivisions=1"),
                           (r"(?m)^width=\d+", "width=64"), (r"(?m)^height=\d+", "height=64"),
                           (r"(?m)^max_batches\s*=\s*\d+", "max_batches=1"), (r"(?m)^burn_in=\d+", "burn_in=0"),
                           (r"(?m)^filters=255", f"filters={3 * (classes + 5)}"),
                           (r"(?m)^classes=\d+", f"classes={classes}"), (r"(?m)^random=1", "random=0"),
                           (r"(?m)^jitter=[.\d]+", "jitter=0"), (r"(?m)^angle=.*", "angle=0"),
                           (r"(?m)^(saturation|exposure)\s*=.*", r"\1=1"), (r"(?m)^hue=.*", "hue=0")):
        text = re.sub(pattern, value, text)
    return text


@pytest.mark.darknet
def test_darknet_training_reads_every_converted_box(tmp_path):
    darknet = shutil.which("darknet")
    if darknet is None or not DEBIAN_CFG.is_file():
        pytest.skip("Debian darknet (apt-get install darknet) not installed")
    voc = tmp_path / "voc"
    for i in range(8):        # 3 boxes per image, so a batch of 4 holds 12 ground-truth boxes
        make_sample(voc, f"im{i}", [("cat", 2, 2, 30, 30), ("dog", 30, 10, 62, 46), ("cat", 40, 2, 60, 20)])
    result = convert_dataset(voc, tmp_path / "out", workers=1, progress=False)
    data_file = tmp_path / "obj.data"
    (tmp_path / "backup").mkdir()
    data_file.write_text(f"classes=2\ntrain={result.out_dir}/darknet/train.txt\n"
                         f"names={result.out_dir}/darknet/obj.names\nbackup={tmp_path}/backup\n")
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(_tiny_cfg(2))
    done = subprocess.run([darknet, "detector", "train", str(data_file), str(cfg)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-2000:]
    counts = [int(c) for c in re.findall(r"Region \d+ Avg IOU: .*?count: (\d+)", log)]
    assert counts and sum(counts) == 12, log[-2000:]
    assert (tmp_path / "backup" / "tiny_final.weights").is_file()
