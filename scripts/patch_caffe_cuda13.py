#!/usr/bin/env python3
"""Make Caffe's GPU build compile with CUDA 13 (and stay valid for CUDA 8..12).

CUDA 13 removed three cudaDeviceProp fields that Caffe::DeviceQuery prints (clockRate,
deviceOverlap, kernelExecTimeoutEnabled). The same values are available from
cudaDeviceGetAttribute on every CUDA version Caffe supports, so the fix needs no version test.
Idempotent: a patched tree is left as it is. Usage: patch_caffe_cuda13.py CAFFE_SOURCE_DIR
"""
from __future__ import annotations

import sys
from pathlib import Path

MARKER = "// harness: cudaDeviceGetAttribute (CUDA 13 removed these cudaDeviceProp fields)"

REPLACEMENTS = [
    ('LOG(INFO) << "Clock rate:                    " << prop.clockRate;',
     'LOG(INFO) << "Clock rate:                    " << harness_attr(cudaDevAttrClockRate, device);'),
    ('(prop.deviceOverlap ? "Yes" : "No");',
     '(harness_attr(cudaDevAttrGpuOverlap, device) ? "Yes" : "No");'),
    ('(prop.kernelExecTimeoutEnabled ? "Yes" : "No");',
     '(harness_attr(cudaDevAttrKernelExecTimeout, device) ? "Yes" : "No");'),
]

HELPER = f"""{MARKER}
static int harness_attr(cudaDeviceAttr attr, int device) {{
  int value = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&value, attr, device));
  return value;
}}

void Caffe::DeviceQuery() {{"""


def patch_common_cpp(path: Path) -> bool:
    """Returns True when the file was changed; raises when the expected code is not there."""
    text = path.read_text()
    if MARKER in text:
        return False
    anchor = "void Caffe::DeviceQuery() {"
    # The CPU_ONLY branch has its own empty DeviceQuery: patch the GPU one (the last).
    at = text.rfind(anchor)
    missing = [old for old, _ in REPLACEMENTS if old not in text[at:]]
    if at < 0 or missing:
        raise SystemExit(f"{path}: expected code not found ({missing or anchor}); Caffe source changed?")
    head, tail = text[:at], text[at + len(anchor):]
    for old, new in REPLACEMENTS:
        tail = tail.replace(old, new, 1)
    path.write_text(head + HELPER + tail)
    return True


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    common = Path(argv[1]) / "src" / "caffe" / "common.cpp"
    if not common.is_file():
        print(f"{common}: no such file (not a Caffe source tree?)", file=sys.stderr)
        return 1
    changed = patch_common_cpp(common)
    print(f"[patch_caffe_cuda13] {common}: {'patched' if changed else 'already patched'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
