"""scripts/patch_caffe_weiliu89.py on a synthetic weiliu89 `ssd` tree (the real one is not reachable here).

The fixture files hold the weiliu89 code shapes the patch targets (two-argument SetTotalBytesLimit,
OpenCV 1/2 C constants, BVLC's DeviceQuery); the tests check the rewrite, idempotency and refusals.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "patch_caffe_weiliu89.py"

PROTO = """syntax = "proto2";
package caffe;
message TransformationParameter { optional ResizeParameter resize_param = 8;
  optional DistortionParameter distort_param = 13; optional ExpansionParameter expand_param = 14; }
message AnnotatedDataParameter { optional string label_map_file = 2; }
"""
IO_CPP = """const int kProtoReadBytesLimit = INT_MAX;
bool ReadProtoFromBinaryFile(const char* filename, Message* proto) {
  coded_input->SetTotalBytesLimit(kProtoReadBytesLimit, 536870912);
}
cv::Mat ReadImageToCVMat(const string& filename, const bool is_color) {
  int cv_read_flag = (is_color ? CV_LOAD_IMAGE_COLOR :
    CV_LOAD_IMAGE_GRAYSCALE);
}
"""
IM_TRANSFORMS_CPP = """void AdjustHue(const cv::Mat& in_img, cv::Mat* out_img) {
  cv::cvtColor(in_img, hsv, CV_BGR2HSV);
  cv::cvtColor(hsv, *out_img, CV_HSV2BGR);
  cv::line(img, a, b, color, 1, CV_AA);
}
"""
BBOX_UTIL_CPP = """  cv::VideoWriter writer(name, CV_FOURCC('D', 'I', 'V', 'X'), 30, size);
  cv::rectangle(image, bl, tr, CV_RGB(255, 255, 255), CV_FILLED);
"""
COMMON_CPP = """#ifdef CPU_ONLY
void Caffe::DeviceQuery() { NO_GPU; }
#else
void Caffe::DeviceQuery() {
  cudaDeviceProp prop;
  LOG(INFO) << "Clock rate:                    " << prop.clockRate;
  LOG(INFO) << "Concurrent copy and execution: "
      << (prop.deviceOverlap ? "Yes" : "No");
  LOG(INFO) << "Kernel execution timeout:      "
      << (prop.kernelExecTimeoutEnabled ? "Yes" : "No");
}
#endif
"""


def make_tree(root: Path, *, proto: str = PROTO, io_cpp: str = IO_CPP) -> Path:
    files = {"src/caffe/proto/caffe.proto": proto, "src/caffe/util/io.cpp": io_cpp,
             "src/caffe/util/im_transforms.cpp": IM_TRANSFORMS_CPP, "src/caffe/util/bbox_util.cpp": BBOX_UTIL_CPP,
             "src/caffe/common.cpp": COMMON_CPP, "Makefile": "BUILD_DIR := build\n"}
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


def run_patch(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), str(tree)], capture_output=True, text=True, timeout=60)


def snapshot(tree: Path) -> dict[str, str]:
    return {str(p.relative_to(tree)): p.read_text() for p in sorted(tree.rglob("*")) if p.is_file()}


def test_patch_rewrites_what_ubuntu_22_04_rejects(tmp_path):
    tree = make_tree(tmp_path / "caffe")
    result = run_patch(tree)
    assert result.returncode == 0, result.stderr
    io_cpp = (tree / "src/caffe/util/io.cpp").read_text()
    assert "SetTotalBytesLimit(kProtoReadBytesLimit);" in io_cpp and "536870912" not in io_cpp
    assert "cv::IMREAD_COLOR" in io_cpp and "CV_LOAD_IMAGE" not in io_cpp
    transforms = (tree / "src/caffe/util/im_transforms.cpp").read_text()
    assert "cv::COLOR_BGR2HSV" in transforms and "cv::COLOR_HSV2BGR" in transforms and "cv::LINE_AA" in transforms
    bbox = (tree / "src/caffe/util/bbox_util.cpp").read_text()
    assert "cv::VideoWriter::fourcc(" in bbox and "cv::FILLED" in bbox
    assert "CV_RGB(255, 255, 255)" in bbox                       # still defined by OpenCV 4: left alone
    common = (tree / "src/caffe/common.cpp").read_text()
    assert "cudaDevAttrClockRate" in common and "prop.clockRate" not in common
    assert "1 SetTotalBytesLimit calls" in result.stdout and "DeviceQuery: patched" in result.stdout


def test_patch_is_idempotent(tmp_path):
    tree = make_tree(tmp_path / "caffe")
    assert run_patch(tree).returncode == 0
    once = snapshot(tree)
    again = run_patch(tree)
    assert again.returncode == 0, again.stderr
    assert snapshot(tree) == once
    assert "0 OpenCV names, 0 SetTotalBytesLimit calls, DeviceQuery: already patched" in again.stdout


def test_a_tree_without_the_ssd_fields_is_refused(tmp_path):
    """brocolli-caffe (no distort_param) or plain BVLC Caffe: not the paper's Caffe."""
    tree = make_tree(tmp_path / "caffe", proto=PROTO.replace("distort_param", "old_resize_param"))
    result = run_patch(tree)
    assert result.returncode != 0 and "not weiliu89's `ssd` branch" in result.stderr
    assert "CV_LOAD_IMAGE_COLOR" in (tree / "src/caffe/util/io.cpp").read_text()


def test_changed_source_is_an_error_not_a_silent_skip(tmp_path):
    tree = make_tree(tmp_path / "caffe", io_cpp=IO_CPP.replace("SetTotalBytesLimit", "SetTotalLimit"))
    result = run_patch(tree)
    assert result.returncode == 1 and "no SetTotalBytesLimit" in result.stderr


def test_missing_device_query_only_warns(tmp_path):
    """Only a CUDA 13 base needs the DeviceQuery fix: its absence must not stop the CUDA 11.8 build."""
    tree = make_tree(tmp_path / "caffe")
    (tree / "src/caffe/common.cpp").write_text("void Caffe::DeviceQuery() { }\n")
    result = run_patch(tree)
    assert result.returncode == 0, result.stderr
    assert "WARNING: DeviceQuery fix not applied" in result.stdout


@pytest.mark.parametrize("env, message", [
    ({"HARNESS_CAFFE_FORK": "weiliu89"}, "needs HARNESS_CAFFE_COMMIT"),
    ({"HARNESS_CAFFE_FORK": "weiliu89", "HARNESS_CAFFE_COMMIT": "4817bf8b4200b35ada8ed0dc378dceaf38c539e4"},
     "needs HARNESS_CAFFE_SOURCE_DIR"),
    ({"HARNESS_CAFFE_FORK": "bvlc"}, "unknown HARNESS_CAFFE_FORK"),
])
def test_install_script_refuses_an_incomplete_weiliu89_request(tmp_path, env, message):
    """Checked before anything is installed or built (exit 2, no apt, no download)."""
    import os

    full_env = {**os.environ, "HARNESS_CACHE": str(tmp_path / "cache"), **env}
    result = subprocess.run(["bash", str(ROOT / "scripts/install_caffe.sh")], env=full_env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and message in result.stderr
    assert not (tmp_path / "cache").exists()
