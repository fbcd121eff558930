"""Pretrained initial weights the paper fine-tunes from, fetched by users who have internet.

The paper starts SSD from ImageNet VGG16 with reduced fc6/fc7 and YOLOv3 from darknet53.conv.74.
Neither can be downloaded on the harness's build machines, so the registry below gives the
public URLs; a checksum is verified when one is known (pinned here or passed with --sha256)
and otherwise recorded on first download so that later runs can detect a changed file.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from harness.paths import cache_dir


@dataclass(frozen=True)
class WeightsSpec:
    key: str
    filename: str
    url: str
    framework: str
    used_by: str
    sha256: Optional[str] = None  # None: no checksum published by the authors; recorded on first fetch


REGISTRY = {
    "vgg16-reduced": WeightsSpec(
        "vgg16-reduced",
        "VGG_ILSVRC_16_layers_fc_reduced.caffemodel",
        "http://cs.unc.edu/~wliu/projects/ParseNet/VGG_ILSVRC_16_layers_fc_reduced.caffemodel",
        "caffe",
        "SSD300/SSD512 (paper: fine-tune VGG16)",
    ),
    "darknet53.conv.74": WeightsSpec(
        "darknet53.conv.74",
        "darknet53.conv.74",
        "https://pjreddie.com/media/files/darknet53.conv.74",
        "darknet",
        "YOLOv3 320/416/608 (paper: from darknet53.conv.74)",
    ),
}


def weights_dir() -> Path:
    return cache_dir() / "weights"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _recorded_checksums() -> dict:
    record = weights_dir() / "checksums.json"
    return json.loads(record.read_text()) if record.exists() else {}


def _record_checksum(filename: str, digest: str) -> None:
    record = weights_dir() / "checksums.json"
    data = _recorded_checksums()
    data[filename] = digest
    record.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def expected_checksum(spec: WeightsSpec, override: Optional[str] = None) -> Optional[str]:
    return override or spec.sha256 or _recorded_checksums().get(spec.filename) or None


def check_weights_file(path: Path, framework: str) -> None:
    """Cheap format check: both frameworks load garbage without complaint (see notes/darknet.md)."""
    size = path.stat().st_size
    if size < 1024:
        raise ValueError(f"{path}: {size} bytes is too small to be {framework} weights")
    if framework == "darknet":
        with open(path, "rb") as handle:
            major, minor, revision = struct.unpack("<3i", handle.read(12))
        if major > 100 or minor > 100 or major < 0 or minor < 0:
            raise ValueError(f"{path}: header {major}.{minor}.{revision} is not a Darknet weights header")
    elif framework == "caffe":
        with open(path, "rb") as handle:
            head = handle.read(1)
        # NetParameter starts with field 1 (name, 0x0a), 2 (V1 layers, 0x12) or 100 (layer, 0xa2 0x06).
        if head not in (b"\x0a", b"\x12", b"\xa2"):
            raise ValueError(f"{path}: does not start like a binary NetParameter (caffemodel)")


def verify(path: Path, spec: WeightsSpec, sha256: Optional[str] = None) -> str:
    """Verify a weights file against the pinned/passed/recorded checksum; returns its sha256."""
    check_weights_file(path, spec.framework)
    digest = sha256_of(path)
    expected = expected_checksum(spec, sha256)
    if expected and expected.lower() != digest:
        raise ValueError(f"{path}: sha256 {digest} does not match the expected {expected}")
    return digest


def fetch(
    key: str, dest: Optional[Path] = None, sha256: Optional[str] = None, url: Optional[str] = None
) -> tuple[Path, str, bool]:
    """Download (or reuse) one registry entry; returns (path, sha256, was_pinned)."""
    if key not in REGISTRY:
        raise KeyError(f"unknown weights {key!r}; known: {', '.join(REGISTRY)}")
    spec = REGISTRY[key]
    dest = Path(dest or weights_dir())
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / spec.filename
    if not target.exists():
        partial = target.with_suffix(target.suffix + ".part")
        with urllib.request.urlopen(url or spec.url, timeout=60) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
        partial.replace(target)
    pinned = expected_checksum(spec, sha256) is not None
    digest = verify(target, spec, sha256)
    if not pinned:
        weights_dir().mkdir(parents=True, exist_ok=True)
        _record_checksum(spec.filename, digest)
    return target, digest, pinned
