"""scripts/patch_caffe_weiliu89.py on a fixture weiliu89 `ssd` tree (install_caffe.sh builds the real one).

The fixture files hold the weiliu89 code shapes the patch targets (two-argument SetTotalBytesLimit,
OpenCV 1/2 C constants, BVLC's DeviceQuery, SampleBBox's unclamped crop size); the tests check the
rewrite, idempotency and refusals. The last test checks the fixture against the pinned real tree.
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
SAMPLER_CPP = """void SampleBBox(const Sampler& sampler, NormalizedBBox* sampled_bbox) {
  // Figure out bbox dimension.
  float bbox_width = scale * sqrt(aspect_ratio);
  float bbox_height = scale / sqrt(aspect_ratio);

  // Figure out top left coordinates.
  float w_off, h_off;
  caffe_rng_uniform(1, 0.f, 1 - bbox_width, &w_off);
  caffe_rng_uniform(1, 0.f, 1 - bbox_height, &h_off);
}
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


def make_tree(root: Path, *, proto: str = PROTO, io_cpp: str = IO_CPP, sampler_cpp: str = SAMPLER_CPP) -> Path:
    files = {"src/caffe/proto/caffe.proto": proto, "src/caffe/util/io.cpp": io_cpp,
             "src/caffe/util/sampler.cpp": sampler_cpp,
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
    sampler = (tree / "src/caffe/util/sampler.cpp").read_text()
    assert "float bbox_width = std::min<float>(scale * sqrt(aspect_ratio), 1.f);" in sampler
    assert "float bbox_height = std::min<float>(scale / sqrt(aspect_ratio), 1.f);" in sampler
    assert "1 SetTotalBytesLimit calls, 2 SampleBBox clamps" in result.stdout and "DeviceQuery: patched" in result.stdout


def test_patch_is_idempotent(tmp_path):
    tree = make_tree(tmp_path / "caffe")
    assert run_patch(tree).returncode == 0
    once = snapshot(tree)
    again = run_patch(tree)
    assert again.returncode == 0, again.stderr
    assert snapshot(tree) == once
    assert "0 OpenCV names, 0 SetTotalBytesLimit calls, 0 SampleBBox clamps, DeviceQuery: already patched" in again.stdout


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


def test_a_changed_sampler_is_an_error(tmp_path):
    """A SampleBBox that no longer computes the size this way: say so rather than build an abort-prone Caffe."""
    tree = make_tree(tmp_path / "caffe", sampler_cpp=SAMPLER_CPP.replace("scale * sqrt", "scale*sqrt"))
    result = run_patch(tree)
    assert result.returncode == 1 and "no `float bbox_width = scale * sqrt(aspect_ratio);` to clamp" in result.stderr


def test_the_fixture_lines_are_the_pinned_trees(weiliu89_source):
    """The fixture's SampleBBox and SetTotalBytesLimit lines occur verbatim in the pinned weiliu89 tree."""
    real = {name: (weiliu89_source / name).read_text() for name in ("src/caffe/util/sampler.cpp", "src/caffe/util/io.cpp")}
    for line in ("float bbox_width = scale * sqrt(aspect_ratio);", "float bbox_height = scale / sqrt(aspect_ratio);",
                 "caffe_rng_uniform(1, 0.f, 1 - bbox_width, &w_off);"):
        assert line in real["src/caffe/util/sampler.cpp"], line
    assert "SetTotalBytesLimit(kProtoReadBytesLimit, 536870912)" in real["src/caffe/util/io.cpp"]


def test_missing_device_query_only_warns(tmp_path):
    """Only a CUDA 13 base needs the DeviceQuery fix: its absence must not stop the CUDA 11.8 build."""
    tree = make_tree(tmp_path / "caffe")
    (tree / "src/caffe/common.cpp").write_text("void Caffe::DeviceQuery() { }\n")
    result = run_patch(tree)
    assert result.returncode == 0, result.stderr
    assert "WARNING: DeviceQuery fix not applied" in result.stdout


def test_install_script_refuses_a_lock_without_the_weiliu89_commit(tmp_path):
    """Checked before anything is installed or built (exit 2, no apt, no download)."""
    import os

    lock = tmp_path / "sources.lock"
    lock.write_text("weiliu89-caffe https://github.com/weiliu89/caffe not-a-commit\n")
    env = {**os.environ, "HARNESS_CACHE": str(tmp_path / "cache"), "HARNESS_SOURCES_LOCK": str(lock)}
    result = subprocess.run(["bash", str(ROOT / "scripts/install_caffe.sh")], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "no commit for weiliu89-caffe" in result.stderr
    assert not (tmp_path / "cache").exists()
