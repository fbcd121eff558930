"""`harness weights`: fetching, format checks and checksum pinning (file:// URLs stand in for the web)."""
from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.frameworks import weights


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


# The sizes of pjreddie's files as widely quoted (wget logs in tutorials; pjreddie.com is out of reach here);
# the registry computes them from the stock cfgs, and the test below checks that the two agree.
DARKNET53_CONV74_BYTES = 162_482_580
YOLOV3_TINY_WEIGHTS_BYTES = 35_434_956


def darknet_weights(path: Path, size: int = DARKNET53_CONV74_BYTES, payload: bytes = b"\1" * 4096) -> Path:
    """A stand-in of the right size: a Darknet 0.2 header, a payload, then zeros (a sparse file)."""
    with open(path, "wb") as handle:
        handle.write(struct.pack("<3iQ", 0, 2, 0, 0) + payload)
        handle.truncate(size)
    return path


def test_the_layouts_give_the_published_file_sizes() -> None:
    """Computed from the stock cfgs, not pinned: the published byte counts come out."""
    sizes = {key: weights.darknet_layout_bytes(spec.layout) for key, spec in weights.REGISTRY.items() if spec.layout}
    assert sizes["darknet53.conv.74"] == DARKNET53_CONV74_BYTES
    assert sizes["yolov3-tiny.weights"] == YOLOV3_TINY_WEIGHTS_BYTES


@pytest.mark.parametrize("key, size", [("darknet53.conv.74", DARKNET53_CONV74_BYTES),
                                       ("yolov3-tiny.weights", YOLOV3_TINY_WEIGHTS_BYTES)])
def test_a_download_cut_short_is_refused_with_its_size(tmp_path: Path, key: str, size: int) -> None:
    """Darknet loads a short file without a word; the fetch must not hand one on (no checksum needed)."""
    source = darknet_weights(tmp_path / "short", size - 4)
    with pytest.raises(ValueError, match=f"{size - 4} bytes, not the {size} of a Darknet header .*truncated"):
        weights.fetch(key, dest=tmp_path / "d", url=source.as_uri())
    assert not (weights.weights_dir() / "checksums.json").exists()   # nothing recorded for a bad file


def test_fetch_records_the_checksum_then_refuses_a_changed_file(tmp_path: Path) -> None:
    source = darknet_weights(tmp_path / "darknet53.conv.74")
    path, digest, pinned = weights.fetch("darknet53.conv.74", url=source.as_uri())
    assert path.stat().st_size == DARKNET53_CONV74_BYTES and digest == _sha(source) == _sha(path) and not pinned

    with open(path, "r+b") as handle:                          # the file changes after the first fetch
        handle.seek(-1, 2)
        handle.write(b"\1")
    with pytest.raises(ValueError, match="does not match"):
        weights.fetch("darknet53.conv.74", url=source.as_uri())


def test_a_given_checksum_is_verified(tmp_path: Path) -> None:
    source = darknet_weights(tmp_path / "src.weights")
    with pytest.raises(ValueError, match="does not match the expected 00ff"):
        weights.fetch("darknet53.conv.74", dest=tmp_path / "d", url=source.as_uri(), sha256="00ff")


@pytest.mark.parametrize("content, framework, message", [
    (b"tiny", "darknet", "too small"),
    (struct.pack("<3i", 7000, 1, 0) + b"\0" * 2048, "darknet", "not a Darknet weights header"),
    (b"\xff" * 2048, "caffe", "binary NetParameter"),
])
def test_garbage_weights_are_refused_before_a_framework_loads_them(tmp_path, content, framework, message) -> None:
    path = tmp_path / "w"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        weights.check_weights_file(path, framework)


def test_cli_fetch_and_list(tmp_path: Path) -> None:
    source = darknet_weights(tmp_path / "src.weights")
    runner = CliRunner()
    result = runner.invoke(main, ["weights", "fetch", "darknet53.conv.74", "--url", source.as_uri()])
    assert result.exit_code == 0, result.output
    assert "recorded this one" in result.output
    listing = runner.invoke(main, ["weights", "list"])
    assert "darknet53.conv.74" in listing.output and "present" in listing.output
    unknown = runner.invoke(main, ["weights", "fetch", "resnet"])
    assert unknown.exit_code != 0 and "unknown weights" in unknown.output


