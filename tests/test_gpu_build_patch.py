"""scripts/patch_caffe_gpu.py: the source fixes brocolli-caffe 9.0.2 needs for a GPU build."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.paths import cache_dir

ROOT = Path(__file__).resolve().parents[1]
PATCH = ROOT / "scripts" / "patch_caffe_gpu.py"
FILES = ("src/caffe/common.cpp", "include/caffe/layers/proposal_layer.hpp")
REMOVED_IN_CUDA13 = ("prop.clockRate", "prop.deviceOverlap", "prop.kernelExecTimeoutEnabled")


def unpatched_caffe_tree(tmp_path: Path) -> Path:
    """Copies of the two files from a cached, unpatched brocolli-caffe tree, else skip."""
    for tree in sorted(cache_dir().glob("caffe-brocolli-*")):
        common = tree / FILES[0]
        if common.is_file() and "prop.clockRate" in common.read_text():
            copy = tmp_path / "caffe"
            for relative in FILES:
                (copy / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(tree / relative, copy / relative)
            shutil.copytree(tree / "src" / "caffe" / "layers", copy / "src" / "caffe" / "layers",
                            ignore=shutil.ignore_patterns("*.o", "*.d"))
            for cu in (tree / "src" / "caffe").rglob("*.cu"):
                target = copy / cu.relative_to(tree)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(cu, target)
            return copy
    pytest.skip("no unpatched brocolli-caffe source cached (scripts/install_caffe.sh unpacks one)")


def run_patch(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(PATCH), str(tree)], capture_output=True, text=True)


def test_patch_fixes_both_files_and_is_idempotent(tmp_path):
    tree = unpatched_caffe_tree(tmp_path)
    empty_bodies_before = (tree / FILES[1]).read_text().count(") {}")
    first = run_patch(tree)
    assert first.returncode == 0, first.stderr
    assert first.stderr.count(": patched") == 2
    common = (tree / FILES[0]).read_text()
    gpu_query = common[common.rfind("void Caffe::DeviceQuery() {"):]
    assert not any(field in gpu_query for field in REMOVED_IN_CUDA13)
    for attr in ("cudaDevAttrClockRate", "cudaDevAttrGpuOverlap", "cudaDevAttrKernelExecTimeout"):
        assert attr in gpu_query
    header = (tree / FILES[1]).read_text()
    assert "const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom) {}" in header
    assert header.count(") {}") == empty_bodies_before + 1   # only Backward_gpu gained a body
    # the layers brocolli-caffe declares GPU methods for but ships no CUDA code for
    fallback = [p.stem for p in (tree / "src/caffe/layers").glob("*.cpp")
                if "harness: no CUDA kernels" in p.read_text()]
    assert sorted(fallback) == ["hardsigmoid_layer", "hardswish_layer", "maxunpool_layer",
                                "pixelshuffle_layer", "relu6_layer", "upsample_layer"]
    relu6 = (tree / "src/caffe/layers/relu6_layer.cpp").read_text()
    assert "void ReLU6Layer<Dtype>::Forward_gpu" in relu6 and "Forward_cpu(bottom, top);" in relu6
    assert relu6.index("STUB_GPU(ReLU6Layer)") < relu6.index("#else") < relu6.index("INSTANTIATE_CLASS")
    before = [(tree / f).read_text() for f in FILES]
    second = run_patch(tree)
    assert second.returncode == 0 and second.stderr.count("already patched") == 2
    assert [(tree / f).read_text() for f in FILES] == before


def test_patch_refuses_unknown_source(tmp_path):
    tree = tmp_path / "caffe"
    for relative in FILES:
        (tree / relative).parent.mkdir(parents=True, exist_ok=True)
        (tree / relative).write_text("void Caffe::DeviceQuery() {}\n")
    result = run_patch(tree)
    assert result.returncode == 1 and result.stderr.count("expected") == 2


def test_patch_names_missing_tree(tmp_path):
    result = run_patch(tmp_path / "nowhere")
    assert result.returncode == 1 and "nowhere" in result.stderr


def test_patched_sdist_for_install_caffe(tmp_path):
    """`check_gpu_build.sh patch-caffe-sdist`: what docker/ hands install_caffe.sh (HARNESS_CAFFE_SDIST)."""
    import tarfile

    sdists = sorted(cache_dir().glob("src/caffe-gpu/brocolli-caffe-9.0.2.tar.gz"))
    if not sdists:
        pytest.skip("brocolli-caffe 9.0.2 sdist not cached (check_gpu_build.sh caffe downloads it)")
    out = tmp_path / "patched" / "brocolli-caffe-9.0.2.tar.gz"
    result = subprocess.run(["bash", str(ROOT / "scripts" / "check_gpu_build.sh"), "patch-caffe-sdist",
                             str(sdists[0]), str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    with tarfile.open(out) as archive:
        names = archive.getnames()
        header = archive.extractfile("brocolli-caffe-9.0.2/" + FILES[1]).read().decode()
    assert all(name.startswith("brocolli-caffe-9.0.2") for name in names)   # install_caffe.sh strips one level
    assert "const vector<Blob<Dtype>*>& bottom) {}" in header.split("Backward_gpu", 1)[1][:200]
