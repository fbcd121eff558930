"""Pretrained initial weights the paper fine-tunes from, fetched by users who have internet.

The paper starts SSD from ImageNet VGG16 with reduced fc6/fc7 and YOLOv3 from darknet53.conv.74.
None can be downloaded on the harness's build machines, so the registry below gives the
public URLs; a checksum is verified when one is known (pinned here or passed with --sha256)
and otherwise recorded on first download so that later runs can detect a changed file.

YOLOv3-tiny's backbone, ``yolov3-tiny.conv.15``, is not published: it is cut from the COCO model
``yolov3-tiny.weights`` by Darknet's own ``darknet partial CFG WEIGHTS OUT 15`` (layers 0-14, the
convolutions before the first detection head), as Darknet's users make it; the cut is checked
byte for byte against the source.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from harness.core.errors import HarnessError
from harness.paths import cache_dir


@dataclass(frozen=True)
class Cut:
    """A file made from another registry entry by ``darknet partial``: the first ``layers`` layers of
    ``source``, read through the stock cfg of ``model`` at ``size`` for ``classes`` (the net the source
    was trained as, so Darknet reads every layer of it as it was written)."""

    source: str
    model: str
    layers: int
    classes: int = 80
    size: int = 416


@dataclass(frozen=True)
class DarknetLayout:
    """What a Darknet weights file must hold: a header plus the parameters of layers 0..``layers``-1
    (None: all) of the stock cfg of ``model`` for ``classes`` at ``size``. Its byte count is computed
    from that cfg, so a truncated or different file is refused even where no checksum is pinned:
    Darknet itself loads a short file without a word (it reads what is there)."""

    model: str
    layers: Optional[int] = None
    classes: int = 80
    size: int = 416


@dataclass(frozen=True)
class WeightsSpec:
    key: str
    filename: str
    url: str
    framework: str
    used_by: str
    sha256: Optional[str] = None  # None: no checksum published by the authors; recorded on first fetch
    cut: Optional[Cut] = None  # made from another entry, not downloaded (url: the source's)
    layout: Optional[DarknetLayout] = None  # the size a Darknet file must have (computed from the cfg)


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
        layout=DarknetLayout("yolov3", 74),  # Darknet-53's 74 backbone layers: 162,482,580 bytes
    ),
    "yolov3-tiny.weights": WeightsSpec(
        "yolov3-tiny.weights",
        "yolov3-tiny.weights",
        "https://pjreddie.com/media/files/yolov3-tiny.weights",
        "darknet",
        "YOLOv3-tiny trained on COCO (80 classes): the source of yolov3-tiny.conv.15",
        layout=DarknetLayout("yolov3-tiny"),  # the whole 80-class net: 35,434,956 bytes
    ),
    "yolov3-tiny.conv.15": WeightsSpec(
        "yolov3-tiny.conv.15",
        "yolov3-tiny.conv.15",
        "https://pjreddie.com/media/files/yolov3-tiny.weights",
        "darknet",
        "YOLOv3-tiny 320/416/608 (train yolov3-tiny --init-weights): layers 0-14 of yolov3-tiny.weights",
        cut=Cut("yolov3-tiny.weights", "yolov3-tiny", 15),
        layout=DarknetLayout("yolov3-tiny", 15),
    ),
}


class WeightsCutError(HarnessError):
    """``darknet partial`` is missing, failed, or wrote something other than the source's first layers."""


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


def darknet_layout_bytes(layout: DarknetLayout, header_bytes: Optional[int] = None) -> int:
    """The size of a Darknet weights file of ``layout``: header plus 4 bytes per stored float."""
    from harness.frameworks.darknet.cfg import WEIGHTS_HEADER_BYTES, weights_file_bytes
    from harness.render.yolo import render_yolo

    with tempfile.TemporaryDirectory(prefix="harness-layout-") as work:
        stock = {"batch": 1, "subdivisions": 1}
        cfg = render_yolo(work, model=layout.model, size=layout.size, classes=layout.classes, overrides=stock)["cfg"]
        return weights_file_bytes(cfg, layout.layers, WEIGHTS_HEADER_BYTES if header_bytes is None else header_bytes)


def check_darknet_layout(path: Path, layout: DarknetLayout) -> None:
    """Refuse a Darknet file whose size is not its layout's (e.g. a download cut short)."""
    from harness.frameworks.darknet.cfg import weights_header_bytes

    with open(path, "rb") as handle:
        header = weights_header_bytes(handle.read(8))
    expected, size = darknet_layout_bytes(layout, header), path.stat().st_size
    if size != expected:
        layers = "all layers" if layout.layers is None else f"layers 0-{layout.layers - 1}"
        raise ValueError(
            f"{path}: {size} bytes, not the {expected} of a Darknet header and {layers} of the stock "
            f"{layout.model} cfg ({layout.classes} classes): a truncated download or another file"
        )