# ----------------------------------------------------------------------------- YOLOv3-tiny (issue 23)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_yolov3_tiny_weights_are_fetched_and_checked_against_a_given_checksum(tmp_path: Path) -> None:
    source = darknet_weights(tmp_path / "served.weights", YOLOV3_TINY_WEIGHTS_BYTES)
    path, digest, pinned = weights.fetch("yolov3-tiny.weights", dest=tmp_path / "a", url=source.as_uri(),
                                         sha256=_sha(source))
    assert path.name == "yolov3-tiny.weights" and _sha(path) == _sha(source)
    assert digest == _sha(source) and pinned
    with pytest.raises(ValueError, match=f"sha256 {_sha(source)} does not match the expected 00ff"):
        weights.fetch("yolov3-tiny.weights", dest=tmp_path / "b", url=source.as_uri(), sha256="00ff")


@pytest.fixture
def coco_tiny(tmp_path: Path, darknet_install, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A stand-in for pjreddie's yolov3-tiny.weights (random weights for the stock cfg, 80 classes at
    416) and that cfg; Darknet found through HARNESS_DARKNET (the cache is isolated here)."""
    from harness.render.yolo import render_yolo
    from tests.support.darknet import write_random_weights

    monkeypatch.setenv("HARNESS_DARKNET", str(darknet_install.binary))
    cfg = render_yolo(tmp_path / "stock", model="yolov3-tiny", size=416, classes=80)["cfg"]
    return write_random_weights(cfg, tmp_path / "served" / "yolov3-tiny.weights", seed=3), cfg


def _backbone_bytes(cfg: Path, layers: int) -> int:
    """Darknet's header plus the parameters of the [convolutional]s among layers 0..layers-1."""
    from harness.frameworks.darknet.cfg import conv_shapes, read_cfg_sections

    convs = sum(section.name == "convolutional" for section in read_cfg_sections(cfg)[1:layers + 1])
    floats = sum(f * (4 if bn else 1) + f * c * k * k for f, c, k, bn in conv_shapes(cfg)[:convs])
    return 20 + 4 * floats


def test_yolov3_tiny_conv15_is_cut_from_the_coco_weights_by_darknet_partial(coco_tiny, tmp_path: Path) -> None:
    source, cfg = coco_tiny
    result = CliRunner().invoke(main, ["weights", "fetch", "yolov3-tiny.conv.15", "--url", source.as_uri(),
                                       "--sha256", _sha(source)])
    assert result.exit_code == 0, result.output
    cut = weights.weights_dir() / "yolov3-tiny.conv.15"
    assert str(cut) in result.output and (weights.weights_dir() / "yolov3-tiny.weights").is_file()
    assert "recorded this one" in result.output            # the cut's own checksum: none is published
    data = cut.read_bytes()
    assert len(data) == _backbone_bytes(cfg, 15) < source.stat().st_size
    assert data == source.read_bytes()[:len(data)]           # header (seen 0) and layers 0-14, as they were
    again = weights.fetch("yolov3-tiny.conv.15")             # reused, and verified against what was recorded
    assert again[0] == cut and again[1] == _sha(cut)


def test_a_wrong_source_checksum_leaves_no_conv15(coco_tiny, tmp_path: Path) -> None:
    source, _ = coco_tiny
    with pytest.raises(ValueError, match="does not match the expected 00ff"):
        weights.fetch("yolov3-tiny.conv.15", dest=tmp_path / "d", url=source.as_uri(), sha256="00ff")
    assert not (tmp_path / "d" / "yolov3-tiny.conv.15").exists()


def test_a_cut_that_is_not_the_sources_first_layers_is_refused(coco_tiny, tmp_path: Path) -> None:
    source, cfg = coco_tiny
    size = _backbone_bytes(cfg, 15)
    short = tmp_path / "short.conv.15"
    short.write_bytes(source.read_bytes()[:size - 4])
    with pytest.raises(weights.WeightsCutError, match=f"not the {size} of a header and layers 0-14"):
        weights.check_cut(source, short, cfg, 15)
    changed = tmp_path / "changed.conv.15"
    changed.write_bytes(source.read_bytes()[:size - 4] + b"\0\0\0\1")
    with pytest.raises(weights.WeightsCutError, match="not the first 15 layers"):
        weights.check_cut(source, changed, cfg, 15)
