"""Console stays readable: native output goes to log files; -v/--verbose streams it too."""
from __future__ import annotations

import ctypes
from pathlib import Path

import pytest

from harness.core.process import native_output_to


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


def test_without_a_terminal_training_progress_is_a_plain_line_now_and_then(capfd, monkeypatch) -> None:
    """CI and Slurm logs get `label it/total loss … it/s ETA` lines, not thousands of bar redraws."""
    from harness.core.process import _ProgressDisplay
    from harness.core.types import Progress

    monkeypatch.delenv("HARNESS_VERBOSE", raising=False)
    monkeypatch.setenv("HARNESS_PROGRESS_SECONDS", "3600")
    display = _ProgressDisplay("yolov3-tiny", 50, None)          # capfd's stderr is not a terminal
    assert display.line_mode and not display.bar_mode
    for iteration in range(1, 51):
        display.update(Progress(iteration, loss=10.0 / iteration, avg_loss=5.0, lr=0.001))
    display.close()
    lines = capfd.readouterr().err.splitlines()
    assert len(lines) == 2, lines                                  # the first and the last iteration
    assert lines[0].startswith("yolov3-tiny 1/50 loss 10 avg 5 lr 0.001")
    assert lines[1].startswith("yolov3-tiny 50/50 loss 0.2 avg 5 lr 0.001") and "it/s" in lines[1]
    assert "ETA" not in lines[1]


def test_progress_line_rate_and_eta_count_from_the_first_parsed_iteration() -> None:
    from harness.core.process import _ProgressDisplay
    from harness.core.types import Progress

    display = _ProgressDisplay("ssd", 300, False)
    assert not display.enabled
    display.first = (99, 1000.0)                                  # resumed at iteration 100
    text = display.line(Progress(150, loss=2.0), now=1025.0)     # 51 iterations in 25 s
    assert text == "ssd 150/300 loss 2 2.04 it/s ETA 1:14"
