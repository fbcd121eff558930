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


# ----------------------------------------------------------------------------- dataset report

@pytest.fixture(scope="module")
def dataset_report(tmp_path_factory):
    """A small audited set with a leak and a typo class, so every section of the page has content."""
    from harness.data.audit import audit_dataset
    from test_data_voc import make_sample

    root = tmp_path_factory.mktemp("dataset") / "voc"
    for i in range(12):
        make_sample(root, f"im{i:02d}", [("cell", 2, 2, 30, 30), ("Nucleus", 20, 10, 50, 40)])
    make_sample(root, "odd", [("nucleus", 5, 5, 25, 25)])
    (root / "JPEGImages" / "im11.jpg").write_bytes((root / "JPEGImages" / "im00.jpg").read_bytes())
    main = root / "ImageSets" / "Main"
    main.mkdir(parents=True)
    (main / "trainval.txt").write_text("".join(f"im{i:02d}\n" for i in range(9)) + "odd\n")
    (main / "test.txt").write_text("im09\nim10\nim11\n")
    out = root.parent / "audit"
    audit_dataset(root, out, workers=1)
    return out


def test_dataset_report_renders_with_every_figure(dataset_report, tmp_path):
    html = dataset_report / "dataset_report.html"
    dom = _dump_dom(html, tmp_path / "profile")
    figures = sorted(dataset_report.glob("*.png"))
    assert len(figures) == 5
    body = re.search(r"<body([^>]*)>", dom).group(1)
    assert f'data-images-checked="{len(figures)}"' in body and 'data-images-broken="0"' in body
    widths = {src: int(w) for src, w in re.findall(r'<img[^>]*src="([^"]+)"[^>]*data-natural-width="(\d+)"', dom)}
    for path in figures:
        assert widths[path.name] == cv2.imread(str(path)).shape[1]
    leak_rows = re.search(r'<table id="leakage-table">(.*?)</table>', dom, re.S).group(1)
    assert "im11.jpg" in leak_rows and "im00.jpg" in leak_rows and "exact" in leak_rows
    assert "LEAKAGE: 1 test image(s) have a twin in train" in dom
    assert "<code>nucleus</code>" in re.search(r'id="suspect-classes"(.*?)</div>', dom, re.S).group(1)
    for table in ("summary-table", "class-table", "box-size-table", "problem-table", "image-size-table"):
        assert f'id="{table}"' in dom


def test_run_report_links_the_dataset_report(report, dataset_report):
    run_dir = report["html"].parent
    shutil.copytree(dataset_report, run_dir / "dataset" / "audit")
    try:
        rebuilt = build_report(run_dir)
        html = rebuilt["html"].read_text()
        assert 'href="dataset/audit/dataset_report.html"' in html
        assert "[dataset/audit/dataset_report.html]" in rebuilt["md"].read_text()
    finally:
        shutil.rmtree(run_dir / "dataset")
    assert "dataset_report" not in build_report(run_dir)["html"].read_text()