def verify(path: Path, spec: WeightsSpec, sha256: Optional[str] = None) -> str:
    """Verify a weights file: its format, its size where the layout is known, then the
    pinned/passed/recorded checksum; returns its sha256."""
    check_weights_file(path, spec.framework)
    if spec.layout is not None:
        check_darknet_layout(path, spec.layout)
    digest = sha256_of(path)
    expected = expected_checksum(spec, sha256)
    if expected and expected.lower() != digest:
        raise ValueError(f"{path}: sha256 {digest} does not match the expected {expected}")
    return digest


def fetch(
    key: str, dest: Optional[Path] = None, sha256: Optional[str] = None, url: Optional[str] = None
) -> tuple[Path, str, bool]:
    """Download (or reuse) one registry entry; returns (path, sha256, was_pinned). An entry that is cut
    from another (:class:`Cut`) downloads that one: ``url`` and ``sha256`` are then the source's, and
    was_pinned is False when either checksum was recorded now rather than verified."""
    if key not in REGISTRY:
        raise KeyError(f"unknown weights {key!r}; known: {', '.join(REGISTRY)}")
    spec = REGISTRY[key]
    dest = Path(dest or weights_dir())
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / spec.filename
    if spec.cut is not None:
        return _fetch_cut(spec, spec.cut, target, sha256, url)
    if not target.exists():
        _download(url or spec.url, target)
    digest, pinned = _verify_and_record(target, spec, sha256)
    return target, digest, pinned


def _fetch_cut(
    spec: WeightsSpec, cut: Cut, target: Path, sha256: Optional[str], url: Optional[str]
) -> tuple[Path, str, bool]:
    """The source fetched (``sha256``/``url`` are its own) and cut, unless the cut is there already; the
    cut's checksum is recorded when it is made and verified by later fetches."""
    source_pinned = True
    if not target.exists():
        source, _, source_pinned = fetch(cut.source, target.parent, sha256, url)
        cut_weights(source, target, cut)
    digest, pinned = _verify_and_record(target, spec, None)
    return target, digest, pinned and source_pinned


def _download(url: str, target: Path) -> None:
    partial = target.with_suffix(target.suffix + ".part")
    with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
        shutil.copyfileobj(response, out, 1 << 20)
    partial.replace(target)


def _verify_and_record(target: Path, spec: WeightsSpec, sha256: Optional[str]) -> tuple[str, bool]:
    """(sha256, was_pinned): verified against a known checksum, else recorded for later fetches."""
    pinned = expected_checksum(spec, sha256) is not None
    digest = verify(target, spec, sha256)
    if not pinned:
        weights_dir().mkdir(parents=True, exist_ok=True)
        _record_checksum(spec.filename, digest)
    return digest, pinned


def source_text(spec: WeightsSpec) -> str:
    """Where an entry comes from, for ``harness weights list``."""
    if spec.cut is None:
        return spec.url
    return f"darknet partial {spec.cut.model}.cfg {spec.cut.source} {spec.filename} {spec.cut.layers}"


def cut_weights(source: Path, target: Path, cut: Cut) -> Path:
    """``target``: the first ``cut.layers`` layers of ``source``, written by pjreddie's ``darknet
    partial`` (Darknet's own tool, so the file is what Darknet users make) with the stock cfg
    rendered for the net the source was trained as, then checked by :func:`check_cut`."""
    from harness.core.types import NativeFrameworkError
    from harness.frameworks.darknet.driver import find_darknet
    from harness.render.yolo import render_yolo

    try:
        binary = find_darknet().binary
    except NativeFrameworkError as exc:
        raise WeightsCutError(f"cannot make {target.name}: {exc}") from None
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".cut-") as work:
        stock = {"batch": 1, "subdivisions": 1}  # the cfg's inference shape: Darknet allocates one image
        cfg = render_yolo(work, model=cut.model, size=cut.size, classes=cut.classes, overrides=stock)["cfg"]
        written = Path(work) / target.name
        argv = [str(binary), "partial", str(cfg), str(source), str(written), str(cut.layers)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0 or not written.is_file():
            raise WeightsCutError(
                f"{' '.join(argv)} failed ({done.returncode}): {(done.stdout + done.stderr).strip()[-600:]}"
            )
        check_cut(source, written, cfg, cut.layers)
        written.replace(target)
    return target


def check_cut(source: Path, cut_file: Path, cfg: Path, layers: int) -> None:
    """Darknet writes whatever it read: the cut must be a Darknet header plus exactly the parameters
    of layers 0..``layers``-1 of ``cfg``, and those bytes must be the source's own."""
    from harness.frameworks.darknet.cfg import WEIGHTS_HEADER_BYTES, weights_file_bytes, weights_header_bytes

    size = weights_file_bytes(cfg, layers)
    if cut_file.stat().st_size != size:
        raise WeightsCutError(
            f"{cut_file}: {cut_file.stat().st_size} bytes, not the {size} of a header and layers 0-{layers - 1} of {cfg.name}"
        )
    with open(source, "rb") as handle:
        head = handle.read(8)
        handle.seek(weights_header_bytes(head))
        expected = handle.read(size - WEIGHTS_HEADER_BYTES)
    with open(cut_file, "rb") as handle:
        handle.seek(WEIGHTS_HEADER_BYTES)
        if handle.read() != expected:
            raise WeightsCutError(f"{cut_file}: its parameters are not the first {layers} layers of {source}")
