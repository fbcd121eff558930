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


def darknet_weights(path: Path, payload: bytes = b"\0" * 4096) -> Path:
    path.write_bytes(struct.pack("<3iQ", 0, 2, 0, 0) + payload)
    return path


def test_fetch_records_the_checksum_then_refuses_a_changed_file(tmp_path: Path) -> None:
    source = darknet_weights(tmp_path / "darknet53.conv.74")
    path, digest, pinned = weights.fetch("darknet53.conv.74", url=source.as_uri())
    assert path.read_bytes() == source.read_bytes()
    assert digest == hashlib.sha256(source.read_bytes()).hexdigest() and not pinned

    path.write_bytes(path.read_bytes()[:-1] + b"\1")        # the file changes after the first fetch
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
