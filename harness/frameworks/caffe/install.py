"""Find and inspect the native Caffe-SSD build (weiliu89's fork): where it is, what it was built
with, whether it has CUDA and the SSD layers. ``python -m harness.frameworks.caffe.worker inspect``
prints what this finds.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from harness.core.process import describe_returncode
from harness.core.types import FrameworkStatus, NativeFrameworkError
from harness.data.annotations import ImageAnnotation
from harness.paths import cache_dir, pinned_commit

SOURCE_NAME = "weiliu89-caffe"  # scripts/sources.lock: the commit install_caffe.sh builds
INSTALL_HINT = "bash scripts/install_caffe.sh"
SSD_LAYERS = (
    "AnnotatedData",
    "PriorBox",
    "DetectionOutput",
    "DetectionEvaluate",
    "MultiBoxLoss",
    "Normalize",
    "Permute",
    "SmoothL1Loss",
)
BUILD_STAMP = ".harness-build-complete"

PathLike = Union[str, Path]
ImageList = Union[Sequence[ImageAnnotation], Sequence[PathLike]]


class CaffeNotFound(NativeFrameworkError):
    """No usable Caffe build; the message says where we looked and how to install one."""


@dataclass(frozen=True)
class CaffeInstall:
    root: Path
    caffe_bin: Path
    python_dir: Path
    proto: Path
    source: str  # "HARNESS_CAFFE_ROOT" or "cache"

    def env(self, quiet: bool = False) -> dict[str, str]:
        """Environment for a child that runs the tool or imports pycaffe."""
        env = {
            "PYTHONPATH": os.pathsep.join(filter(None, [str(self.python_dir), os.environ.get("PYTHONPATH", "")])),
            "GLOG_logtostderr": "1",  # otherwise glog also writes log files into /tmp
        }
        if quiet:
            env["GLOG_minloglevel"] = "2"
        return env


# ----------------------------------------------------------------------------- finding


def default_build_root(gpu: Optional[bool] = None) -> Path:
    """Where scripts/install_caffe.sh builds the pinned weiliu89 commit (same key as the script)."""
    if gpu is None:
        gpu = os.environ.get("HARNESS_CAFFE_GPU") == "1"
    return cache_dir() / (f"caffe-weiliu89-ssd-{pinned_commit(SOURCE_NAME)[:12]}" + ("-cuda" if gpu else ""))


def find_caffe() -> CaffeInstall:
    """``$HARNESS_CAFFE_ROOT`` (any Caffe with the SSD layers) or the cached weiliu89 build."""
    explicit = os.environ.get("HARNESS_CAFFE_ROOT")
    if explicit:
        return _install_at(Path(explicit).expanduser().resolve(), "HARNESS_CAFFE_ROOT")
    root = default_build_root()
    if not (root / BUILD_STAMP).is_file():
        raise CaffeNotFound(
            f"no complete Caffe build at {root} (no {BUILD_STAMP} stamp); build it with "
            f"`{INSTALL_HINT}` (about 9 minutes on 2 cores) or point HARNESS_CAFFE_ROOT at a Caffe with the SSD layers"
        )
    return _install_at(root, "cache")


def _install_at(root: Path, source: str) -> CaffeInstall:
    install = CaffeInstall(root, _caffe_binary(root), root / "python", root / "src/caffe/proto/caffe.proto", source)
    problems = [
        f"{path} missing"
        for path in (install.caffe_bin, install.python_dir / "caffe", install.proto)
        if not path.exists()
    ]
    if problems:
        raise CaffeNotFound(
            f"Caffe at {root} (from {source}) is incomplete: {'; '.join(problems)}. "
            f"Build it with `{INSTALL_HINT}` or `make all py` there"
        )
    return install


def _caffe_binary(root: Path) -> Path:
    for candidate in (root / "build/tools/caffe", root / "build/tools/caffe.bin"):
        if candidate.exists():
            return candidate
    return root / "build/tools/caffe"


# ----------------------------------------------------------------------------- inspecting


_INSPECT_CODE = """
import json, caffe
info = {"layers": sorted(caffe.layer_type_list()), "file": caffe.__file__,
        "version": getattr(caffe, "__version__", "")}
