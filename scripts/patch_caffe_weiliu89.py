#!/usr/bin/env python3
"""Source fixes weiliu89/caffe (`ssd` branch, 2016-2018 code) needs on Debian 12 and the GPU image's Ubuntu 22.04.

The paper's Caffe predates OpenCV 4, protobuf >= 3.7's CodedInputStream API and CUDA 13. Each fix is
valid on the old libraries too, so one source tree builds everywhere:

1. OpenCV 4 removed the legacy C constants (CV_LOAD_IMAGE_COLOR, CV_BGR2HSV, CV_FOURCC, ...):
   the same rewrite scripts/patch_caffe_opencv4.py applies to brocolli-caffe (a descendant of this
   code), plus CV_AA -> cv::LINE_AA. The C++ names exist since OpenCV 3.
2. protobuf deprecated the two-argument CodedInputStream::SetTotalBytesLimit(limit, warn) in 3.7 and
   later releases dropped it; the one-argument form exists since 3.7 (Ubuntu 22.04 ships 3.12).
3. CUDA 13 removed three cudaDeviceProp fields Caffe::DeviceQuery prints: the fix from
   scripts/patch_caffe_gpu.py, applied when the BVLC DeviceQuery code is there (a warning otherwise:
   only a CUDA 13 base needs it; the image's default base is CUDA 11.8).
4. SampleBBox (src/caffe/util/sampler.cpp, SSD's random-crop batch_sampler) computes the sampled box
   as scale * sqrt(aspect_ratio) in float, which can round to 1 + 1.2e-7; the following
   caffe_rng_uniform(0, 1 - width) then aborts training with `math_functions.cpp:250 Check failed:
   a <= b (0 vs. -1.19209e-07)`. Width and height are clamped to 1, as the unmerged upstream commit
   4ca51d9f ("Make sure bbox_width & bbox_height <= 1.0") does.
cuDNN is not patched: Caffe's cuDNN code calls cudnnGetConvolutionForwardAlgorithm, gone in cuDNN 8,
so scripts/install_caffe.sh builds with USE_CUDNN := 0 (docs/gpu.md).

Idempotent. Exit 1 when a required fix finds neither the old code nor its own result.
Usage: patch_caffe_weiliu89.py CAFFE_SOURCE_DIR
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from patch_caffe_gpu import SourceChanged, patch_common_cpp  # noqa: E402
from patch_caffe_opencv4 import fix_build_dir, rewrite_opencv_constants  # noqa: E402

IO_CPP = "src/caffe/util/io.cpp"
TWO_ARG_LIMIT = re.compile(r"SetTotalBytesLimit\(\s*kProtoReadBytesLimit\s*,\s*\d+\s*\)")
ONE_ARG_LIMIT = "SetTotalBytesLimit(kProtoReadBytesLimit)"
LINE_AA_FILES = ("src/caffe/util/bbox_util.cpp", "src/caffe/util/im_transforms.cpp")
MARKER = ".harness-patched-weiliu89"
SAMPLER_CPP = "src/caffe/util/sampler.cpp"
SAMPLED_SIZE = {"bbox_width": "scale * sqrt(aspect_ratio)", "bbox_height": "scale / sqrt(aspect_ratio)"}


def fix_total_bytes_limit(root: Path) -> int:
    """One-argument SetTotalBytesLimit; returns the number of calls rewritten."""
    path = root / IO_CPP
    text = path.read_text()
    new_text, count = TWO_ARG_LIMIT.subn(ONE_ARG_LIMIT, text)
    if count == 0 and ONE_ARG_LIMIT not in text:
        raise SourceChanged(f"{path}: no SetTotalBytesLimit(kProtoReadBytesLimit, ...) call found")
    if count:
        path.write_text(new_text)
    return count


def rewrite_line_aa(root: Path) -> int:
    """CV_AA (OpenCV 1 C API) -> cv::LINE_AA; returns the number of names replaced."""
    total = 0
    for relative in LINE_AA_FILES:
        path = root / relative
        if not path.is_file():
            continue
        text = path.read_text()
        new_text, count = re.subn(r"\bCV_AA\b", "cv::LINE_AA", text)
        if count:
            path.write_text(new_text)
            total += count
    return total


def clamp_sampled_bbox(root: Path) -> int:
    """Sampled crop width/height clamped to <= 1 (item 4 of the module doc); returns lines changed."""
    path = root / SAMPLER_CPP
    text = path.read_text()
    changed = 0
    for name, expression in SAMPLED_SIZE.items():
        old = f"float {name} = {expression};"
        new = f"float {name} = std::min<float>({expression}, 1.f);"
        if old in text:
            text = text.replace(old, new)
            changed += 1
        elif new not in text:
            raise SourceChanged(f"{path}: no `{old}` to clamp")
    if changed:
        path.write_text(text)
    return changed


def fix_device_query(root: Path) -> str:
    """The CUDA 13 DeviceQuery fix when the BVLC code is there; a note saying what happened."""
    try:
        changed = patch_common_cpp(root / "src/caffe/common.cpp")
    except SourceChanged as exc:
        return f"WARNING: DeviceQuery fix not applied ({exc}); only a CUDA 13 base needs it"
    return "DeviceQuery: " + ("patched" if changed else "already patched")


def check_tree(root: Path) -> None:
    """Refuse anything that is not an SSD Caffe tree: the fixes would be meaningless there."""
    proto = root / "src/caffe/proto/caffe.proto"
    if not proto.is_file():
        raise SystemExit(f"{root}: no src/caffe/proto/caffe.proto — not a Caffe source tree")
    text = proto.read_text(errors="replace")
    if "AnnotatedDataParameter" not in text or "distort_param" not in text:
        raise SystemExit(f"{proto}: no AnnotatedDataParameter/distort_param — not weiliu89's `ssd` branch")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    root = Path(argv[1]).resolve()
    check_tree(root)
    opencv = rewrite_opencv_constants(root) + rewrite_line_aa(root)
    fix_build_dir(root)
    try:
        limits = fix_total_bytes_limit(root)
        clamps = clamp_sampled_bbox(root)
    except SourceChanged as exc:
        print(f"[patch_caffe_weiliu89] {exc}; Caffe source changed?", file=sys.stderr)
        return 1
    device_query = fix_device_query(root)
    (root / MARKER).write_text("opencv4-names protobuf-total-bytes-limit sampler-clamp device-query\n")
    print(f"[patch_caffe_weiliu89] {opencv} OpenCV names, {limits} SetTotalBytesLimit calls, "
          f"{clamps} SampleBBox clamps, {device_query}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
