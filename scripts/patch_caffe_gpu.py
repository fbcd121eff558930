#!/usr/bin/env python3
"""Source fixes brocolli-caffe 9.0.2 needs for a GPU build (CPU builds never compile this code).

1. ProposalLayer declares Backward_gpu without ever defining it, and proposal_layer.cu explicitly
   instantiates it: nvcc's host compiler stops with "explicit instantiation ... but no definition
   available". The layer has no backward pass (Backward_cpu is already an empty inline body), so
   Backward_gpu gets the same empty body. Needed with every CUDA version.
2. CUDA 13 removed three cudaDeviceProp fields that Caffe::DeviceQuery prints (clockRate,
   deviceOverlap, kernelExecTimeoutEnabled). cudaDeviceGetAttribute gives the same values on
   every CUDA version Caffe supports, so the fix needs no version test.
3. Six layers (ReLU6, HardSwish, HardSigmoid, PixelShuffle, Upsample, MaxUnPool) declare
   Forward_gpu/Backward_gpu but ship no .cu file: libcaffe.so links with undefined symbols and
   every tool fails to link. They get GPU methods that run their CPU code, which is what
   Caffe's Layer base class does for layers without GPU code.
Idempotent: patched files are left as they are. Usage: patch_caffe_gpu.py CAFFE_SOURCE_DIR
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

MARKER = "// harness: cudaDeviceGetAttribute (CUDA 13 removed these cudaDeviceProp fields)"

DEVICE_QUERY_REPLACEMENTS = [
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

PROPOSAL_DECLARATION = """  virtual void Backward_gpu(const vector<Blob<Dtype>*>& top,
      const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom);"""
PROPOSAL_DEFINITION = PROPOSAL_DECLARATION[:-1] + " {}"


class SourceChanged(Exception):
    """The code to patch is not where brocolli-caffe 9.0.2 has it."""


def patch_common_cpp(path: Path) -> bool:
    """DeviceQuery without the removed fields; True when the file was changed."""
    text = path.read_text()
    if MARKER in text:
        return False
    anchor = "void Caffe::DeviceQuery() {"
    # The CPU_ONLY branch has its own empty DeviceQuery: patch the GPU one (the last).
    at = text.rfind(anchor)
    missing = [old for old, _ in DEVICE_QUERY_REPLACEMENTS if old not in text[at:]]
    if at < 0 or missing:
        raise SourceChanged(f"{path}: expected code not found ({missing or anchor})")
    head, tail = text[:at], text[at + len(anchor):]
    for old, new in DEVICE_QUERY_REPLACEMENTS:
        tail = tail.replace(old, new, 1)
    path.write_text(head + HELPER + tail)
    return True


def patch_proposal_layer_hpp(path: Path) -> bool:
    """An empty Backward_gpu body, as Backward_cpu has; True when the file was changed."""
    text = path.read_text()
    if PROPOSAL_DEFINITION in text:
        return False
    if PROPOSAL_DECLARATION not in text:
        raise SourceChanged(f"{path}: expected Backward_gpu declaration not found")
    path.write_text(text.replace(PROPOSAL_DECLARATION, PROPOSAL_DEFINITION, 1))
    return True


CPU_FALLBACK_MARKER = "// harness: no CUDA kernels for this layer in brocolli-caffe"
STUB_BLOCK = re.compile(r"#ifdef CPU_ONLY\s*\n\s*STUB_GPU\((\w+)\);\s*\n\s*#endif")
CPU_FALLBACK = """#ifdef CPU_ONLY
STUB_GPU({cls});
#else
{marker}: run the CPU code.
template <typename Dtype>
void {cls}<Dtype>::Forward_gpu(const vector<Blob<Dtype>*>& bottom,
    const vector<Blob<Dtype>*>& top) {{
  Forward_cpu(bottom, top);
}}
template <typename Dtype>
void {cls}<Dtype>::Backward_gpu(const vector<Blob<Dtype>*>& top,
    const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom) {{
  Backward_cpu(top, propagate_down, bottom);
}}
#endif"""


def layers_without_cuda(tree: Path) -> list[tuple[Path, str]]:
    """(cpp file, class) for layers that stub their GPU methods but have no CUDA definition."""
    cuda_text = "\n".join(p.read_text(errors="replace") for p in (tree / "src" / "caffe").rglob("*.cu"))
    found = []
    for cpp in sorted((tree / "src" / "caffe" / "layers").glob("*.cpp")):
        for cls in STUB_BLOCK.findall(cpp.read_text(errors="replace")):
            if f"{cls}<Dtype>::Forward_gpu" not in cuda_text and f"({cls})" not in cuda_text:
                found.append((cpp, cls))
    return found


def patch_cpu_fallbacks(tree: Path) -> list[str]:
    """Gives GPU methods to the layers without CUDA code; returns the classes patched."""
    patched = []
    for cpp, cls in layers_without_cuda(tree):
        text = cpp.read_text()
        if CPU_FALLBACK_MARKER in text:
            continue
        block = next(m for m in STUB_BLOCK.finditer(text) if m.group(1) == cls)
        text = text[:block.start()] + CPU_FALLBACK.format(cls=cls, marker=CPU_FALLBACK_MARKER) + text[block.end():]
        cpp.write_text(text)
        patched.append(cls)
    return patched


PATCHES = [
    ("src/caffe/common.cpp", patch_common_cpp),
    ("include/caffe/layers/proposal_layer.hpp", patch_proposal_layer_hpp),
]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    tree = Path(argv[1])
    status = 0
    for relative, patch in PATCHES:
        path = tree / relative
        if not path.is_file():
            print(f"[patch_caffe_gpu] {path}: no such file (not a brocolli-caffe source tree?)", file=sys.stderr)
            status = 1
            continue
        try:
            changed = patch(path)
        except SourceChanged as exc:
            print(f"[patch_caffe_gpu] {exc}; Caffe source changed?", file=sys.stderr)
            status = 1
            continue
        print(f"[patch_caffe_gpu] {path}: {'patched' if changed else 'already patched'}", file=sys.stderr)
    if (tree / "src" / "caffe" / "layers").is_dir():
        fallbacks = patch_cpu_fallbacks(tree)
        print(f"[patch_caffe_gpu] layers given CPU-fallback GPU methods now: {', '.join(fallbacks) or 'none (already done or not needed)'}",
              file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
