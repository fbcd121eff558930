"""Data-stage progress without a terminal: plain lines now and then, never thousands of ``\\r`` redraws."""
from __future__ import annotations

import io
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness import progress
from harness.progress import LineProgress, progress_bar, track

REPO = Path(__file__).resolve().parents[1]


class FakeClock:
    """time.monotonic that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake_clock(monkeypatch) -> FakeClock:
    clock = FakeClock()
    monkeypatch.setattr(progress, "time", SimpleNamespace(monotonic=clock))   # this module's clock only
    return clock


def test_a_line_per_update_when_every_is_zero(capsys, monkeypatch) -> None:
    monkeypatch.setenv("HARNESS_PROGRESS_SECONDS", "0")
    with progress_bar(5, "synth smear", "img") as bar:               # capsys' stderr is not a terminal
        assert isinstance(bar, LineProgress)
        for _ in range(5):
            bar.update()
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert "\r" not in err
    assert [line.split(" (")[0] for line in lines[:-1]] == [f"synth smear {i}/5 img" for i in range(1, 5)]
    assert re.fullmatch(r"synth smear 5/5 img in \d+\.\d s( \(\d+\.\d (img/s|s/img)\))?", lines[-1]), lines


def test_only_the_final_line_within_the_interval(capsys, monkeypatch) -> None:
    monkeypatch.setenv("HARNESS_PROGRESS_SECONDS", "3600")
    assert list(track(range(1500), "synth smear", "img")) == list(range(1500))
    err = capsys.readouterr().err
    assert "\r" not in err
    assert len(err.splitlines()) == 1
    assert err.startswith("synth smear 1500/1500 img in ")


def test_lines_at_most_every_interval_with_rate_eta_and_postfix(capsys, monkeypatch, fake_clock) -> None:
    monkeypatch.setenv("HARNESS_PROGRESS_SECONDS", "10")
    bar = progress_bar(20, "count [cpu]", "slide")
    for _ in range(20):                                             # one slide every 3 s
        fake_clock.now += 3
        bar.update()
        bar.set_postfix_str("cpu, 4.0 fields/s")
    bar.close()
    bar.close()                                                     # a second close prints nothing
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) <= math.ceil(fake_clock.now / 10) + 1
    assert lines[0] == "count [cpu] 4/20 slide (3.0 s/slide, ETA 0:48) cpu, 4.0 fields/s"
    assert lines[1].startswith("count [cpu] 8/20 slide ")
    assert lines[-1] == "count [cpu] 20/20 slide in 1:00 (3.0 s/slide) cpu, 4.0 fields/s"
    assert len(lines) == 5                                           # at 12, 24, 36, 48 s and the end


def test_final_line_reports_items_per_second(capsys, monkeypatch, fake_clock) -> None:
    monkeypatch.setenv("HARNESS_PROGRESS_SECONDS", "30")
    for _ in track(range(1500), "synth smear", "img"):
        fake_clock.now += 0.02
    assert capsys.readouterr().err == "synth smear 1500/1500 img in 30.0 s (50.0 img/s)\n"


def test_disabled_or_empty_prints_nothing(capsys, monkeypatch) -> None:
    monkeypatch.setenv("HARNESS_PROGRESS_SECONDS", "0")
    assert list(track([1, 2, 3], "synth smear", "img", enabled=False)) == [1, 2, 3]
    with progress_bar(0, "convert test", "img") as bar:
        bar.set_postfix_str("nothing to do")
    assert capsys.readouterr().err == ""


def test_on_a_terminal_it_is_a_tqdm_bar(monkeypatch) -> None:
    from tqdm import tqdm

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with progress_bar(3, "synth smear", "img") as bar:
        assert isinstance(bar, tqdm)
        bar.update(3)
    assert "\r" in terminal.getvalue() and "3/3" in terminal.getvalue()


def test_synth_cli_without_a_terminal_logs_plain_lines(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("HARNESS_PROGRESS_SECONDS", None)
    done = subprocess.run([sys.executable, "-m", "harness", "data", "synth", "--out", str(tmp_path / "s"),
                           "--slides", "1", "--cells-per-slide", "20", "--scenario", "aml"],
                          cwd=tmp_path, env=env, capture_output=True, timeout=300)
    err = done.stderr.decode()                     # bytes: text mode would turn a redraw's \r into \n
    assert done.returncode == 0, err
    assert "\r" not in err
    fields = len(list((tmp_path / "s" / "slide_000" / "JPEGImages").glob("*.jpg")))
    progress_lines = [line for line in err.splitlines() if line.startswith("synth ")]
    assert fields > 0 and len(progress_lines) == 1, err
    assert re.fullmatch(rf"synth slide_000 {fields}/{fields} field in \d+\.\d s \(\d+\.\d (field/s|s/field)\)",
                        progress_lines[0]), progress_lines