print("HARNESS-JSON " + json.dumps(info))
"""


def inspect_caffe() -> FrameworkStatus:
    """What ``harness doctor`` shows: version, SSD layers, proto dialect, device, problems."""
    status = FrameworkStatus(name="caffe", usable=False, install_hint=INSTALL_HINT)
    try:
        install = find_caffe()
    except CaffeNotFound as exc:
        status.missing.append(str(exc))
        return status
    status.location = str(install.root)
    status.version = _tool_version(install, status.missing)
    status.device = "GPU" if is_gpu_build(install.root) else "CPU"
    status.details["source"] = install.source
    status.details["dialect"] = proto_dialect(install.proto.read_text(errors="replace"))
    status.details.update(build_identity(install.root, status.details["dialect"]))
    layers = _pycaffe_layers(install, status.missing)
    status.details["layers"] = [name for name in SSD_LAYERS if name in layers]
    status.details["layer_count"] = len(layers)
    absent = [name for name in SSD_LAYERS if name not in layers]
    if layers and absent:
        status.missing.append(f"SSD layers not registered: {', '.join(absent)}")
    status.usable = not status.missing
    return status


FORK_BY_DIALECT = {
    "brocolli": "brocolli-caffe (an SSD fork without distort/expand)",
    "weiliu89": "weiliu89/caffe, ssd branch",
}


def read_build_stamp(root: Path) -> dict[str, str]:
    """``key=value`` lines scripts/install_caffe.sh writes after a complete build (empty if none)."""
    stamp = root / BUILD_STAMP
    if not stamp.is_file():
        return {}
    pairs = (line.split("=", 1) for line in stamp.read_text(errors="replace").splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def build_identity(root: Path, dialect: str) -> dict:
    """Which Caffe this is, for doctor, provenance.json and the report: fork, commit, build, augmentation."""
    from harness.render.dialect import dialect_has_ssd_augmentation

    stamp = read_build_stamp(root)
    config = root / "Makefile.config"
    config_text = config.read_text(errors="replace") if config.is_file() else ""
    gpu = is_gpu_build(root)
    cudnn = bool(re.search(r"^\s*USE_CUDNN\s*:?=\s*1", config_text, re.M))
    blas = re.search(r"^\s*BLAS\s*:?=\s*(\w+)", config_text, re.M)
    return {
        "fork": FORK_BY_DIALECT.get(dialect, f"unknown ({stamp.get('fork') or 'no build stamp'})"),
        "commit": stamp.get("commit") or None,
        "source_sha256": stamp.get("source_sha256") or None,
        "build": ("GPU (CUDA" + (", cuDNN" if cudnn else ", no cuDNN") + ")")
        if gpu
        else f"CPU ({blas.group(1) if blas else 'unknown'} BLAS)",
        "ssd_augmentation": dialect_has_ssd_augmentation(dialect),
    }


def proto_dialect(proto_text: str) -> str:
    """The renderer's dialect of this caffe.proto (harness.render.dialect), or ``unknown``."""
    from harness.render.dialect import dialect_from_proto_text

    try:
        return dialect_from_proto_text(proto_text, "caffe.proto").dialect
    except ValueError:
        return "unknown"


def _tool_version(install: CaffeInstall, missing: list) -> str:
    try:
        done = subprocess.run(
            [str(install.caffe_bin), "--version"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **install.env(quiet=True)},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        missing.append(f"{install.caffe_bin} --version failed: {exc}")
        return ""
    text = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        missing.append(f"{install.caffe_bin} --version: {describe_returncode(done.returncode)}: {text[-500:]}")
        return ""
    found = re.search(r"version\s+(\S+)", text)
    return found.group(1) if found else text.splitlines()[-1] if text else ""


def _pycaffe_layers(install: CaffeInstall, missing: list) -> list[str]:
    try:
        done = subprocess.run(
            [sys.executable, "-c", _INSPECT_CODE],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **install.env(quiet=True)},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        missing.append(f"`import caffe` did not finish: {exc}")
        return []
    for line in done.stdout.splitlines():
        if line.startswith("HARNESS-JSON "):
            return json.loads(line[len("HARNESS-JSON ") :])["layers"]
    missing.append(
        f"`import caffe` with PYTHONPATH={install.python_dir} failed "
        f"({describe_returncode(done.returncode)}): {done.stderr.strip()[-800:]}"
    )
    return []


def is_gpu_build(root: Path) -> bool:
    config = root / "Makefile.config"
    if not config.is_file():
        return False
    return not re.search(r"^\s*CPU_ONLY\s*:?=\s*1", config.read_text(errors="replace"), re.M)
