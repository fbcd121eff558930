"""Open report.html in headless Chromium: the tables render and every figure actually loads.

Needs the ``chromium`` apt package. Without it the tests skip, unless HARNESS_REQUIRE_CHROMIUM=1
(set in CI) turns the skip into a failure.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from harness.report import build_report
from test_report_factory import make_run

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
    "--virtual-time-budget=5000",
]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    message = "headless Chromium not installed (apt-get install -y chromium)"
    if os.environ.get("HARNESS_REQUIRE_CHROMIUM") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _run_chromium(profile: Path, *args: str) -> subprocess.CompletedProcess:
    command = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def _dump_dom(html: Path, profile: Path) -> str:
    return _run_chromium(profile, "--dump-dom", html.as_uri()).stdout


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    written = make_run(tmp_path_factory.mktemp("browser"))
    return build_report(written["run_dir"])


def test_tables_render_and_all_images_load(report, tmp_path):
    dom = _dump_dom(report["html"], tmp_path / "profile")
    figures = [p for k, p in report.items() if k.startswith("fig")]
    body = re.search(r"<body([^>]*)>", dom).group(1)
    assert f'data-images-checked="{len(figures)}"' in body
    assert 'data-images-broken="0"' in body
    widths = {src: int(w) for src, w in re.findall(r'<img src="([^"]+)"[^>]*data-natural-width="(\d+)"', dom)}
    for path in figures:
        assert widths[path.name] == cv2.imread(str(path)).shape[1]            # the real PNG was decoded
    for table in ("table1-map", "table2-time", "accuracy"):
        assert f'id="{table}"' in dom
    assert "SMOKE RUN — NOT COMPARABLE WITH THE PAPER" in dom
    assert "did not load" not in dom.split("<script>")[0]


def test_a_missing_figure_is_detected(report, tmp_path):
    run_dir = report["html"].parent
    moved = tmp_path / "fig7.png"
    shutil.move(report["fig7"], moved)
    try:
        dom = _dump_dom(report["html"], tmp_path / "profile")
    finally:
        shutil.move(moved, report["fig7"])
    assert 'data-images-broken="1"' in dom
    assert "Image fig7_loss.png did not load." in dom
    assert run_dir.is_dir()


def test_screenshot_shows_content(report, tmp_path):
    shot = tmp_path / "shot.png"
    _run_chromium(tmp_path / "profile", "--window-size=1280,2400", f"--screenshot={shot}", report["html"].as_uri())
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (2400, 1280)
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    bands = np.array_split(grey, 8, axis=0)                 # text/tables/figures all the way down
    assert all(band.std() > 5 for band in bands), [round(float(b.std()), 1) for b in bands]
    assert (grey < 100).mean() > 0.005                      # there is dark text
