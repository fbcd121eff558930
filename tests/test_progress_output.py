"""Console stays readable: native output goes to log files; -v/--verbose streams it too."""
from __future__ import annotations

import ctypes
from pathlib import Path

import pytest

from harness.engine.process import native_output_to


def test_c_level_output_goes_to_the_log_not_the_console(tmp_path: Path, capfd, monkeypatch) -> None:
    monkeypatch.delenv("HARNESS_VERBOSE", raising=False)
    log = tmp_path / "native.log"
    libc = ctypes.CDLL(None)
    with native_output_to(log):
        libc.printf(b"layer     filters    size\n")          # buffered C stdio, as libdarknet's
        libc.fprintf(ctypes.c_void_p.in_dll(libc, "stderr"), b"conv 16 3 x 3\n")
    print("after")
    out, err = capfd.readouterr()
    assert "layer" not in out and "conv" not in err and "after" in out
    assert "layer     filters    size" in log.read_text() and "conv 16 3 x 3" in log.read_text()


def test_verbose_leaves_native_output_on_the_console(tmp_path: Path, capfd, monkeypatch) -> None:
    monkeypatch.setenv("HARNESS_VERBOSE", "1")
    with native_output_to(tmp_path / "native.log"):
        ctypes.CDLL(None).printf(b"streamed\n")
        ctypes.CDLL(None).fflush(None)
    assert "streamed" in capfd.readouterr().out
    assert not (tmp_path / "native.log").exists()


@pytest.mark.darknet
def test_libdarknet_layer_table_lands_in_its_log(darknet_tiny_model: dict, capfd, monkeypatch) -> None:
    from harness.frameworks.darknet.libdarknet import DarknetNetwork

    monkeypatch.delenv("HARNESS_VERBOSE", raising=False)
    cfg = Path(darknet_tiny_model["files"]["cfg"])
    capfd.readouterr()
    with DarknetNetwork(cfg, darknet_tiny_model["result"].weights):
        pass
    out, err = capfd.readouterr()
    assert "filters" not in out + err
    assert "filters" in (cfg.parent / "libdarknet.log").read_text()
