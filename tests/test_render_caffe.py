"""Rendered prototxts against a real caffe.proto (strict: unknown fields fail) and pycaffe.

Needs the brocolli-caffe source (its caffe.proto) and protoc; skipped otherwise. With a built
pycaffe the deploy net is also instantiated by Caffe itself.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.render.dialect import candidate_proto_files, dialect_from_proto_text
from harness.render.ssd import render_ssd
from harness.render.verify import parse_with_caffe_proto

pytestmark = pytest.mark.caffe


def _brocolli_proto() -> Path:
    for proto in candidate_proto_files():
        if proto.is_file() and "old_resize_param" in proto.read_text(errors="replace"):
            return proto
    pytest.skip("no brocolli caffe.proto under $HARNESS_CAFFE_ROOT or the harness cache")


@pytest.fixture(scope="module")
def proto():
    import shutil

    if shutil.which("protoc") is None:
        pytest.skip("protoc not installed")
    return _brocolli_proto()


@pytest.mark.parametrize("size, smin", [(300, 0.2), (300, 0.1), (512, 0.2)])
def test_brocolli_dialect_parses_with_the_installed_caffe_proto(tmp_path, proto, size, smin):
    files = render_ssd(tmp_path / "r", size=size, smin=smin, dialect="brocolli")
    parse_with_caffe_proto(list(files.values()), proto, tmp_path / "pb")


def test_weiliu89_dialect_is_rejected_by_the_brocolli_proto(tmp_path, proto):
    """The strict parse can fail: the paper's dialect names fields this fork does not have."""
    files = render_ssd(tmp_path / "r", dialect="weiliu89")
    with pytest.raises(ValueError, match="resize_param"):
        parse_with_caffe_proto([files["train"]], proto, tmp_path / "pb")


def test_auto_dialect_reads_the_proto(proto):
    assert dialect_from_proto_text(proto.read_text(), str(proto)).dialect == "brocolli"


def _pycaffe_env(proto: Path):
    root = proto.parents[3]
    python_dir = root / "python"
    if not list(python_dir.glob("caffe/_caffe*.so")):
        pytest.skip(f"pycaffe not built under {python_dir}")
    return {**os.environ, "PYTHONPATH": f"{python_dir}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
            "GLOG_minloglevel": "2"}


def test_pycaffe_builds_the_deploy_net_with_8732_priors(tmp_path, proto):
    env = _pycaffe_env(proto)
    files = render_ssd(tmp_path / "r", dialect="brocolli")
    script = ("import sys, caffe; caffe.set_mode_cpu(); "
              "net = caffe.Net(sys.argv[1], caffe.TEST); "
              "print(net.blobs['mbox_priorbox'].data.shape[-1] // 4)")
    result = subprocess.run([sys.executable, "-c", script, str(files["deploy"])], env=env,
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
def test_pycaffe_runs_train_and_test_nets_on_bccd_lmdb(tmp_path, proto, bccd_root):
    """The AnnotatedData, MultiBoxLoss, DetectionOutput and DetectionEvaluate params work in Caffe."""
    from harness.data.convert import convert_dataset

    env = _pycaffe_env(proto)
    converted = convert_dataset(bccd_root, tmp_path / "bccd", progress=False)
    # num_test_image=1: a Caffe that saves detections writes its VOC files after this many images
    files = render_ssd(tmp_path / "r", dialect="brocolli", dataset=converted.out_dir, batch_size=2,
                       num_test_image=1)
    result = subprocess.run([sys.executable, "-c", _TRAIN_TEST_SCRIPT, str(files["train"]), str(files["test"])],
                            env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    loss, eval_width, priors = result.stdout.split()[-3:]
    assert np.isfinite(float(loss)) and float(loss) > 0
    assert int(eval_width) == 5 and int(priors) == 8732
    # brocolli's DetectionOutput reads save_output_param (label map, name-size file: both must load)
    # and recreates output_directory, but its file-writing code is commented out: no VOC files here.
    assert (tmp_path / "r/detections").is_dir()
