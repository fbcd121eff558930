"""Rendered SSD nets instantiated and run by the installed weiliu89 Caffe (pycaffe).

The strict parse against weiliu89's caffe.proto is tests/test_render_weiliu89.py; here Caffe itself
builds the deploy net and runs the train and test nets on BCCD's LMDB.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

from harness.render.ssd import render_ssd

pytestmark = pytest.mark.caffe


def _pycaffe_env(install) -> dict:
    return {**os.environ, **install.env(quiet=True)}


def test_pycaffe_builds_the_deploy_net_with_8732_priors(tmp_path, caffe_install):
    files = render_ssd(tmp_path / "r")
    assert "caffe dialect weiliu89" in files["deploy"].read_text()
    script = ("import sys, caffe; caffe.set_mode_cpu(); "
              "net = caffe.Net(sys.argv[1], caffe.TEST); "
              "print(net.blobs['mbox_priorbox'].data.shape[-1] // 4)")
    result = subprocess.run([sys.executable, "-c", script, str(files["deploy"])], env=_pycaffe_env(caffe_install),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "8732"


_TRAIN_TEST_SCRIPT = r"""
import sys, numpy as np, caffe
caffe.set_mode_cpu()
train = caffe.Net(sys.argv[1], caffe.TRAIN)
loss = float(train.forward()["mbox_loss"])
test = caffe.Net(sys.argv[2], caffe.TEST)
out = test.forward()
print(loss, out["detection_eval"].shape[-1], test.blobs["mbox_priorbox"].data.shape[-1] // 4)
"""


@pytest.mark.slow
def test_pycaffe_runs_train_and_test_nets_on_bccd_lmdb(tmp_path, caffe_install, bccd_root):
    """The AnnotatedData (with distort/expand), MultiBoxLoss, DetectionOutput and DetectionEvaluate params work."""
    from harness.data.convert import convert_dataset

    env = _pycaffe_env(caffe_install)
    converted = convert_dataset(bccd_root, tmp_path / "bccd", progress=False)
    # num_test_image=1: a Caffe that saves detections writes its VOC files after this many images
    files = render_ssd(tmp_path / "r", dataset=converted.out_dir, batch_size=2,
                       num_test_image=1)
    result = subprocess.run([sys.executable, "-c", _TRAIN_TEST_SCRIPT, str(files["train"]), str(files["test"])],
                            env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    loss, eval_width, priors = result.stdout.split()[-3:]
    assert np.isfinite(float(loss)) and float(loss) > 0
    assert int(eval_width) == 5 and int(priors) == 8732
    # weiliu89's DetectionOutput writes its VOC files after num_test_image images: one per class
    written = sorted(p.name for p in (tmp_path / "r/detections").glob("comp4_det_test_*.txt"))
    assert written == [f"comp4_det_test_{name}.txt" for name in sorted(converted.labelmap.names)]
